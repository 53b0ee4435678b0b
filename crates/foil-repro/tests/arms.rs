//! Arms that share their stages before `rl` give, from one shared checkpoint, exactly what
//! each recipe gives run on its own.

use std::path::{Path, PathBuf};

use foil_repro::arms::{Arm, run_arms};
use foil_trainers::{RunOptions, run};

const TINY: &str = "\
name: tiny
seed: 3
device: cpu
task: {type: arithmetic, max_operand: 3, ops: '+', modulus: 10, train: 48, test: 8}
policy: {type: tiny_gpt, d_model: 32, layers: 1, heads: 2, context: 40}
stages:
  - {type: sft, steps: 30, batch: 16, optimizer: {type: adamw, lr: 1.0e-2}}
  - {type: eval, label: before, k: [1, 2], sampler: {type: local, n: 2, max_tokens: 24}}
  - type: rl
    steps: 3
    prompts_per_step: 4
    sampler: {type: local, n: 4, max_tokens: 24}
    advantage: {type: ADVANTAGE}
    objective: {type: ppo_clip}
  - {type: eval, label: after, k: [1, 2], sampler: {type: local, n: 2, max_tokens: 24}}
";

fn recipe(dir: &Path, advantage: &str) -> PathBuf {
    let p = dir.join(format!("{advantage}.yaml"));
    std::fs::write(&p, TINY.replace("ADVANTAGE", advantage)).unwrap();
    p
}

#[test]
fn shared_prefix_arms_equal_separate_runs() {
    foil::link_all();
    let tmp = tempfile::tempdir().unwrap();
    let arms = [
        Arm::new("GRPO", recipe(tmp.path(), "grpo")),
        Arm::new("NSR", recipe(tmp.path(), "nsr")),
    ];
    let common = ["stages.2.steps=2".to_string()];
    let got = run_arms(&arms, &common, 5, &tmp.path().join("seed5"), false).unwrap();
    assert_eq!(got.len(), 2);
    for (arm, r) in arms.iter().zip(&got) {
        assert_eq!(r.label, arm.label);
        assert_eq!(r.seed, 5);
        let alone = run(
            Some(&arm.recipe),
            &RunOptions {
                overrides: vec![common[0].clone(), "seed=5".into()],
                run_dir: Some(tmp.path().join(format!("alone-{}", arm.label))),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(r.evals, alone.evals, "{}", arm.label);
        // the whole metrics log matches too (same rollouts, same losses)
        assert_eq!(
            std::fs::read_to_string(r.dir.join("metrics.jsonl")).unwrap(),
            std::fs::read_to_string(alone.dir.join("metrics.jsonl")).unwrap()
        );
    }
    // the arms started from one checkpoint: identical "before", different "after"
    assert_eq!(got[0].evals[0], got[1].evals[0]);
}

#[test]
fn arms_that_differ_before_rl_are_refused() {
    foil::link_all();
    let tmp = tempfile::tempdir().unwrap();
    let arms = [
        Arm::new("A", recipe(tmp.path(), "grpo")),
        Arm {
            overrides: vec!["stages.0.steps=31".into()],
            ..Arm::new("B", recipe(tmp.path(), "nsr"))
        },
    ];
    let e = format!(
        "{:#}",
        run_arms(&arms, &[], 1, &tmp.path().join("x"), false).unwrap_err()
    );
    assert!(e.contains("cannot share a checkpoint"), "{e}");
}
