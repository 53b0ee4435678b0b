//! One SFT step of the baseline GPT (d 256, 4 layers, 4 heads, vocabulary 512) on 16 rows
//! of 128 tokens through the `Policy` trait: forward, cross-entropy (`nll`, as the `sft`
//! stage does), backward, AdamW. Side by side with `scripts/bench/torch_train_step.py`
//! (`cargo xtask bench`; `docs/benchmarks.md`).

use std::time::Duration;

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use foil_benches::{BASE_VOCAB, TRAIN_LEN, TRAIN_ROWS, base_gpt, random_ids};
use foil_core::batch::HostPolicyBatch;
use foil_core::policy::OptimizerConfig;
use foil_core::{Objective, PolicyOutput};
use foil_objectives::Nll;
use foil_trainers::data_parallel::Workers;

fn train_step(c: &mut Criterion) {
    foil::link_all();
    foil::keep_freed_pages();
    // rows = one prompt token + 127 target tokens: the loss covers all 127 next-token
    // predictions of each 128-token row, as the reference script's does
    let ids = random_ids(TRAIN_ROWS * TRAIN_LEN, BASE_VOCAB, 7);
    let rows: Vec<(&[u32], &[u32], Vec<f32>)> = ids
        .chunks(TRAIN_LEN)
        .map(|r| (&r[..1], &r[1..], vec![1.0; TRAIN_LEN - 1]))
        .collect();
    let host = HostPolicyBatch::new(&rows, 0);
    let objective = Nll::default();
    let mut policy = base_gpt("cpu").expect("the baseline GPT builds");
    policy.reset_optimizer(&OptimizerConfig::adamw(1e-4));
    let mut g = c.benchmark_group("train_step");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10));
    g.bench_function("tiny_gpt_d256", |b| {
        b.iter(|| {
            let batch = host.to_device(&policy.device(), TRAIN_LEN - 1);
            let logprobs = policy.token_logprobs(&batch.input, batch.targets.clone());
            let loss = objective
                .loss(
                    &batch,
                    &PolicyOutput {
                        logprobs,
                        entropy: None,
                    },
                )
                .expect("nll loss");
            policy.step(loss.value, 1e-4).expect("AdamW step");
        })
    });
    // The same step by two data-parallel thread workers (`data_parallel: {workers: 2}`),
    // 8 rows each: one process's flex ops keep ~1.2 of 2 cores busy, two replicas fill
    // the second. Same update as above (the data-parallel step is exact).
    let mut leader = base_gpt("cpu").expect("the baseline GPT builds");
    leader.reset_optimizer(&OptimizerConfig::adamw(1e-4));
    let mut replica = base_gpt("cpu").expect("the baseline GPT builds");
    replica.reset_optimizer(&OptimizerConfig::adamw(1e-4));
    let mut workers = Workers::threads(leader.as_ref(), vec![replica]).expect("two workers");
    g.bench_function("tiny_gpt_d256_2workers", |b| {
        b.iter(|| {
            let batch = host.to_device(&leader.device(), TRAIN_LEN - 1);
            workers
                .step_on(&mut leader, &objective, &host, &batch, 1e-4)
                .expect("data-parallel step")
                .unwrap_or_else(|nf| panic!("non-finite loss {}", nf.value));
        })
    });
    g.finish();
}

criterion_group!(benches, train_step);
criterion_main!(benches);
