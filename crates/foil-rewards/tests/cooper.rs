//! Cooper in whole runs: SFT → VerifyRM pre-training (`reference: true`, pointwise) → `rl`
//! with the `cooper` reward model. The co-updated reward model is checkpointed with the
//! run (weights and AdamW state), so a run stopped inside the `rl` stage and resumed ends
//! with exactly the reward model of an uninterrupted run; `update: false` never changes it.

use std::path::{Path, PathBuf};

use foil_core::Problem;
use foil_rewards::LoadedRewardModel;
use foil_rewards::scorer::read_meta;
use foil_trainers::{RunOptions, run};

fn link() {
    std::hint::black_box((
        std::any::type_name::<foil_data::Arithmetic>(),
        std::any::type_name::<foil_models::TinyGpt>(),
        std::any::type_name::<foil_rewards::RewardModelStage>(),
        std::any::type_name::<foil_rewards::Cooper>(),
        std::any::type_name::<foil_trainers::Rl>(),
    ));
}

const SFT: usize = 60;
const RM: usize = 20;
const RL: usize = 4;

fn recipe(update: bool) -> String {
    format!(
        "\
name: cooper-test
seed: 3
device: cpu
task: {{type: arithmetic, min_operands: 3, max_operands: 3, max_operand: 4, ops: '+', modulus: 10, train: 80, test: 20, demo_shortcut_rate: 0.3}}
policy: {{type: tiny_gpt, d_model: 32, layers: 1, heads: 2, context: 48}}
stages:
  - {{type: sft, steps: {SFT}, batch: 32, log_every: 20, optimizer: {{type: adamw, lr: 1.0e-2}}}}
  - type: reward_model
    steps: {RM}
    batch: 32
    loss: pointwise
    reference: true
    log_every: 10
    prompts: 40
    eval_prompts: 10
    sampler: {{type: local, n: 4, max_tokens: 24}}
    verifier: {{type: short_bias, inner: {{type: numeric}}, max_steps: 1}}
    optimizer: {{type: adamw, lr: 3.0e-3}}
  - type: rl
    steps: {RL}
    prompts_per_step: 6
    sampler: {{type: local, n: 4, max_tokens: 24}}
    verifier: {{type: numeric}}
    reward_model: {{type: cooper, path: reward_model, update: {update}, optimizer: {{type: adamw, lr: 3.0e-3}}}}
    optimizer: {{type: adamw, lr: 1.0e-3}}
"
    )
}

fn write(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("cooper.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

fn scores(dir: &Path) -> Vec<Vec<f32>> {
    let m =
        LoadedRewardModel::load(dir, &foil_core::backend::parse_device("cpu").unwrap()).unwrap();
    let p = Problem {
        id: "t".into(),
        prompt: "Q:3+4+2=".into(),
        solution: "3+4=7|7+2=9|A:9".into(),
        answer: "9".into(),
        difficulty: 3,
    };
    let prompt = m.meta.prompt_of(&p);
    assert_eq!(
        prompt, "Q:3+4+2=9:",
        "the saved model reads the reference answer"
    );
    m.score_texts(&[
        (&prompt, "3+4=7|7+2=9|A:9"),
        (&prompt, "3+4=7|7+2=8|A:8"),
        (&prompt, "3+4=7|A:7"),
    ])
    .unwrap()
}

fn rl_rows(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["stage_type"] == "rl")
        .collect()
}

#[test]
fn a_resumed_cooper_run_continues_the_co_updated_reward_model() {
    link();
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), &recipe(true));
    let full = run(
        Some(&path),
        &RunOptions {
            run_dir: Some(tmp.path().join("full")),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(full.finished);
    // every rl step logs the RM's agreement with the rule verifier and its update
    let rows = rl_rows(&full.dir);
    assert_eq!(rows.len(), RL);
    for r in &rows {
        assert!(r["rm_acc"].as_f64().is_some(), "{r}");
        assert!(r["rm_pairs"].as_f64().is_some(), "{r}");
    }
    let updates = rows
        .iter()
        .filter(|r| r["rm_pairs"].as_f64().unwrap() > 0.0)
        .count();
    assert!(updates > 0, "no step had a rule-correct rollout: {rows:?}");
    let meta = read_meta(&full.dir.join("cooper_rm")).unwrap();
    // pre-training steps + one AdamW step per rl step that had pairs
    assert_eq!(meta.trained_steps, RM + updates);
    let want = scores(&full.dir.join("cooper_rm"));

    // stop after the second rl step, then resume
    let part = tmp.path().join("part");
    let stopped = run(
        Some(&path),
        &RunOptions {
            run_dir: Some(part.clone()),
            stop_after: Some(SFT + RM + 1 + 2),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(!stopped.finished);
    assert!(
        !part.join("cooper_rm").join("reward_model.json").exists(),
        "the final model is written only when the stage ends"
    );
    let resumed = run(
        None,
        &RunOptions {
            resume: Some(part.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(resumed.finished);
    assert_eq!(
        read_meta(&part.join("cooper_rm")).unwrap().trained_steps,
        meta.trained_steps
    );
    assert_eq!(scores(&part.join("cooper_rm")), want);
    assert_eq!(rl_rows(&part), rows);
}

#[test]
fn a_static_reward_model_is_never_updated() {
    link();
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), &recipe(false));
    let done = run(
        Some(&path),
        &RunOptions {
            run_dir: Some(tmp.path().join("s")),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        read_meta(&done.dir.join("cooper_rm"))
            .unwrap()
            .trained_steps,
        RM
    );
    assert_eq!(
        scores(&done.dir.join("cooper_rm")),
        scores(&done.dir.join("reward_model"))
    );
}
