//! `prof_process`: PROF's process-consistency filter vs the Blend baseline.
//!
//! **Claim** (Ye et al. 2025, "Beyond Correctness: Harmonizing Process and Outcome
//! Rewards through RL Training", arXiv 2509.03403; `../shared/docs/methods.md` §11): with
//! the same noisy process reward model, using it as a filter (PROF: drop the responses
//! whose steps disagree with their outcome, keeping correct/incorrect balanced, then GRPO)
//! raises the fraction of correct answers whose steps are all correct compared with
//! blending it into the reward (Blend: reward = outcome + 0.8 · mean step value, then GRPO),
//! without costing answer accuracy.
//!
//! **Setting.** T0 as in `recipes/prof.yaml`: chain arithmetic mod 10, 2–3 operands, a
//! 106k-parameter GPT, SFT 300 steps on demonstrations of which 30 % are "lucky" (one wrong
//! written step, right answer) and 20 % carry a wrong step into a wrong answer; then 80 RL
//! steps of 16 prompts × 8 samples. The PRM is the exact step checker with 10 % of its
//! step values flipped (a deterministic hash of the response), the outcome the
//! answer-only `numeric` check. Three arms from the same SFT checkpoint per seed: PROF
//! (`prof.yaml`, remove 4 of 8), Blend (`prof_blend.yaml`, β = 0.8) and plain GRPO on the
//! outcome (`prof_grpo_baseline.yaml`, for context). Evaluation: 200 held-out problems × 8
//! samples at T = 1; `pass@1` from `numeric`, and on the same samples `process_correct` =
//! (answers correct with every step exactly correct) / (answers correct), from the eval
//! stage's `process: {type: steps}`. Seeds 1–3.
//!
//! **Part A (mechanism, no training).** From each seed's SFT checkpoint, 64 training
//! problems × 8 samples with the RL sampler, scored with `prof.yaml`'s verifier (noisy PRM)
//! and credited by `prof.yaml`'s estimator; a response is "removed" when its credit is
//! `Excluded`. "Clean" = every expected step written exactly right, the answer aside (the
//! `steps` checker's step rewards all 1, no noise). The first full run used the checker's
//! `correct` instead, which also requires the right answer, so no incorrect response
//! could be clean and A3 was 0 by construction — a measurement bug, fixed afterwards
//! (see docs/reproductions.md; the full run has not been repeated since).
//!
//! **Acceptance rule** ([`crate::rules`], per-seed values, arms paired by seed), fixed
//! before the runs:
//! - A1 (balance): over groups with both correct and incorrect responses,
//!   mean |n⁺ − n⁻| before − mean |kept⁺ − kept⁻| after the filter > 0 on every seed;
//! - A2 (ranking, correct side): clean fraction among kept correct − among removed correct
//!   > 0 on every seed (seeds with no removed correct response count as failing);
//! - A3 (ranking, incorrect side): clean fraction among removed incorrect − among kept
//!   incorrect > 0 on every seed (same proviso);
//! - B1 (the claim): process_correct(PROF) − process_correct(Blend) after RL: raises
//!   (mean > 0 and > one standard error);
//! - B2: pass@1(PROF) − pass@1(Blend) after RL: at least as good (mean ≥ −0.02).
//!
//! The claim holds when all five hold. PROF − GRPO on process_correct and on pass@1 is
//! reported, not gating (GRPO is context, not the paper's comparison).
//!
//! **`--quick`** (seed 1, the SFT prefix and part A only, ≈ 1 min): gates on A1 (holds on
//! every seed of the full run by +3.4 ± 0.1) and reports A2 and A3 without gating (A2 did
//! not hold on seed 2 of the full run; A3 has not been measured with the fixed
//! definition of "clean"); B needs the full run.
//!
//! **Measured**: see `docs/reproductions.md`.

use std::path::Path;

use anyhow::{Context, ensure};
use foil_core::backend::parse_device;
use foil_core::recipe::Recipe;
use foil_core::{AdvantageEstimator, Credit, Sampler, ScoredGroup, Verifier, checkpoint, rng};
use foil_trainers::{RunOptions, run as run_recipe};
use serde::Serialize;
use serde_json::{Value, json};

use crate::Options;
use crate::arms::{Arm, ArmRun, run_arms};
use crate::plot::{BarSeries, Panel, figure};
use crate::report::{Report, md_table};
use crate::rules::{Check, TOL, all_positive, at_least, raises};
use crate::stats::{Summary, diff};

