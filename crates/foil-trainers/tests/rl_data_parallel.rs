//! The `rl` stage's `data_parallel:` option, run in process.
//!
//! Rollouts are sampled on the leader (the default `rollouts: leader`), so with identical
//! weights both runs see the same rollouts; each update's batch is split by rows over the
//! workers and the all-reduced update is exactly the whole batch's (`data_parallel.rs`;
//! the per-parameter gradient checks are its unit tests). Here: two workers log the same
//! losses, KL and rewards at every step as one worker (tolerance 1e-4: f32 summation
//! order), through a reference (π_ref) term, with several epochs and mini-batches (π_old
//! log-probs, mini-batches of 8 rows split 4 + 4), and across a checkpoint and resume.
//! Steps 2.. only agree if the replica started from the policy's weights and optimizer
//! state and every worker took the same update. With `rollouts: workers` the samples are
//! the workers' own (reproducible, resumable, not the leader's).

mod common;

use std::path::Path;

use common::run_recipe;

use foil_data as _;
use foil_models as _;
use foil_trainers::{RunOptions, run};

/// The didactic bandit (one prompt, 20 actions), GRPO with `ppo_clip + kl`, 16 rows per
/// step (4 prompts × 4 samples of 2 tokens).
fn recipe(extra: &str) -> String {
    format!(
        r#"
name: rl-dp-test
seed: 5
device: cpu
task: {{type: bandit, actions: 20, sft_center: 8, sft_std: 3, train: 50, test: 4}}
policy: {{type: tiny_gpt, d_model: 32, layers: 1, heads: 2, context: 8}}
stages:
  - type: rl
    steps: 4
    prompts_per_step: 4
    sampler: {{type: local, n: 4, temperature: 1.0, max_tokens: 2}}
    verifier: {{type: bandit_reward, peak: 12, width: 4}}
    advantage: {{type: grpo}}
    objective:
      type: sum
      terms:
        - {{type: ppo_clip, aggregate: token_mean}}
        - {{type: kl, coef: 0.2, aggregate: seq_mean_token_mean}}
    optimizer: {{type: adamw, lr: 3.0e-2}}
    log_every: 1{extra}
"#
    )
}

/// `(loss, kl/mean, reward)` of every logged rl step.
fn trajectory(run: &Path) -> Vec<[f64; 3]> {
    common::log_lines(run, "rl")
        .iter()
        .map(|v| {
            let f = |k: &str| {
                v[k].as_f64()
                    .unwrap_or_else(|| panic!("no `{k}` in the rl log line {v}"))
            };
            [f("loss"), f("kl/mean"), f("reward")]
        })
        .collect()
}

/// [`common::max_diff`] over every number of two trajectories.
fn max_diff(a: &[[f64; 3]], b: &[[f64; 3]]) -> f64 {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    common::max_diff(&a.concat(), &b.concat())
}

/// One worker vs `data_parallel` with the same extra settings; returns the one-worker
/// trajectory.
fn same_as_one_worker(settings: &str, data_parallel: &str) -> Vec<[f64; 3]> {
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    let single = trajectory(&run_recipe(one.path(), &recipe(settings), None).unwrap());
    let dp = trajectory(
        &run_recipe(
            two.path(),
            &recipe(&format!("{settings}\n    data_parallel: {data_parallel}")),
            None,
        )
        .unwrap(),
    );
    assert_eq!(single.len(), 4);
    let d = max_diff(&single, &dp);
    assert!(d < 1e-4, "one worker {single:?}\n{data_parallel} {dp:?}");
    single
}

#[test]
fn two_workers_log_the_same_rl_steps_as_one() {
    let t = same_as_one_worker("", "{workers: 2}");
    // the policy moves away from π_ref (KL grows from 0), so agreement is not by accident
    assert!(t[0][1].abs() < 1e-6, "{t:?}");
    assert!(t[3][1] > 1e-4, "{t:?}");
}

#[test]
fn two_workers_with_epochs_and_mini_batches() {
    let t = same_as_one_worker("\n    ppo_epochs: 2\n    mini_batches: 2", "{workers: 2}");
    assert!(t[3][1] > 1e-4, "{t:?}");
}

#[test]
fn three_workers_on_uneven_shards() {
    // 16 rows over 3 workers: 5 + 5 + 6
    same_as_one_worker("", "{workers: 3}");
}

#[test]
fn workers_on_two_devices() {
    // the leader on flex (`device: cpu`), the replica on ndarray: 8 + 8 rows
    let t = same_as_one_worker("", "{devices: [cpu, cpu-ndarray]}");
    assert!(t[3][1] > 1e-4, "{t:?}");
    // with π_old log-probs: the replica's own snapshot on ndarray takes its rows
    same_as_one_worker(
        "\n    ppo_epochs: 2\n    mini_batches: 2",
        "{devices: [cpu, cpu-ndarray]}",
    );
}

