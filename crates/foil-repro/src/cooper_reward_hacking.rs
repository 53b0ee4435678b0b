//! `cooper_reward_hacking`: co-updating the reward model stops the policy from hacking it.
//!
//! **Claim** (Hong et al. 2025, "Cooper: Co-Optimizing Policy and Reward Models in
//! Reinforcement Learning for Large Language Models", arXiv 2508.05613; methods.md §13
//! tiny experiment): with a learned reward model that has an exploitable bias, GRPO on the
//! static RM hacks it — (b) the RM reward climbs while true accuracy falls, and the RM's
//! agreement with the rule verifier on fresh policy samples decays; Cooper, which updates
//! the RM every step on (rule-verified rollout ≻ answer-perturbed copy) pairs, (c) tracks
//! or exceeds GRPO on the rule reward (a), and its RM stays accurate on fresh samples.
//!
//! **Setting.** `recipes/cooper.yaml` (c), `cooper_static_rm.yaml` (b),
//! `cooper_rule_reward.yaml` (a), sharing per seed one prefix (crate::arms): arithmetic with
//! 3 operands (`max_operand 9, +-*, mod 10`), 30 % shortcut demonstrations; tiny_gpt d=64 ×
//! 2 layers, SFT 300 steps; a VerifyRM (reads problem ⧺ reference answer ⧺ response,
//! backbone from the SFT policy) pre-trained 200 steps with pointwise BCE on the SFT
//! policy's samples (4 per problem, 256 problems, + references) labelled by `short_bias`
//! (one written step counts as correct: the RM likes the shortcut); then GRPO 40 steps ×
//! 16 prompts × 8 samples, reward = σ(RM score) for (b)/(c), `numeric` for (a); Cooper's
//! RM: one AdamW step (lr 1e-4) per RL step on ≤ 2 pairs per group. True accuracy: eval
//! `after` (pass@1, 8 samples on 100 test problems, `numeric`). Seeds 1–3.
//! `--quick`: one seed, SFT 150, RM 100 steps, RL 12 steps × 8 prompts, arms (b) and (c).
//!
//! **Acceptance rule** (fixed before the runs; paired by seed, [`crate::rules`]; "early" /
//! "late" = the mean over the first / last 5 RL steps of the per-step log):
//! 1. (full: gating) static RM hacked: its RM reward late − early rises, and its true
//!    pass@1 after − before falls;
//! 2. (full: gating) Cooper tracks or exceeds the rule reward: pass@1 (c) − (a) ≥ −0.05;
//! 3. (full: gating) RM accuracy on fresh samples: late `rm_acc` (c) − (b) rises;
//! 4. (reported) static RM's `rm_acc` late − early; pass@1 (c) − (b);
//! 5. (quick: gating) the mechanism: Cooper's RM gets a Bradley–Terry step on rule-picked
//!    pairs at ≥ half of the RL steps, and the static arm's RM is never updated (its saved
//!    model has the pre-training step count).
//!
//! **Measured** (seeds 1–3, `docs/reproductions.md`): 1 holds (static RM: RM reward
//! +0.310, true pass@1 −0.191, every seed); 2 and 3 do **not** hold (Cooper − rule reward
//! pass@1 −0.353; late `rm_acc` Cooper − static +0.006): the co-updated RM, one step at lr
//! 1e-4 on answer-perturbed pairs, does not unlearn the length bias the policy exploits.
//! `--quick`: 5 holds, 47 s.

use anyhow::Context;
use serde_json::{Value, json};

use crate::Options;
use crate::arms::{Arm, ArmRun, run_arms, runs_json};
use crate::report::{Report, md_table};
use crate::rules::{Check, all_positive, at_least, lowers, raises};
use crate::stats::{Summary, diff, mean};

pub const NAME: &str = "cooper_reward_hacking";
pub const ABOUT: &str = "GRPO on a biased static reward model hacks it; Cooper (RM updated \
     each step on rule-verified vs answer-perturbed pairs) does not (Hong et al. 2025)";

const WINDOW: usize = 5;

