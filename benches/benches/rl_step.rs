//! One RL update step on 128 sequences (16 prompts × 8 completions of 24 tokens):
//! old log-probs, forward, PPO-clip loss, backward and AdamW, flex vs ndarray. Rollouts are
//! excluded (see the generation bench).

use criterion::{Criterion, criterion_group, criterion_main};
use foil_benches::{DEVICES, label, policy, task};
use foil_core::batch::{HostPolicyBatch, PolicyBatch};
use foil_core::policy::OptimizerConfig;
use foil_core::{Objective, PolicyOutput};
use foil_objectives::PpoClip;

fn rl_step(c: &mut Criterion) {
    foil::link_all();
    foil::keep_freed_pages();
    let task = task();
    let tok = task.tokenizer.clone();
    let prompts: Vec<Vec<u32>> = task.train[..16]
        .iter()
        .map(|p| tok.encode(&p.prompt).unwrap())
        .collect();
    let responses: Vec<Vec<u32>> = (0..128)
        .map(|i| (0..24).map(|k| 2 + ((i + k) % 18) as u32).collect())
        .collect();
    let rows: Vec<(&[u32], &[u32], Vec<f32>)> = (0..128)
        .map(|i| {
            let adv = if i % 3 == 0 { 1.0 } else { -0.5 };
            (
                prompts[i / 8].as_slice(),
                responses[i].as_slice(),
                vec![adv; 24],
            )
        })
        .collect();
    let host = HostPolicyBatch::new(&rows, tok.pad_id());
    let objective = PpoClip::default();
    let mut g = c.benchmark_group("rl_step");
    g.sample_size(10);
    for device in DEVICES {
        let mut policy = policy(&task, device);
        policy.reset_optimizer(&OptimizerConfig::adamw(1e-4));
        g.bench_function(label(device), |b| {
            b.iter(|| {
                let mut batch: PolicyBatch = host.to_device(&policy.device(), 32);
                let frozen = policy.inference();
                let input = host.seqs.to_input(&frozen.device());
                let targets = input.tokens.clone().slice([0..host.seqs.n, 1..host.seqs.t]);
                let old = frozen.token_logprobs(&input, targets);
                batch.old_logprobs = Some(burn_copy(old, &batch));
                let logprobs = policy.token_logprobs(&batch.input, batch.targets.clone());
                let loss = objective
                    .loss(
                        &batch,
                        &PolicyOutput {
                            logprobs,
                            entropy: None,
                        },
                    )
                    .unwrap();
                policy.step(loss.value, 1e-4).unwrap();
            })
        });
    }
    g.finish();
}

fn burn_copy(
    t: foil_core::burn::tensor::Tensor<foil_core::backend::B, 2>,
    batch: &PolicyBatch,
) -> foil_core::burn::tensor::Tensor<foil_core::backend::B, 2> {
    foil_core::burn::tensor::Tensor::from_data(t.into_data(), &batch.mask.device())
}

criterion_group!(benches, rl_step);
criterion_main!(benches);
