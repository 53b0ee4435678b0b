//! One full GRPO step on the TRL baseline's config (`scripts/bench/trl_grpo_step.py`):
//! [`foil_benches::GrpoStep`] (a random-init Qwen2, hidden 128, 4 layers, on `a+b`
//! arithmetic, 2 prompts × 8 completions of ≤ 16 tokens, `ppo_clip` + k3 `kl`, AdamW).
//! `benches/examples/grpo_phases.rs` times the same step's phases.

use std::time::Duration;

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use foil_benches::GrpoStep;

fn grpo_step(c: &mut Criterion) {
    foil::keep_freed_pages();
    let mut step = GrpoStep::new().expect("the GRPO step's set-up");
    let mut g = c.benchmark_group("grpo_step");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8));
    g.bench_function("qwen2_trl_config", |b| {
        b.iter(|| step.run(|_| {}).expect("a GRPO step"))
    });
    g.finish();
}

criterion_group!(benches, grpo_step);
criterion_main!(benches);