fn quick_overrides() -> Vec<String> {
    [
        "stages.0.steps=150",
        "stages.2.steps=100",
        "stages.2.prompts=128",
        "stages.2.eval_prompts=16",
        "stages.1.limit=40",
        "stages.3.steps=12",
        "stages.3.prompts_per_step=8",
        "stages.4.limit=40",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The `rl` stage's per-step rows of a run.
fn rl_rows(run: &ArmRun) -> anyhow::Result<Vec<Value>> {
    let path = run.dir.join("metrics.jsonl");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["stage_type"] == "rl")
        .collect())
}

/// Mean of `key` over the first (`late == false`) or last `WINDOW` rl rows.
fn window(run: &ArmRun, key: &str, late: bool) -> anyhow::Result<f64> {
    let rows = rl_rows(run)?;
    let vals: Vec<f64> = rows.iter().filter_map(|r| r[key].as_f64()).collect();
    anyhow::ensure!(
        !vals.is_empty(),
        "{} seed {}: no `{key}` in the rl log",
        run.label,
        run.seed
    );
    let w = WINDOW.min(vals.len());
    let part = if late {
        &vals[vals.len() - w..]
    } else {
        &vals[..w]
    };
    Ok(mean(part))
}

fn per_seed(
    runs: &[ArmRun],
    label: &str,
    f: impl Fn(&ArmRun) -> anyhow::Result<f64>,
) -> anyhow::Result<Vec<f64>> {
    runs.iter().filter(|r| r.label == label).map(f).collect()
}

fn pass1(r: &ArmRun, eval: &str) -> anyhow::Result<f64> {
    r.metric(eval, "pass@1")
}

fn trained_steps(dir: &std::path::Path) -> anyhow::Result<f64> {
    let path = dir.join("reward_model.json");
    let v: Value = serde_json::from_str(
        &std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
    )?;
    v["trained_steps"]
        .as_f64()
        .with_context(|| format!("no trained_steps in {}", path.display()))
}

fn checks(runs: &[ArmRun], quick: bool) -> anyhow::Result<Vec<Check>> {
    let mut out = Vec::new();
    // 5. the mechanism
    let updated = per_seed(runs, "Cooper", |r| {
        let rows = rl_rows(r)?;
        let with = rows
            .iter()
            .filter(|v| v["rm_pairs"].as_f64().unwrap_or(0.0) > 0.0)
            .count();
        Ok(with as f64 / rows.len().max(1) as f64 - 0.5 + 1e-9)
    })?;
    let frozen = per_seed(runs, "static RM", |r| {
        Ok(
            trained_steps(&r.dir.join("reward_model"))? - trained_steps(&r.dir.join("cooper_rm"))?
                + 1.0,
        )
    })?;
    let mech = all_positive(
        "5a. share of RL steps with a Cooper RM update − ½ (≥ 0)",
        &updated,
    );
    let mech2 = all_positive(
        "5b. static RM: pre-trained − final trained steps + 1 (= 1: never updated)",
        &frozen,
    );
    let gate_mech = |c: Check| if quick { c } else { c.reported() };
    out.push(gate_mech(mech));
    out.push(gate_mech(mech2));
    let static_reward = per_seed(runs, "static RM", |r| {
        Ok(window(r, "reward", true)? - window(r, "reward", false)?)
    })?;
    let static_acc = per_seed(runs, "static RM", |r| {
        Ok(pass1(r, "after")? - pass1(r, "before")?)
    })?;
    let gate = |c: Check| if quick { c.reported() } else { c };
    out.push(gate(raises(
        "1a. static RM: RM reward late − early",
        &static_reward,
    )));
    out.push(gate(lowers(
        "1b. static RM: true pass@1 after − before",
        &static_acc,
    )));
    let cooper_after = per_seed(runs, "Cooper", |r| pass1(r, "after"))?;
    let static_after = per_seed(runs, "static RM", |r| pass1(r, "after"))?;
    let late_acc = |label: &str| per_seed(runs, label, |r| window(r, "rm_acc", true));
    let cooper_rm = late_acc("Cooper")?;
    let static_rm = late_acc("static RM")?;
    if !quick {
        let rule_after = per_seed(runs, "rule reward", |r| pass1(r, "after"))?;
        out.push(at_least(
            "2. pass@1 Cooper − rule reward",
            &diff(&cooper_after, &rule_after),
            0.05,
        ));
    }
    out.push(gate(raises(
        "3. late rm_acc on fresh samples, Cooper − static RM",
        &diff(&cooper_rm, &static_rm),
    )));
    let static_drift = per_seed(runs, "static RM", |r| {
        Ok(window(r, "rm_acc", true)? - window(r, "rm_acc", false)?)
    })?;
    out.push(lowers("4a. static RM: rm_acc late − early", &static_drift).reported());
    out.push(
        raises(
            "4b. pass@1 Cooper − static RM",
            &diff(&cooper_after, &static_after),
        )
        .reported(),
    );
    Ok(out)
}