pub const NAME: &str = "prof_process";
pub const ABOUT: &str = "PROF (PRM as a consistency filter) raises the fraction of correct \
     answers whose steps are all correct over Blend (PRM blended into the reward) at no cost \
     in accuracy (Ye et al. 2025)";

/// Training problems sampled per seed for part A.
pub const PROBE_PROBLEMS: usize = 64;

/// The arms of part B.
pub fn arms(opts: &Options) -> Vec<Arm> {
    vec![
        Arm::new("PROF", opts.recipe("prof.yaml")),
        Arm::new("Blend", opts.recipe("prof_blend.yaml")),
        Arm::new("GRPO", opts.recipe("prof_grpo_baseline.yaml")),
    ]
}

/// What part A measured for one seed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Probe {
    pub seed: u64,
    /// Groups with both correct and incorrect responses.
    pub mixed_groups: usize,
    /// Mean |n⁺ − n⁻| of those groups before and after the filter.
    pub imbalance_before: f64,
    pub imbalance_after: f64,
    /// Responses kept/removed, by outcome, and how many of them are clean.
    pub kept_pos: usize,
    pub kept_pos_clean: usize,
    pub removed_pos: usize,
    pub removed_pos_clean: usize,
    pub kept_neg: usize,
    pub kept_neg_clean: usize,
    pub removed_neg: usize,
    pub removed_neg_clean: usize,
    /// Lucky answers (correct, not clean) among all sampled correct responses.
    pub lucky_share: f64,
}

fn frac(a: usize, b: usize) -> f64 {
    if b == 0 {
        f64::NAN
    } else {
        a as f64 / b as f64
    }
}

impl Probe {
    fn a1(&self) -> f64 {
        self.imbalance_before - self.imbalance_after
    }
    fn a2(&self) -> f64 {
        let d = frac(self.kept_pos_clean, self.kept_pos)
            - frac(self.removed_pos_clean, self.removed_pos);
        if d.is_nan() { -1.0 } else { d }
    }
    fn a3(&self) -> f64 {
        let d = frac(self.removed_neg_clean, self.removed_neg)
            - frac(self.kept_neg_clean, self.kept_neg);
        if d.is_nan() { -1.0 } else { d }
    }
}

/// The `rl` stage of a recipe as JSON.
fn rl_stage(recipe: &Recipe) -> anyhow::Result<Value> {
    recipe
        .stages
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .find(|v| v.get("type").and_then(Value::as_str) == Some("rl"))
        .with_context(|| format!("recipe `{}` has no rl stage", recipe.name))
}

