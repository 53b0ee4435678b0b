//! The `sft` stage's `data_parallel:` option, run in process.
//!
//! Equivalence: on the didactic bandit every demonstration is `S → a<k> <eos>`, so every
//! row has exactly 2 response tokens and a shard of b/2 rows has b response tokens. The
//! `nll` loss is a per-token mean, so the mean of the two shards' losses is the batch loss,
//! and the mean of their gradients (the all-reduce) is the batch gradient: two workers must
//! log the same loss at every step as one worker (tolerance 1e-4: f32 summation order).
//! Steps 2.. only agree if the replica started from the policy's weights and optimizer
//! state and both workers applied the same update.

mod common;

use std::path::Path;

use common::{max_diff, run_recipe};

use foil_data as _;
use foil_models as _;
use foil_trainers::{RunOptions, run};

fn recipe(data_parallel: &str, batch: usize) -> String {
    format!(
        r#"
name: dp-test
seed: 4
device: cpu
task: {{type: bandit, actions: 20, sft_center: 8, sft_std: 3, train: 200, test: 4}}
policy: {{type: tiny_gpt, d_model: 32, layers: 1, heads: 2, context: 8}}
stages:
  - {{type: sft, steps: 6, batch: {batch}, log_every: 1, optimizer: {{type: adamw, lr: 1.0e-2}}{data_parallel}}}
"#
    )
}

fn losses(run: &Path) -> Vec<f64> {
    common::log_lines(run, "sft")
        .iter()
        .map(|v| v["loss"].as_f64().unwrap())
        .collect()
}

/// Runs the recipe without and with `data_parallel` (`settings`) and checks that both log
/// the same loss at every step (1e-4), while training moves the loss (so that equal
/// trajectories are not equal by accident).
fn same_losses_as_one_worker(settings: &str) {
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    let single = losses(&run_recipe(one.path(), &recipe("", 16), None).unwrap());
    let dp = losses(
        &run_recipe(
            two.path(),
            &recipe(&format!(", data_parallel: {settings}"), 16),
            None,
        )
        .unwrap(),
    );
    assert_eq!(single.len(), 6);
    assert!(single[0] - single[5] > 0.1, "{single:?}");
    let d = max_diff(&single, &dp);
    assert!(d < 1e-4, "one worker {single:?}\n{settings} {dp:?}");
}

#[test]
fn two_thread_workers_log_the_same_losses_as_one() {
    same_losses_as_one_worker("{workers: 2}");
}

/// One worker per device: the run's policy on flex (`device: cpu`), the replica on
/// ndarray, so the replica is built, loaded and stepped on another burn device than the
/// leader, and the gathered log-probs and reduced gradients cross between them.
#[test]
fn workers_on_two_devices_log_the_same_losses_as_one() {
    same_losses_as_one_worker("{devices: [cpu, cpu-ndarray]}");
}

/// The same through burn-collective, in builds with `--features foil-distributed/collective`
/// (a no-op otherwise).
#[test]
fn collective_workers_log_the_same_losses_as_one() {
    if foil_distributed::COLLECTIVE {
        same_losses_as_one_worker("{workers: 2, backend: collective}");
    }
}

#[test]
fn a_resumed_data_parallel_stage_continues_identically() {
    let full = tempfile::tempdir().unwrap();
    let cut = tempfile::tempdir().unwrap();
    let text = recipe(", data_parallel: {workers: 2}", 16);
    let whole = losses(&run_recipe(full.path(), &text, None).unwrap());
    let dir = run_recipe(cut.path(), &text, Some(3)).unwrap();
    run(
        None,
        &RunOptions {
            resume: Some(dir.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    let resumed = losses(&dir);
    let d = max_diff(&whole, &resumed);
    assert!(d < 1e-4, "uninterrupted {whole:?}\nresumed {resumed:?}");
}

fn error_of(data_parallel: &str, batch: usize) -> String {
    let dir = tempfile::tempdir().unwrap();
    let e =
        run_recipe(dir.path(), &recipe(data_parallel, batch), None).expect_err("the run must fail");
    format!("{e:#}")
}

#[test]
fn bad_settings_are_clear_errors() {
    let e = error_of(", data_parallel: {workers: 0}", 16);
    assert!(e.contains("workers must be at least 1"), "{e}");
    let e = error_of(", data_parallel: {workers: 3}", 16);
    assert!(e.contains("batch (16) must be divisible by the 3"), "{e}");
    let e = error_of(", data_parallel: {devices: [cpu-ndarray, cpu]}", 16);
    assert!(e.contains("list the run's `device` first"), "{e}");
    let e = error_of(", data_parallel: {devices: [cpu, cuda:9]}", 16);
    assert!(e.contains("data_parallel.devices[1]"), "{e}");
    let e = error_of(", data_parallel: {workers: 2, rollouts: workers}", 16);
    assert!(
        e.contains("sft: data_parallel.rollouts applies to the rl stage only"),
        "{e}"
    );
    let e = error_of(", data_parallel: {workers: 2, rollouts: everyone}", 16);
    assert!(e.contains("everyone") && e.contains("leader"), "{e}");
    if !foil_distributed::COLLECTIVE {
        let e = error_of(", data_parallel: {workers: 2, backend: collective}", 16);
        assert!(
            e.contains("rebuild with --features foil-distributed/collective"),
            "{e}"
        );
    }
}

/// Wall time of quickstart-sized SFT steps (tiny_gpt d64 × 2 layers, batch 64 arithmetic
/// demonstrations) with one worker vs two thread workers. Not a check, a measurement:
/// `cargo test -p foil-trainers --test sft_data_parallel -- --ignored --nocapture`
#[test]
#[ignore]
fn time_sft_steps_one_vs_two_workers() {
    let text = |dp: &str| {
        format!(
            r#"
name: dp-time
seed: 1
device: cpu
task: {{type: arithmetic, min_operands: 2, max_operands: 3, max_operand: 9, ops: "+-*", modulus: 10, train: 2000, test: 8}}
policy: {{type: tiny_gpt, d_model: 64, layers: 2, heads: 4, context: 48}}
stages:
  - {{type: sft, steps: 40, batch: 64, log_every: 100, optimizer: {{type: adamw, lr: 3.0e-3}}{dp}}}
"#
        )
    };
    for round in 0..2 {
        for (label, dp) in [
            ("1 worker ", ""),
            ("2 workers", ", data_parallel: {workers: 2}"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let t = std::time::Instant::now();
            run_recipe(dir.path(), &text(dp), None).unwrap();
            let ms = t.elapsed().as_secs_f64() * 1000.0 / 40.0;
            println!("round {round}: {label}: {ms:.1} ms per SFT step (incl. setup / 40)");
        }
    }
}
