//! One full GRPO step on the TRL baseline's config (`scripts/bench/trl_grpo_step.py`):
//! a random-init Qwen2 (hidden 128, 4 layers, 4 heads, 2 KV heads, FFN 512, tied
//! embeddings) on character-level `a+b` arithmetic, 2 prompts × 8 completions of ≤ 16
//! tokens at temperature 1, rewarded by the `numeric` verifier, `grpo` advantages (std
//! scale), `ppo_clip` + `kl` (k3, β = 0.04) against the stage-start reference, backward and
//! AdamW (lr 1e-5). The step is composed from foil's real parts the way the `rl` stage
//! composes them (`crates/foil-trainers/src/rl.rs`: behaviour snapshot → sample → verify →
//! estimate → pack → reference log-probs → objective → step; with one update per batch,
//! rl computes no separate π_old pass), without the
//! run-directory bookkeeping (metrics file, checkpoints, progress bar).

use std::time::Duration;

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use foil_benches::write_random_qwen2;
use foil_core::backend::parse_device;
use foil_core::batch::{HostPolicyBatch, to_vec};
use foil_core::policy::OptimizerConfig;
use foil_core::{
    AdvantageEstimator, Objective, PolicyConfig, PolicyOutput, Sampler, ScoredGroup, Task, Verdict,
    Verifier,
};
use foil_data::Arithmetic;
use foil_trainers::train_step::frozen_logprobs;

/// TRL's vocabulary size in the reference script (19 characters + pad + eos).
const TRL_VOCAB: usize = 21;
const PROMPTS: usize = 2;

fn part<T: ?Sized>(v: serde_json::Value) -> Box<T>
where
    Box<T>: serde::de::DeserializeOwned,
{
    serde_json::from_value(v).expect("a valid part")
}

fn grpo_step(c: &mut Criterion) {
    foil::link_all();
    foil::keep_freed_pages();
    // "Q:a+b=" with a, b in 0..=99, as the TRL script's problems
    let task = Arithmetic {
        min_operands: 2,
        max_operands: 2,
        max_operand: 99,
        ops: "+".into(),
        modulus: 1000,
        train: 256,
        test: 16,
        ..Default::default()
    }
    .build(0)
    .expect("arithmetic task");
    let tok = task.tokenizer.clone();
    let vocab = tok.vocab_size().max(TRL_VOCAB);
    let dir = tempfile::tempdir().expect("temp dir");
    write_random_qwen2(dir.path(), vocab).expect("writing the random Qwen2");
    let device = parse_device("cpu").unwrap();
    let config: Box<dyn PolicyConfig> =
        part(serde_json::json!({"type": "hf", "path": dir.path(), "context": 128}));
    let mut policy = config.build(vocab, &device, 0).expect("hf policy");
    policy.reset_optimizer(&OptimizerConfig::adamw(1e-5));
    let reference = policy.inference();
    let sampler: Box<dyn Sampler> =
        part(serde_json::json!({"type": "local", "n": 8, "temperature": 1.0, "max_tokens": 16}));
    let verifier: Box<dyn Verifier> = part(serde_json::json!({"type": "numeric"}));
    let advantage: Box<dyn AdvantageEstimator> =
        part(serde_json::json!({"type": "grpo", "scale": "std"}));
    let objective: Box<dyn Objective> = part(serde_json::json!({
        "type": "sum",
        "terms": [
            {"type": "ppo_clip", "eps_low": 0.2, "eps_high": 0.2, "aggregate": "token_mean"},
            {"type": "kl", "coef": 0.04, "estimator": "k3"}
        ]
    }));
    let train_device = policy.device();
    let mut step = 0usize;
    let mut g = c.benchmark_group("grpo_step");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8));
    g.bench_function("qwen2_trl_config", |b| {
        b.iter(|| {
            let lo = (step * PROMPTS) % (task.train.len() - PROMPTS);
            let problems = &task.train[lo..lo + PROMPTS];
            step += 1;
            let behaviour = policy.inference();
            let groups = sampler
                .sample(behaviour.as_ref(), tok.as_ref(), problems, step as u64)
                .expect("sampling");
            let scored: Vec<ScoredGroup> = groups
                .into_iter()
                .map(|g| {
                    let verdicts: Vec<Verdict> = g
                        .completions
                        .iter()
                        .map(|c| verifier.verify(&g.problem, &c.text))
                        .collect();
                    ScoredGroup {
                        group: g,
                        verdicts,
                        baseline: None,
                    }
                })
                .collect();
            let credits = advantage.estimate(&scored).expect("advantages");
            let prompts: Vec<Vec<u32>> = scored
                .iter()
                .map(|g| tok.encode_prompt(&g.group.problem.prompt).expect("prompt"))
                .collect();
            let mut rows: Vec<(&[u32], &[u32], Vec<f32>)> = Vec::new();
            for ((g, cs), p) in scored.iter().zip(&credits).zip(&prompts) {
                for (c, credit) in g.group.completions.iter().zip(cs) {
                    if let Some(adv) = credit.per_token(c.tokens.len())
                        && !c.tokens.is_empty()
                    {
                        rows.push((p, &c.tokens, adv));
                    }
                }
            }
            let host = HostPolicyBatch::new(&rows, tok.pad_id());
            let mut batch = host.to_device(&train_device, sampler.max_tokens());
            // one update per batch (ppo_epochs 1, mini_batches 1): like rl.rs, no π_old pass;
            // the objective uses π_old = sg[π_θ]
            if objective.needs_reference() {
                batch.ref_logprobs = Some(frozen_logprobs(reference.as_ref(), &host, &batch));
            }
            let logprobs = policy.token_logprobs(&batch.input, batch.targets.clone());
            let loss = objective
                .loss(
                    &batch,
                    &PolicyOutput {
                        logprobs,
                        entropy: None,
                    },
                )
                .expect("loss");
            assert!(to_vec(loss.value.clone())[0].is_finite(), "finite loss");
            policy.step(loss.value, 1e-5).expect("AdamW step");
        })
    });
    g.finish();
}

criterion_group!(benches, grpo_step);
criterion_main!(benches);
