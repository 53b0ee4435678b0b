//! In-process runs of the `preference` stage: DPO on the sample pair file raises the
//! chosen-vs-rejected margin; Pref-FT raises the chosen likelihood; on-policy DPO on the
//! bandit trains; an interrupted run resumes to the same weights' metrics.

use std::path::{Path, PathBuf};

use foil_data as _;
use foil_models as _;
use foil_trainers::{RunOptions, run};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn metrics(dir: &Path, stage_type: &str) -> Vec<Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["stage_type"] == stage_type)
        .collect()
}

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or_else(|| panic!("no {k} in {v}"))
}

fn offline_recipe(objective: &str, train_on: &str) -> String {
    let data = root().join("data-samples/pref_arith_pairs.jsonl");
    format!(
        r#"
name: pref-test
seed: 3
device: cpu
task: {{type: arithmetic, max_operand: 9, modulus: 10, train: 50, test: 10}}
policy: {{type: tiny_gpt, d_model: 32, layers: 1, heads: 2, context: 48}}
stages:
  - type: preference
    steps: 12
    data: {data:?}
    batch: 36
    train_on: {train_on}
    objective: {objective}
    optimizer: {{type: adamw, lr: 3.0e-3}}
"#
    )
}

fn run_recipe(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("r.yaml");
    std::fs::write(&path, text).unwrap();
    let out = dir.join("run");
    let s = run(
        Some(&path),
        &RunOptions {
            run_dir: Some(out.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(s.finished);
    out
}

#[test]
fn offline_dpo_raises_the_margin_on_the_sample_file() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_recipe(
        tmp.path(),
        &offline_recipe("{type: dpo, beta: 0.1}", "pairs"),
    );
    let m = metrics(&out, "preference");
    assert_eq!(m.len(), 12);
    // 18 pair lines + 6 rankings × 3·2/2 = 36 pairs; batch 36 = one epoch per step
    assert_eq!(f(&m[0], "offline_pairs"), 36.0);
    assert_eq!(f(&m[0], "data_lines"), 24.0);
    // step 0: π_θ = π_ref, so the implicit-reward margin is exactly 0
    assert!(f(&m[0], "dpo/margin").abs() < 1e-5, "{}", m[0]);
    let last = &m[11];
    let margin = f(last, "chosen_logp_change") - f(last, "rejected_logp_change");
    assert!(margin > 1.0, "h⁺ − h⁻ after 11 DPO steps: {margin}");
    assert!(f(last, "dpo/loss") < f(&m[0], "dpo/loss"));
    assert!(f(last, "pair_accuracy") > 0.8, "{last}");
}

#[test]
fn offline_pref_ft_raises_the_chosen_likelihood() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_recipe(tmp.path(), &offline_recipe("{type: nll}", "chosen"));
    let m = metrics(&out, "preference");
    // 36 chosen rows trained per step
    assert_eq!(f(&m[0], "trained_rows"), 36.0);
    assert!(f(&m[11], "chosen_logp_change") > 5.0, "{}", m[11]);
}

#[test]
fn on_policy_dpo_on_the_bandit_moves_toward_the_peak_and_resumes_exactly() {
    let recipe = r#"
name: bandit-test
seed: 2
device: cpu
task: {type: bandit, train: 200, test: 2}
policy: {type: tiny_gpt, d_model: 32, layers: 1, heads: 2, context: 8}
stages:
  - {type: sft, steps: 40, batch: 32, optimizer: {type: adamw, lr: 1.0e-2}}
  - type: preference
    mode: on_policy
    steps: 6
    prompts_per_step: 4
    sampler: {type: local, n: 8, temperature: 1.0, max_tokens: 2}
    verifier: {type: bandit_reward, peak: 70}
    pairing: best_worst
    inner_steps: 2
    objective: {type: dpo, beta: 0.1}
    optimizer: {type: adamw, lr: 1.0e-2}
"#;
    let tmp = tempfile::tempdir().unwrap();
    let out = run_recipe(tmp.path(), recipe);
    let m = metrics(&out, "preference");
    assert_eq!(m.len(), 6);
    // 4 prompts × 8 samples per step: 32 reward queries per step, cumulative
    assert_eq!(f(&m[5], "reward_queries"), 192.0);
    assert!(f(&m[0], "pairs") > 0.0);
    // the chosen action is nearer 70 than the rejected one: DPO raises its log-ratio
    assert!(
        f(&m[5], "chosen_logp_change") > f(&m[5], "rejected_logp_change"),
        "{}",
        m[5]
    );

    // interrupted after 40 + 3 steps, resumed: the same metrics as the whole run
    let path = tmp.path().join("r.yaml");
    let part = tmp.path().join("part");
    let s = run(
        Some(&path),
        &RunOptions {
            run_dir: Some(part.clone()),
            stop_after: Some(43),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(!s.finished);
    run(
        None,
        &RunOptions {
            resume: Some(part.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    let r = metrics(&part, "preference");
    let key = |v: &Value| (f(v, "step"), f(v, "mean_reward"), f(v, "dpo/loss"));
    let whole: Vec<_> = m.iter().map(key).collect();
    let resumed: Vec<_> = r.iter().map(key).collect();
    assert_eq!(whole, resumed);
}
