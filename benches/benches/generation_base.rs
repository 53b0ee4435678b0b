//! Batched generation with the KV cache of the `local` sampler on the baseline GPT
//! (d 256, 4 layers, vocabulary 512): 16 prompts of 64 tokens, 64 new tokens each,
//! temperature 1, no end token (every row decodes all 64). Side by side with
//! `scripts/bench/torch_generate.py` (`cargo xtask bench`; `docs/benchmarks.md`).

use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use foil_benches::{BASE_VOCAB, GEN_NEW, GEN_PROMPT, GEN_ROWS, IdTokenizer, base_gpt, random_ids};
use foil_core::{Problem, Sampler, Tokenizer};
use foil_samplers::Local;

fn generation_base(c: &mut Criterion) {
    foil::link_all();
    foil::keep_freed_pages();
    let tok = IdTokenizer { vocab: BASE_VOCAB };
    let problems: Vec<Problem> = (0..GEN_ROWS)
        .map(|i| Problem {
            id: format!("p{i}"),
            prompt: tok.decode(&random_ids(GEN_PROMPT, BASE_VOCAB, 100 + i as u64)),
            solution: String::new(),
            answer: String::new(),
            difficulty: 0,
        })
        .collect();
    let sampler = Local {
        n: 1,
        temperature: 1.0,
        max_tokens: GEN_NEW,
        ..Default::default()
    };
    let model = base_gpt("cpu")
        .expect("the baseline GPT builds")
        .inference();
    let tokens: usize = sampler
        .sample(model.as_ref(), &tok, &problems, 0)
        .expect("sampling")
        .iter()
        .flat_map(|g| &g.completions)
        .map(|c| c.tokens.len())
        .sum();
    assert_eq!(
        tokens,
        GEN_ROWS * GEN_NEW,
        "every row decodes all its tokens"
    );
    let mut g = c.benchmark_group("generation_base");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(tokens as u64));
    g.bench_function("tiny_gpt_d256", |b| {
        b.iter(|| {
            sampler
                .sample(model.as_ref(), &tok, &problems, 0)
                .expect("sampling")
        })
    });
    g.finish();
}

criterion_group!(benches, generation_base);
criterion_main!(benches);