/// Part A on the SFT checkpoint in `prefix_dir` (a run of `prof.yaml` stopped before rl).
pub fn probe(opts: &Options, seed: u64, prefix_dir: &Path) -> anyhow::Result<Probe> {
    let recipe = Recipe::load(&opts.recipe("prof.yaml"), &[format!("seed={seed}")])?;
    let rl = rl_stage(&recipe)?;
    let field = |k: &str| {
        rl.get(k)
            .cloned()
            .with_context(|| format!("rl stage: no `{k}`"))
    };
    let sampler: Box<dyn Sampler> = serde_json::from_value(field("sampler")?)?;
    let verifier: Box<dyn Verifier> = serde_json::from_value(field("verifier")?)?;
    let advantage: Box<dyn AdvantageEstimator> = serde_json::from_value(field("advantage")?)?;
    let modulus = serde_json::to_value(&recipe.task)?
        .get("modulus")
        .and_then(Value::as_i64)
        .context("prof.yaml: task without modulus")?;
    let exact: Box<dyn Verifier> =
        serde_json::from_value(json!({"type": "steps", "modulus": modulus}))?;
    let task = recipe.task.build(seed)?;
    let tok = task.tokenizer.clone();
    let device = parse_device(&recipe.device)?;
    let mut policy = recipe.policy.build(tok.vocab_size(), &device, seed)?;
    let (ckpt, _) = checkpoint::latest(prefix_dir)?
        .with_context(|| format!("no checkpoint in {}", prefix_dir.display()))?;
    policy.load(&ckpt)?;
    let model = policy.inference();
    let problems = task.train[..PROBE_PROBLEMS.min(task.train.len())].to_vec();
    let sampled = sampler.sample(
        model.as_ref(),
        tok.as_ref(),
        &problems,
        rng::derive(seed, &[0x9f0f]),
    )?;
    let groups: Vec<ScoredGroup> = sampled
        .into_iter()
        .map(|g| ScoredGroup::verified(g, verifier.as_ref()))
        .collect();
    let credits = advantage.estimate(&groups)?;
    let mut p = Probe {
        seed,
        ..Probe::default()
    };
    let (mut pos_all, mut lucky) = (0usize, 0usize);
    let (mut imb_before, mut imb_after) = (0.0, 0.0);
    for (g, cs) in groups.iter().zip(&credits) {
        let (mut n_pos, mut n_neg, mut k_pos, mut k_neg) = (0i64, 0i64, 0i64, 0i64);
        for ((c, v), credit) in g.group.completions.iter().zip(&g.verdicts).zip(cs) {
            // clean = every expected step written exactly right, the answer aside
            let steps = exact.verify(&g.group.problem, &c.text).step_rewards;
            let clean = !steps.is_empty() && steps.iter().all(|&x| x == 1.0);
            let kept = *credit != Credit::Excluded;
            if v.correct {
                n_pos += 1;
                pos_all += 1;
                lucky += usize::from(!clean);
                let (n, nc) = if kept {
                    k_pos += 1;
                    (&mut p.kept_pos, &mut p.kept_pos_clean)
                } else {
                    (&mut p.removed_pos, &mut p.removed_pos_clean)
                };
                *n += 1;
                *nc += usize::from(clean);
            } else {
                n_neg += 1;
                let (n, nc) = if kept {
                    k_neg += 1;
                    (&mut p.kept_neg, &mut p.kept_neg_clean)
                } else {
                    (&mut p.removed_neg, &mut p.removed_neg_clean)
                };
                *n += 1;
                *nc += usize::from(clean);
            }
        }
        if n_pos > 0 && n_neg > 0 {
            p.mixed_groups += 1;
            imb_before += (n_pos - n_neg).abs() as f64;
            imb_after += (k_pos - k_neg).abs() as f64;
        }
    }
    ensure!(
        p.mixed_groups > 0,
        "seed {seed}: no group with both correct and incorrect responses among {PROBE_PROBLEMS}"
    );
    p.imbalance_before = imb_before / p.mixed_groups as f64;
    p.imbalance_after = imb_after / p.mixed_groups as f64;
    p.lucky_share = frac(lucky, pos_all);
    Ok(p)
}

/// Part A's checks.
pub fn probe_checks(probes: &[Probe]) -> Vec<Check> {
    let v = |f: fn(&Probe) -> f64| probes.iter().map(f).collect::<Vec<_>>();
    vec![
        all_positive(
            "A1. the filter reduces the correct/incorrect imbalance of mixed groups (mean |n⁺ − n⁻| before − after)",
            &v(Probe::a1),
        ),
        all_positive(
            "A2. kept correct responses are cleaner than removed ones (clean share kept − removed)",
            &v(Probe::a2),
        ),
        all_positive(
            "A3. removed incorrect responses are cleaner than kept ones (clean share removed − kept)",
            &v(Probe::a3),
        ),
    ]
}

fn probe_table(probes: &[Probe]) -> String {
    let rows: Vec<Vec<String>> = probes
        .iter()
        .map(|p| {
            vec![
                p.seed.to_string(),
                format!("{:.3}", p.lucky_share),
                p.mixed_groups.to_string(),
                format!("{:.3} → {:.3}", p.imbalance_before, p.imbalance_after),
                format!(
                    "{}/{} ({:.3})",
                    p.kept_pos_clean,
                    p.kept_pos,
                    frac(p.kept_pos_clean, p.kept_pos)
                ),
                format!(
                    "{}/{} ({:.3})",
                    p.removed_pos_clean,
                    p.removed_pos,
                    frac(p.removed_pos_clean, p.removed_pos)
                ),
                format!(
                    "{}/{} ({:.3})",
                    p.kept_neg_clean,
                    p.kept_neg,
                    frac(p.kept_neg_clean, p.kept_neg)
                ),
                format!(
                    "{}/{} ({:.3})",
                    p.removed_neg_clean,
                    p.removed_neg,
                    frac(p.removed_neg_clean, p.removed_neg)
                ),
            ]
        })
        .collect();
    format!(
        "## Part A: the filter on groups sampled from the SFT checkpoint\n\n{PROBE_PROBLEMS} \
         training problems × 8 samples per seed, `prof.yaml`'s verifier (PRM with 10 % flips) \
         and estimator. Clean = every step exactly correct (noise-free checker); lucky = \
         correct answer, not clean.\n\n{}\n",
        md_table(
            &[
                "seed",
                "lucky share of correct",
                "mixed groups",
                "mean |n⁺ − n⁻| before → after",
                "clean / kept correct",
                "clean / removed correct",
                "clean / kept incorrect",
                "clean / removed incorrect",
            ],
            &rows
        )
    )
}