/// `rollouts: workers`: each worker samples half of the step's 4 prompts with its own
/// replica and random stream. The run is reproducible, trains (KL leaves 0), and its
/// rollouts are not the leader's: the rewards of some step differ from the one-worker run's
/// (whose samples `rollouts: leader` reproduces, above).
#[test]
fn rollouts_sampled_on_the_workers() {
    let settings = "\n    data_parallel: {workers: 2, rollouts: workers}";
    let runs: Vec<Vec<[f64; 3]>> = (0..2)
        .map(|_| {
            let dir = tempfile::tempdir().unwrap();
            trajectory(&run_recipe(dir.path(), &recipe(settings), None).unwrap())
        })
        .collect();
    assert_eq!(runs[0].len(), 4);
    assert_eq!(runs[0], runs[1], "the same recipe twice");
    assert!(runs[0][3][1] > 1e-4, "{:?}", runs[0]);
    let one = tempfile::tempdir().unwrap();
    let single = trajectory(&run_recipe(one.path(), &recipe(""), None).unwrap());
    assert!(
        runs[0].iter().zip(&single).any(|(a, b)| a[2] != b[2]),
        "rollouts: workers sampled what the leader samples: {single:?}"
    );
    // the replica samples on its own device (ndarray) just as well, and not what the
    // leader samples on the same devices
    let on_mixed = |rollouts: &str| {
        let dir = tempfile::tempdir().unwrap();
        let dp =
            format!("\n    data_parallel: {{devices: [cpu, cpu-ndarray], rollouts: {rollouts}}}");
        trajectory(&run_recipe(dir.path(), &recipe(&dp), None).unwrap())
    };
    let (mixed, leader) = (on_mixed("workers"), on_mixed("leader"));
    assert_eq!(mixed.len(), 4);
    assert!(mixed.iter().flatten().all(|v| v.is_finite()), "{mixed:?}");
    assert!(
        mixed.iter().zip(&leader).any(|(a, b)| a[2] != b[2]),
        "{mixed:?} vs {leader:?}"
    );
}

#[test]
fn a_resumed_data_parallel_rl_stage_continues_identically() {
    resumes_identically("{workers: 2}");
}

#[test]
fn a_resumed_stage_with_rollouts_on_the_workers_continues_identically() {
    resumes_identically("{workers: 2, rollouts: workers}");
}

/// The replica on ndarray rebuilds its own π_ref from the stage-start checkpoint.
#[test]
fn a_resumed_stage_on_two_devices_continues_identically() {
    resumes_identically("{devices: [cpu, cpu-ndarray]}");
}

/// A run stopped after 2 of 4 steps and resumed logs what an uninterrupted one logs.
fn resumes_identically(data_parallel: &str) {
    let full = tempfile::tempdir().unwrap();
    let cut = tempfile::tempdir().unwrap();
    let text = recipe(&format!(
        "\n    ppo_epochs: 2\n    mini_batches: 2\n    data_parallel: {data_parallel}"
    ));
    let whole = trajectory(&run_recipe(full.path(), &text, None).unwrap());
    let dir = run_recipe(cut.path(), &text, Some(2)).unwrap();
    assert_eq!(trajectory(&dir).len(), 2);
    run(
        None,
        &RunOptions {
            resume: Some(dir.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    let resumed = trajectory(&dir);
    let d = max_diff(&whole, &resumed);
    assert!(d < 1e-4, "uninterrupted {whole:?}\nresumed {resumed:?}");
}

fn error_of(extra: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let e = run_recipe(dir.path(), &recipe(extra), None).expect_err("the run must fail");
    format!("{e:#}")
}

#[test]
fn bad_settings_are_clear_errors() {
    let e = error_of("\n    data_parallel: {workers: 0}");
    assert!(
        e.contains("rl: data_parallel.workers must be at least 1"),
        "{e}"
    );
    // 4 prompts × 4 samples / 2 mini-batches = 8 rows per update
    let e = error_of("\n    mini_batches: 2\n    data_parallel: {workers: 9}");
    assert!(
        e.contains("data_parallel.workers (9) is more than the rows of one update")
            && e.contains("= 8)"),
        "{e}"
    );
    let e = error_of("\n    data_parallel: {workers: 2, bakend: threads}");
    assert!(e.contains("bakend"), "{e}");
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Wall time of a small GRPO run (tiny_gpt d64 × 2 layers on arithmetic, 16 prompts × 8
/// samples of up to 16 tokens = 128 rows per update, `ppo_clip + kl`) with one worker vs
/// two thread workers (rollouts sampled by the leader, then by both), 6 steps, run setup included; prints the load average around each
/// arm. Not a check, a measurement:
/// `cargo test --workspace --test rl_data_parallel -- --ignored --nocapture`
#[test]
#[ignore]
fn time_rl_steps_one_vs_two_workers() {
    let text = |dp: &str| {
        format!(
            r#"
name: rl-dp-time
seed: 1
device: cpu
task: {{type: arithmetic, min_operands: 2, max_operands: 3, max_operand: 9, ops: "+-*", modulus: 10, train: 2000, test: 8}}
policy: {{type: tiny_gpt, d_model: 64, layers: 2, heads: 4, context: 48}}
stages:
  - type: rl
    steps: 6
    prompts_per_step: 16
    sampler: {{type: local, n: 8, temperature: 1.0, max_tokens: 16}}
    verifier: {{type: numeric}}
    advantage: {{type: grpo}}
    objective:
      type: sum
      terms:
        - {{type: ppo_clip}}
        - {{type: kl, coef: 0.01}}
    optimizer: {{type: adamw, lr: 1.0e-4}}
    log_every: 100{dp}
"#
        )
    };
    for round in 0..2 {
        for (label, dp) in [
            ("1 worker ", ""),
            ("2 workers", "\n    data_parallel: {workers: 2}"),
            (
                "2 workers, rollouts: workers",
                "\n    data_parallel: {workers: 2, rollouts: workers}",
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let before = load_average();
            let t = std::time::Instant::now();
            run_recipe(dir.path(), &text(dp), None).unwrap();
            let s = t.elapsed().as_secs_f64() / 6.0;
            println!(
                "round {round}: {label}: {s:.3} s per rl step (sampling + update, setup / 6); \
                 load average {before} -> {}",
                load_average()
            );
        }
    }
}
