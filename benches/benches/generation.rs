//! Generation throughput of the `local` sampler (KV cache, 16 prompts × 8 samples × up to
//! 32 tokens, temperature 1) on the quickstart policy, flex vs ndarray.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use foil_benches::{DEVICES, label, policy, task};
use foil_core::Sampler;
use foil_samplers::Local;

fn generation(c: &mut Criterion) {
    foil::link_all();
    foil::keep_freed_pages();
    let task = task();
    let problems = &task.train[..16];
    let sampler = Local {
        n: 8,
        max_tokens: 32,
        ..Default::default()
    };
    let mut g = c.benchmark_group("generation");
    g.sample_size(10);
    for device in DEVICES {
        let model = policy(&task, device).inference();
        let tokens: usize = sampler
            .sample(model.as_ref(), task.tokenizer.as_ref(), problems, 0)
            .unwrap()
            .iter()
            .flat_map(|g| &g.completions)
            .map(|c| c.tokens.len())
            .sum();
        g.throughput(Throughput::Elements(tokens as u64));
        g.bench_function(label(device), |b| {
            b.iter(|| {
                sampler
                    .sample(model.as_ref(), task.tokenizer.as_ref(), problems, 0)
                    .unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, generation);
criterion_main!(benches);