fn values(runs: &[ArmRun], label: &str, eval: &str, metric: &str) -> anyhow::Result<Vec<f64>> {
    runs.iter()
        .filter(|r| r.label == label)
        .map(|r| r.metric(eval, metric))
        .collect()
}

/// Part B's checks.
pub fn train_checks(runs: &[ArmRun]) -> anyhow::Result<Vec<Check>> {
    let d = |a: &str, b: &str, m: &str| -> anyhow::Result<Vec<f64>> {
        Ok(diff(
            &values(runs, a, "after", m)?,
            &values(runs, b, "after", m)?,
        ))
    };
    Ok(vec![
        raises(
            "B1. PROF − Blend, process_correct after RL (paired by seed)",
            &d("PROF", "Blend", "process_correct")?,
        ),
        at_least(
            "B2. PROF ≥ Blend at pass@1 after RL (paired by seed)",
            &d("PROF", "Blend", "pass@1")?,
            TOL,
        ),
        raises(
            "PROF − GRPO, process_correct after RL (context)",
            &d("PROF", "GRPO", "process_correct")?,
        )
        .reported(),
        at_least(
            "PROF ≥ GRPO at pass@1 after RL (context)",
            &d("PROF", "GRPO", "pass@1")?,
            TOL,
        )
        .reported(),
    ])
}

const METRICS: [&str; 4] = [
    "pass@1",
    "process_correct",
    "process_accuracy",
    "mean_length",
];

fn train_tables(runs: &[ArmRun], labels: &[String], seeds: &[u64]) -> anyhow::Result<String> {
    let mut rows = Vec::new();
    let mut before = vec!["before (SFT)".to_string()];
    for m in METRICS {
        before.push(Summary::of(&values(runs, &labels[0], "before", m)?).mean_std());
    }
    rows.push(before);
    for l in labels {
        let mut row = vec![l.clone()];
        for m in METRICS {
            row.push(Summary::of(&values(runs, l, "after", m)?).mean_std());
        }
        rows.push(row);
    }
    let mut s = format!(
        "## Part B: after RL (mean ± std over seeds)\n\n`process_correct` = correct answers \
         with every step correct / correct answers; `process_accuracy` = answers correct with \
         every step correct / all samples (same samples as pass@1).\n\n{}\n\n",
        md_table(
            &[
                "arm",
                "pass@1",
                "process_correct",
                "process_accuracy",
                "mean length"
            ],
            &rows
        )
    );
    let mut rows = Vec::new();
    for l in labels {
        for (i, seed) in seeds.iter().enumerate() {
            let mut row = vec![l.clone(), seed.to_string()];
            for m in METRICS {
                let b = values(runs, l, "before", m)?[i];
                let a = values(runs, l, "after", m)?[i];
                row.push(format!("{b:.4} → {a:.4}"));
            }
            rows.push(row);
        }
    }
    s.push_str(&format!(
        "### Per seed (before → after)\n\n{}\n",
        md_table(
            &[
                "arm",
                "seed",
                "pass@1",
                "process_correct",
                "process_accuracy",
                "mean length"
            ],
            &rows
        )
    ));
    Ok(s)
}

