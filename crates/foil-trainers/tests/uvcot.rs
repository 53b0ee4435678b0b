//! In-process run of `recipes/uvcot.yaml` at a reduced size: the graded evaluator's score
//! gaps reach `sdpo` (step 0's margin is exactly −γ·gap), the loss is finite and the
//! chosen-vs-rejected log-ratio margin moves up.

use std::path::{Path, PathBuf};

use foil_data as _;
use foil_models as _;
use foil_trainers::{RunOptions, run};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or_else(|| panic!("no {k} in {v}"))
}

fn preference_metrics(extra: &[&str]) -> Vec<Value> {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let mut overrides: Vec<String> = [
        "task.train=200",
        "task.test=16",
        "stages.0.steps=150",
        "stages.1.sampler.n=2",
        "stages.1.k=[1, 2]",
        "stages.3.sampler.n=2",
        "stages.3.k=[1, 2]",
        "stages.2.steps=6",
        "stages.2.prompts_per_step=8",
        "stages.2.inner_steps=1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    overrides.extend(extra.iter().map(|s| s.to_string()));
    let s = run(
        Some(&root().join("recipes/uvcot.yaml")),
        &RunOptions {
            overrides,
            run_dir: Some(out.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(s.finished);
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["stage_type"] == "preference")
        .collect()
}

#[test]
fn uvcot_recipe_on_policy_carries_score_gaps() {
    let m = preference_metrics(&[]);
    assert_eq!(m.len(), 6);
    let trained: Vec<&Value> = m.iter().filter(|v| f(v, "pairs") > 0.0).collect();
    assert!(trained.len() >= 4, "too few steps with pairs: {m:?}");
    for v in &trained {
        let loss = f(v, "sdpo/loss");
        assert!(loss.is_finite() && loss > 0.0, "{v}");
        // every kept pair has a score gap ≥ min_score_gap = 0.5 (graded: partial credit)
        assert!(f(v, "sdpo/score_gap") >= 0.5 - 1e-6, "{v}");
    }
    // first update, π_θ = π_ref: h = 0, so z = −γ·(s_w − s_l) exactly (γ = 1)
    let first = trained[0];
    eprintln!(
        "on-policy first: {first}\non-policy last: {}",
        trained[trained.len() - 1]
    );
    assert!(
        (f(first, "sdpo/margin") + f(first, "sdpo/score_gap")).abs() < 1e-4,
        "{first}"
    );
}

#[test]
fn uvcot_on_a_fixed_judged_set_moves_the_margin() {
    let m = preference_metrics(&[
        "stages.2.mode=offline",
        "stages.2.offline_prompts=24",
        "stages.2.batch=16",
        "stages.2.steps=8",
    ]);
    assert_eq!(m.len(), 8);
    let (first, last) = (&m[0], &m[7]);
    eprintln!("fixed set first: {first}\nfixed set last: {last}");
    assert!(f(first, "sdpo/score_gap") >= 0.5 - 1e-6, "{first}");
    let margin = |v: &Value| f(v, "chosen_logp_change") - f(v, "rejected_logp_change");
    assert!(margin(first).abs() < 1e-5, "{first}");
    assert!(
        margin(last) > 0.5,
        "h(y_w) − h(y_l) after 7 steps: {}",
        margin(last)
    );
    assert!(
        f(last, "sdpo/loss") < f(first, "sdpo/loss"),
        "{first} {last}"
    );
    assert!(f(last, "sdpo/loss").is_finite());
}
