//! Times the phases of one train step of the baseline GPT (forward, log-probs + loss,
//! step), for finding where the step's time goes.
use foil_benches::{BASE_VOCAB, TRAIN_LEN, TRAIN_ROWS, base_gpt, minor_faults, random_ids};
use foil_core::batch::{HostPolicyBatch, to_vec};
use foil_core::policy::OptimizerConfig;
use foil_core::{Objective, PolicyOutput};
use std::time::Instant;
fn main() {
    foil::link_all();
    foil::keep_freed_pages();
    let ids = random_ids(TRAIN_ROWS * TRAIN_LEN, BASE_VOCAB, 7);
    let rows: Vec<(&[u32], &[u32], Vec<f32>)> = ids
        .chunks(TRAIN_LEN)
        .map(|r| (&r[..1], &r[1..], vec![1.0; TRAIN_LEN - 1]))
        .collect();
    let host = HostPolicyBatch::new(&rows, 0);
    let objective = foil_objectives::Nll::default();
    let mut policy = base_gpt("cpu").unwrap();
    policy.reset_optimizer(&OptimizerConfig::adamw(1e-4));
    let steps: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("the argument is a step count"))
        .unwrap_or(8);
    for _ in 0..steps {
        let faults = minor_faults();
        let t0 = Instant::now();
        let batch = host.to_device(&policy.device(), TRAIN_LEN - 1);
        let t1 = Instant::now();
        let logprobs = policy.token_logprobs(&batch.input, batch.targets.clone());
        let t2 = Instant::now();
        let loss = objective
            .loss(
                &batch,
                &PolicyOutput {
                    logprobs,
                    entropy: None,
                },
            )
            .unwrap();
        let _ = to_vec(loss.value.clone());
        let t3 = Instant::now();
        policy.step(loss.value, 1e-4).unwrap();
        let t4 = Instant::now();
        let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
        println!(
            "batch {:.1} forward {:.1} loss {:.1} step {:.1} total {:.1} (page faults {})",
            ms(t0, t1),
            ms(t1, t2),
            ms(t2, t3),
            ms(t3, t4),
            ms(t0, t4),
            minor_faults().saturating_sub(faults)
        );
    }
}