fn draw(
    path: &Path,
    probes: &[Probe],
    runs: &[ArmRun],
    labels: &[String],
    quick: bool,
) -> anyhow::Result<()> {
    let mut panels = Vec::new();
    let mean = |f: &dyn Fn(&Probe) -> f64| Summary::of(&probes.iter().map(f).collect::<Vec<_>>());
    let kp = mean(&|p| frac(p.kept_pos_clean, p.kept_pos));
    let rp = mean(&|p| frac(p.removed_pos_clean, p.removed_pos));
    let kn = mean(&|p| frac(p.kept_neg_clean, p.kept_neg));
    let rn = mean(&|p| frac(p.removed_neg_clean, p.removed_neg));
    panels.push(Panel::Bars {
        title: "A: clean share (all steps right) of sampled responses".into(),
        y_label: "clean share".into(),
        categories: vec!["correct".into(), "incorrect".into()],
        series: vec![
            BarSeries {
                label: "kept by PROF".into(),
                values: vec![kp.mean, kn.mean],
                err: Some(vec![kp.std, kn.std]),
            },
            BarSeries {
                label: "removed".into(),
                values: vec![rp.mean, rn.mean],
                err: Some(vec![rp.std, rn.std]),
            },
        ],
    });
    if !runs.is_empty() {
        let mut series = Vec::new();
        for m in ["pass@1", "process_correct"] {
            let mut vals = Vec::new();
            let mut err = Vec::new();
            for l in labels {
                let s = Summary::of(&values(runs, l, "after", m)?);
                vals.push(s.mean);
                err.push(s.std);
            }
            series.push(BarSeries {
                label: m.into(),
                values: vals,
                err: Some(err),
            });
        }
        panels.push(Panel::Bars {
            title: "B: after RL (mean ± std over seeds)".into(),
            y_label: "value".into(),
            categories: labels.to_vec(),
            series,
        });
    }
    figure(
        path,
        &format!(
            "prof_process{}: PROF filter vs Blend",
            if quick { " (quick)" } else { "" }
        ),
        if runs.is_empty() { 700 } else { 1200 },
        500,
        &panels,
    )
}

/// Runs the SFT prefix of `prof.yaml` alone into `dir` (for `--quick`).
fn prefix_only(opts: &Options, seed: u64, dir: &Path) -> anyhow::Result<()> {
    let set = vec![format!("seed={seed}")];
    let recipe = Recipe::load(&opts.recipe("prof.yaml"), &set)?;
    let rl = recipe
        .stages
        .iter()
        .position(|s| {
            serde_json::to_value(s)
                .ok()
                .and_then(|v| v.get("type").and_then(Value::as_str).map(|t| t == "rl"))
                .unwrap_or(false)
        })
        .context("prof.yaml has no rl stage")?;
    let steps: usize = recipe.stages[..rl].iter().map(|s| s.steps()).sum();
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    let s = run_recipe(
        Some(&opts.recipe("prof.yaml")),
        &RunOptions {
            overrides: set,
            run_dir: Some(dir.to_path_buf()),
            stop_after: Some(steps),
            ..Default::default()
        },
    )?;
    ensure!(!s.finished, "the prefix of prof.yaml ran to the end");
    Ok(())
}