fn table(runs: &[ArmRun], labels: &[&str]) -> anyhow::Result<String> {
    type Getter = Box<dyn Fn(&ArmRun) -> anyhow::Result<f64>>;
    let cols: Vec<(&str, Getter)> = vec![
        ("pass@1 before", Box::new(|r| pass1(r, "before"))),
        ("pass@1 after", Box::new(|r| pass1(r, "after"))),
        ("reward early", Box::new(|r| window(r, "reward", false))),
        ("reward late", Box::new(|r| window(r, "reward", true))),
        ("rule acc early", Box::new(|r| window(r, "accuracy", false))),
        ("rule acc late", Box::new(|r| window(r, "accuracy", true))),
        (
            "len early",
            Box::new(|r| window(r, "response_length", false)),
        ),
        ("len late", Box::new(|r| window(r, "response_length", true))),
        (
            "rm_acc early",
            Box::new(|r| window(r, "rm_acc", false).or(Ok(f64::NAN))),
        ),
        (
            "rm_acc late",
            Box::new(|r| window(r, "rm_acc", true).or(Ok(f64::NAN))),
        ),
    ];
    let mut rows = Vec::new();
    for label in labels {
        for (name, f) in &cols {
            let v = per_seed(runs, label, f)?;
            let s = Summary::of(&v);
            rows.push(vec![
                label.to_string(),
                name.to_string(),
                s.mean_std(),
                s.per_seed(),
            ]);
        }
    }
    Ok(md_table(
        &["arm", "metric", "mean ± std", "per seed"],
        &rows,
    ))
}

pub fn run(opts: &Options) -> anyhow::Result<Report> {
    let seeds = opts.seed_list(3, 1);
    let dir = opts.dir(NAME);
    let mut arms = vec![
        Arm::new("static RM", opts.recipe("cooper_static_rm.yaml")),
        Arm::new("Cooper", opts.recipe("cooper.yaml")),
    ];
    if !opts.quick {
        arms.insert(
            0,
            Arm::new("rule reward", opts.recipe("cooper_rule_reward.yaml")),
        );
    }
    let labels: Vec<&str> = arms.iter().map(|a| a.label.as_str()).collect();
    let labels: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
    let common = if opts.quick {
        quick_overrides()
    } else {
        Vec::new()
    };
    let mut runs = Vec::new();
    for &seed in &seeds {
        let r = run_arms(
            &arms,
            &common,
            seed,
            &dir.join(format!("seed{seed}")),
            opts.progress,
        )?;
        runs.extend(r);
    }
    let label_refs: Vec<&str> = labels.iter().map(|s| s.as_str()).collect();
    let checks = checks(&runs, opts.quick)?;
    Ok(Report {
        name: NAME.into(),
        claim: ABOUT.into(),
        command: opts.command(NAME),
        quick: opts.quick,
        seeds: seeds.clone(),
        sections: vec![table(&runs, &label_refs)?],
        checks,
        plot: None,
        wall_s: 0.0,
        data: json!({
            "overrides": common,
            "runs": runs_json(&runs),
        }),
    })
}
