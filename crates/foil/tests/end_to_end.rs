//! Whole runs on a tiny recipe: determinism, resume, and the NaN-loss error.

use std::path::Path;

use foil_trainers::{RunOptions, run};

const TINY: &str = "\
name: tiny
seed: 3
device: cpu
checkpoint_every: 2
task: {type: arithmetic, max_operand: 3, ops: '+', modulus: 10, train: 48, test: 8}
policy: {type: tiny_gpt, d_model: 32, layers: 1, heads: 2, context: 40}
stages:
  - {type: sft, steps: 40, batch: 16, log_every: 1, optimizer: {type: adamw, lr: 1.0e-2}}
  - {type: eval, label: before, k: [1, 2], sampler: {type: local, n: 2, max_tokens: 24}}
  - type: rl
    steps: 4
    prompts_per_step: 4
    sampler: {type: local, n: 4, max_tokens: 24}
    objective:
      type: sum
      terms:
        - {type: ppo_clip}
        # β moves every step (horizon 10), so resume must restore it from the checkpoint
        - {type: adaptive_kl, coef: 0.1, target: 0.001, horizon: 10}
  - {type: eval, label: after, k: [1, 2], sampler: {type: local, n: 2, max_tokens: 24}}
";

fn write_recipe(dir: &Path, text: &str) -> std::path::PathBuf {
    let p = dir.join("tiny.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

fn opts(run_dir: &Path) -> RunOptions {
    RunOptions {
        run_dir: Some(run_dir.to_path_buf()),
        ..Default::default()
    }
}

fn metrics(run_dir: &Path) -> String {
    std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap()
}

#[test]
fn same_seed_same_metrics_and_resume_matches_an_uninterrupted_run() {
    foil::link_all();
    let tmp = tempfile::tempdir().unwrap();
    let recipe = write_recipe(tmp.path(), TINY);

    let a = run(Some(&recipe), &opts(&tmp.path().join("a"))).unwrap();
    let b = run(Some(&recipe), &opts(&tmp.path().join("b"))).unwrap();
    assert!(a.finished && b.finished);
    assert_eq!(metrics(&a.dir), metrics(&b.dir));
    assert_eq!(a.evals, b.evals);
    assert_eq!(a.evals.len(), 2);

    // stop in the middle of the rl stage (40 sft steps + 1 eval + 2 rl steps), then resume
    let c_dir = tmp.path().join("c");
    let stopped = run(
        Some(&recipe),
        &RunOptions {
            stop_after: Some(43),
            ..opts(&c_dir)
        },
    )
    .unwrap();
    assert!(!stopped.finished);
    assert_eq!(stopped.evals.len(), 1);
    let resumed = run(
        None,
        &RunOptions {
            resume: Some(c_dir.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(resumed.finished);
    assert_eq!(metrics(&c_dir), metrics(&a.dir));
    assert_eq!(resumed.evals, a.evals);
    assert!(c_dir.join("eval.md").exists());

    // stop inside the sft stage (between its checkpoints), resume twice
    let d_dir = tmp.path().join("d");
    let first = run(
        Some(&recipe),
        &RunOptions {
            stop_after: Some(13),
            ..opts(&d_dir)
        },
    )
    .unwrap();
    assert!(!first.finished);
    let second = run(
        None,
        &RunOptions {
            resume: Some(d_dir.clone()),
            stop_after: Some(30),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(!second.finished);
    let last = run(
        None,
        &RunOptions {
            resume: Some(d_dir.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(last.finished);
    assert_eq!(metrics(&d_dir), metrics(&a.dir));
    assert_eq!(last.evals, a.evals);
}

#[test]
fn eval_by_difficulty_splits_pass_at_k_by_operands() {
    foil::link_all();
    let tmp = tempfile::tempdir().unwrap();
    let text = "\
name: tiny
seed: 3
device: cpu
task: {type: arithmetic, min_operands: 2, max_operands: 3, max_operand: 3, ops: '+', modulus: 10, train: 48, test: 12}
policy: {type: tiny_gpt, d_model: 32, layers: 1, heads: 2, context: 40}
stages:
  - {type: sft, steps: 20, batch: 16, optimizer: {type: adamw, lr: 1.0e-2}}
  - {type: eval, label: e, k: [1, 2], by_difficulty: true, sampler: {type: local, n: 2, max_tokens: 24}}
";
    let recipe = write_recipe(tmp.path(), text);
    let s = run(Some(&recipe), &opts(&tmp.path().join("r"))).unwrap();
    let m = &s.evals[0].metrics;
    let get = |k: &str| m.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
    let (n2, n3) = (get("problems_d2").unwrap(), get("problems_d3").unwrap());
    assert_eq!(n2 + n3, get("problems").unwrap());
    assert!(get("problems_d4").is_none());
    for k in [1, 2] {
        let all = get(&format!("pass@{k}")).unwrap();
        let d2 = get(&format!("pass@{k}_d2")).unwrap();
        let d3 = get(&format!("pass@{k}_d3")).unwrap();
        // the overall pass@k is the problem-weighted mean of the per-difficulty ones
        assert!(
            ((n2 * d2 + n3 * d3) / (n2 + n3) - all).abs() < 1e-9,
            "k = {k}"
        );
    }
}

#[test]
fn nan_loss_is_a_clear_error_and_leaves_the_last_checkpoint_whole() {
    foil::link_all();
    let tmp = tempfile::tempdir().unwrap();
    let kl = "        - {type: adaptive_kl, coef: 0.1, target: 0.001, horizon: 10}";
    assert!(TINY.contains(kl));
    let text = TINY.replace(kl, "        - {type: nll, coef: .nan}");
    let recipe = write_recipe(tmp.path(), &text);
    let dir = tmp.path().join("nan");
    let e = format!("{:#}", run(Some(&recipe), &opts(&dir)).unwrap_err());
    assert!(
        e.contains("non-finite loss (NaN) at stage 2 `rl`, step 0"),
        "{e}"
    );
    assert!(e.contains("stage2-step000000"), "{e}");
    let ckpts = dir.join("checkpoints");
    let names: Vec<String> = std::fs::read_dir(&ckpts)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with(".tmp")), "{names:?}");
    let (latest, state) = foil_core::checkpoint::latest(&dir).unwrap().unwrap();
    assert_eq!((state.stage, state.step), (2, 0));
    assert!(latest.join("model.bin").exists() || std::fs::read_dir(&latest).unwrap().count() >= 2);
}

#[test]
fn resuming_a_directory_without_a_run_is_a_clear_error() {
    foil::link_all();
    let tmp = tempfile::tempdir().unwrap();
    let e = run(
        None,
        &RunOptions {
            resume: Some(tmp.path().to_path_buf()),
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("has no recipe.yaml"), "{e}");
}

#[test]
fn remax_trains_against_the_greedy_baseline_and_needs_it() {
    foil::link_all();
    let tmp = tempfile::tempdir().unwrap();
    let with = TINY.replace(
        "    sampler: {type: local, n: 4, max_tokens: 24}\n    objective:",
        "    sampler: {type: local, n: 4, max_tokens: 24}\n    baseline_sampler: {type: local, n: 1, temperature: 0.0, max_tokens: 24}\n    advantage: {type: remax}\n    objective:",
    );
    assert_ne!(with, TINY);
    let recipe = write_recipe(tmp.path(), &with);
    let s = run(Some(&recipe), &opts(&tmp.path().join("remax"))).unwrap();
    assert!(s.finished);
    assert!(metrics(&s.dir).contains(r#""stage_type":"rl""#));
    // without the baseline sampler the estimator explains what is missing
    let without = TINY.replace(
        "    sampler: {type: local, n: 4, max_tokens: 24}\n    objective:",
        "    sampler: {type: local, n: 4, max_tokens: 24}\n    advantage: {type: remax}\n    objective:",
    );
    let recipe = write_recipe(tmp.path(), &without);
    let e = format!(
        "{:#}",
        run(Some(&recipe), &opts(&tmp.path().join("no-baseline"))).unwrap_err()
    );
    assert!(e.contains("baseline_sampler"), "{e}");
}