/// Runs the reproduction (see the module docs).
pub fn run(opts: &Options) -> anyhow::Result<Report> {
    let seeds = opts.seed_list(3, 1);
    let arms = arms(opts);
    let labels: Vec<String> = arms.iter().map(|a| a.label.clone()).collect();
    let dir = opts.dir(NAME);
    let mut runs = Vec::new();
    let mut probes = Vec::new();
    for &seed in &seeds {
        let seed_dir = dir.join("runs").join(format!("seed{seed}"));
        if opts.quick {
            prefix_only(opts, seed, &seed_dir.join("prefix"))
                .with_context(|| format!("{NAME}, seed {seed}: SFT prefix"))?;
        } else {
            runs.extend(
                run_arms(&arms, &[], seed, &seed_dir, opts.progress)
                    .with_context(|| format!("{NAME}, seed {seed}"))?,
            );
        }
        probes.push(
            probe(opts, seed, &seed_dir.join("prefix"))
                .with_context(|| format!("{NAME}, seed {seed}: part A"))?,
        );
    }
    let mut checks = probe_checks(&probes);
    if opts.quick {
        for c in checks.iter_mut().skip(1) {
            *c = c.clone().reported();
        }
    }
    let mut sections = vec![probe_table(&probes)];
    if !opts.quick {
        checks.extend(train_checks(&runs)?);
        sections.push(format!(
            "Arms: {}; overrides `seed=S` only.",
            arms.iter()
                .map(|a| format!(
                    "{} (`{}`)",
                    a.label,
                    a.recipe.file_name().unwrap_or_default().to_string_lossy()
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        sections.push(train_tables(&runs, &labels, &seeds)?);
    } else {
        sections.push(
            "`--quick` runs part A only (the filter's mechanism on real sampled groups); \
             the training comparison with Blend needs the full run."
                .into(),
        );
    }
    let plot = dir.join(format!("{NAME}.png"));
    draw(&plot, &probes, &runs, &labels, opts.quick)?;
    Ok(Report {
        name: NAME.into(),
        claim: ABOUT.into(),
        command: opts.command(NAME),
        quick: opts.quick,
        seeds,
        sections,
        checks,
        plot: Some(plot),
        wall_s: 0.0,
        data: json!({
            "probes": probes,
            "runs": crate::arms::runs_json(&runs),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use foil_core::checkpoint::EvalRecord;

    fn probe(seed: u64, kept_pos_clean: usize, removed_pos_clean: usize) -> Probe {
        Probe {
            seed,
            mixed_groups: 10,
            imbalance_before: 3.0,
            imbalance_after: 0.4,
            kept_pos: 10,
            kept_pos_clean,
            removed_pos: 10,
            removed_pos_clean,
            kept_neg: 10,
            kept_neg_clean: 1,
            removed_neg: 10,
            removed_neg_clean: 5,
            lucky_share: 0.3,
        }
    }

    #[test]
    fn probe_rules() {
        // A2 = 9/10 − 4/10 = 0.5 > 0; A3 = 5/10 − 1/10 = 0.4 > 0; A1 = 3 − 0.4 = 2.6.
        let c = probe_checks(&[probe(1, 9, 4), probe(2, 8, 5)]);
        assert!(c.iter().all(|c| c.holds && c.gating), "{c:#?}");
        // a seed where the removed correct responses are as clean as the kept: A2 fails
        let c = probe_checks(&[probe(1, 9, 4), probe(2, 5, 5)]);
        assert!(c[0].holds && !c[1].holds && c[2].holds);
        // no removed correct response: A2 cannot be shown, counts as failing
        let mut p = probe(1, 9, 0);
        p.removed_pos = 0;
        assert!(!probe_checks(&[p])[1].holds);
    }

    fn arm(label: &str, seed: u64, pass1: f64, pc: f64) -> ArmRun {
        let rec = |l: &str, p: f64, c: f64| EvalRecord {
            label: l.into(),
            metrics: vec![
                ("pass@1".into(), p),
                ("process_correct".into(), c),
                ("process_accuracy".into(), p * c),
                ("mean_length".into(), 12.0),
            ],
        };
        ArmRun {
            label: label.into(),
            seed,
            dir: "x".into(),
            evals: vec![rec("before", 0.4, 0.5), rec("after", pass1, pc)],
        }
    }

    #[test]
    fn train_rules() {
        let mut r = Vec::new();
        for s in 1..=3u64 {
            let e = s as f64 * 0.01;
            r.push(arm("PROF", s, 0.5, 0.8 + e));
            r.push(arm("Blend", s, 0.49, 0.7));
            r.push(arm("GRPO", s, 0.5, 0.6));
        }
        let c = train_checks(&r).unwrap();
        assert!(c.iter().all(|c| c.holds), "{c:#?}");
        assert_eq!(c.iter().filter(|c| c.gating).count(), 2);
        // Blend as process-clean as PROF: B1 fails
        for a in r.iter_mut().filter(|a| a.label == "Blend") {
            a.evals[1].metrics[1].1 = 0.83;
        }
        let c = train_checks(&r).unwrap();
        assert!(!c[0].holds && c[1].holds);
        // PROF 0.05 below Blend at pass@1: B2 fails
        for a in r.iter_mut().filter(|a| a.label == "PROF") {
            a.evals[1].metrics[0].1 = 0.44;
        }
        assert!(!train_checks(&r).unwrap()[1].holds);
        let labels: Vec<String> = ["PROF", "Blend", "GRPO"].map(String::from).to_vec();
        let t = train_tables(&r, &labels, &[1, 2, 3]).unwrap();
        assert!(
            t.contains("| GRPO | 0.5000 ± 0.0000 | 0.6000 ± 0.0000 |"),
            "{t}"
        );
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("p.png");
        draw(&p, &[probe(1, 9, 4)], &r, &labels, false).unwrap();
        assert!(std::fs::metadata(&p).unwrap().len() > 5000);
    }
}
