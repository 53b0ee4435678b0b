//! `psr_nsr`: positive vs negative sample reinforcement, and W-REINFORCE vs GRPO.
//!
//! **Claim** (Zhu et al. 2025, "The Surprising Effectiveness of Negative Reinforcement in
//! LLM Reasoning", arXiv 2506.01347; `../shared/docs/methods.md` §8): training only on
//! negative samples (NSR) keeps or raises pass@k at large k, while training only on
//! positive samples (PSR) raises pass@1 and lowers pass@k at large k; W-REINFORCE
//! (positives down-weighted, λ = 0.1) is at least as good as GRPO across k.
//!
//! **Setting.** The tiny testbed T0 (methods.md §0.2) as in `recipes/quickstart.yaml`:
//! chain arithmetic mod 10 with 2–3 operands, a 106k-parameter GPT, SFT on imperfect
//! demonstrations (half take a shortcut), then 80 RL steps of 16 prompts × 8 samples.
//! Four arms from the same SFT checkpoint per seed: GRPO (`quickstart.yaml`), PSR
//! (`psr.yaml`), NSR (`nsr.yaml`), W-REINFORCE (`w_reinforce.yaml`). Evaluation: 200
//! held-out problems, 8 samples each at temperature 1, unbiased pass@k for k = 1, 2, 4, 8
//! (adding k values does not change the samples), before and after RL. Seeds 1–3.
//!
//! **Acceptance rule** ([`crate::rules`], K = 8 the largest k, Δ = after − before per
//! seed, differences between arms paired by seed):
//! 1. NSR keeps pass@K: mean Δpass@K(NSR) ≥ −0.02;
//! 2. PSR raises pass@1: mean Δpass@1(PSR) > 0 and > one standard error;
//! 3. PSR lowers pass@K: mean Δpass@K(PSR) < 0 and < −one standard error;
//! 4. W-REINFORCE ≥ GRPO at every k: mean (pass@k(W) − pass@k(GRPO)) ≥ −0.02, k = 1, 2, 4, 8.
//!
//! The claim holds when all seven checks hold.
//!
//! **Measured** (seeds 1–3, `docs/reproductions.md`): 2 and 3 hold; 1 does not (NSR lowers
//! pass@8 on every seed, by 0.16 on average, more than PSR does) and 4 does not at any k
//! (W-REINFORCE is 0.08 below GRPO at pass@1 and 0.075 at pass@8).
//!
//! **`--quick`** (seeds 1–2, the PSR and NSR arms only, recipes unchanged, so its numbers
//! are the full run's for those seeds and arms) gates on 2 (PSR raises pass@1) and 3 (PSR
//! lowers pass@8), which hold on every seed with margins of 0.06 and 0.09; it reports 1
//! (NSR keeps pass@8) without gating on it, since it does not hold at this scale; 4 needs
//! the GRPO and W-REINFORCE arms of the full run.

use std::path::Path;

use anyhow::Context;
use serde_json::json;

use crate::Options;
use crate::arms::{Arm, ArmRun, run_arms};
use crate::plot::{BarSeries, Line, Panel, figure};
use crate::report::{Report, md_table};
use crate::rules::{Check, TOL, at_least, keeps_or_raises, lowers, raises};
use crate::stats::{Summary, diff};

pub const NAME: &str = "psr_nsr";
pub const ABOUT: &str = "NSR keeps pass@k at large k, PSR raises pass@1 and lowers pass@k, \
     W-REINFORCE ≥ GRPO across k (Zhu et al. 2025)";

/// The k values evaluated (n = 8 samples per problem).
pub const KS: [usize; 4] = [1, 2, 4, 8];

/// `--set` overrides every arm gets (the recipes' stage indices: 0 sft, 1 eval before,
/// 2 rl, 3 eval after): more k values from the same samples.
pub fn common_overrides() -> Vec<String> {
    let ks = format!(
        "[{}]",
        KS.iter()
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    vec![format!("stages.1.k={ks}"), format!("stages.3.k={ks}")]
}

/// The arms: all four, or PSR and NSR for `--quick`.
pub fn arms(opts: &Options) -> Vec<Arm> {
    let mut a = vec![
        Arm::new("PSR", opts.recipe("psr.yaml")),
        Arm::new("NSR", opts.recipe("nsr.yaml")),
    ];
    if !opts.quick {
        a.insert(0, Arm::new("GRPO", opts.recipe("quickstart.yaml")));
        a.push(Arm::new("W-REINFORCE", opts.recipe("w_reinforce.yaml")));
    }
    a
}

/// Per-seed values of `metric` in eval `eval` for arm `label`, in seed order.
fn values(runs: &[ArmRun], label: &str, eval: &str, metric: &str) -> anyhow::Result<Vec<f64>> {
    runs.iter()
        .filter(|r| r.label == label)
        .map(|r| r.metric(eval, metric))
        .collect()
}

/// Δ = after − before per seed.
fn change(runs: &[ArmRun], label: &str, metric: &str) -> anyhow::Result<Vec<f64>> {
    Ok(diff(
        &values(runs, label, "after", metric)?,
        &values(runs, label, "before", metric)?,
    ))
}

/// The acceptance rule on finished runs (see the module docs); `quick` gates on checks
/// 2–3 and reports 1.
pub fn checks(runs: &[ArmRun], quick: bool) -> anyhow::Result<Vec<Check>> {
    let k_max = KS[KS.len() - 1];
    let pk = format!("pass@{k_max}");
    let nsr = keeps_or_raises(
        &format!("NSR keeps or raises {pk} (after − before)"),
        &change(runs, "NSR", &pk)?,
        TOL,
    );
    let mut c = vec![
        if quick { nsr.reported() } else { nsr },
        raises(
            "PSR raises pass@1 (after − before)",
            &change(runs, "PSR", "pass@1")?,
        ),
        lowers(
            &format!("PSR lowers {pk} (after − before)"),
            &change(runs, "PSR", &pk)?,
        ),
    ];
    if !quick {
        for k in KS {
            let m = format!("pass@{k}");
            c.push(at_least(
                &format!("W-REINFORCE ≥ GRPO at {m} (after, paired by seed)"),
                &diff(
                    &values(runs, "W-REINFORCE", "after", &m)?,
                    &values(runs, "GRPO", "after", &m)?,
                ),
                TOL,
            ));
        }
    }
    Ok(c)
}

fn tables(runs: &[ArmRun], labels: &[String], seeds: &[u64]) -> anyhow::Result<String> {
    let k_max = KS[KS.len() - 1];
    let pk = format!("pass@{k_max}");
    let mut rows = Vec::new();
    for l in labels {
        let mut row = vec![l.clone()];
        for m in ["pass@1", pk.as_str()] {
            row.push(Summary::of(&values(runs, l, "before", m)?).mean_std());
            row.push(Summary::of(&values(runs, l, "after", m)?).mean_std());
            row.push(Summary::of(&change(runs, l, m)?).signed_mean_std());
        }
        rows.push(row);
    }
    let h1 = format!("{pk} before");
    let h2 = format!("{pk} after");
    let h3 = format!("Δ {pk}");
    let mut s = format!(
        "## Results (mean ± std over seeds)\n\nThe arms share the SFT checkpoint of each seed, \
         so \"before\" is the same for all of them.\n\n{}\n\n",
        md_table(
            &[
                "method",
                "pass@1 before",
                "pass@1 after",
                "Δ pass@1",
                &h1,
                &h2,
                &h3
            ],
            &rows
        )
    );
    // pass@k after for every k
    let mut rows = Vec::new();
    let before_label = &labels[0];
    let mut before = vec!["before (SFT)".to_string()];
    for k in KS {
        before.push(
            Summary::of(&values(runs, before_label, "before", &format!("pass@{k}"))?).mean_std(),
        );
    }
    rows.push(before);
    for l in labels {
        let mut row = vec![l.clone()];
        for k in KS {
            row.push(Summary::of(&values(runs, l, "after", &format!("pass@{k}"))?).mean_std());
        }
        rows.push(row);
    }
    let hk: Vec<String> = KS.iter().map(|k| format!("pass@{k}")).collect();
    let mut h: Vec<&str> = vec!["after RL"];
    h.extend(hk.iter().map(String::as_str));
    s.push_str(&format!(
        "### pass@k after RL, every k\n\n{}\n\n",
        md_table(&h, &rows)
    ));
    // per seed
    let mut rows = Vec::new();
    for l in labels {
        for (i, seed) in seeds.iter().enumerate() {
            let mut row = vec![l.clone(), seed.to_string()];
            for m in ["pass@1", pk.as_str(), "mean_length"] {
                let b = values(runs, l, "before", m)?[i];
                let a = values(runs, l, "after", m)?[i];
                row.push(format!("{b:.4} → {a:.4} ({:+.4})", a - b));
            }
            rows.push(row);
        }
    }
    let hp = format!("{pk} before → after");
    s.push_str(&format!(
        "### Per seed\n\n{}\n",
        md_table(
            &[
                "method",
                "seed",
                "pass@1 before → after",
                &hp,
                "mean length before → after"
            ],
            &rows
        )
    ));
    Ok(s)
}

fn draw(path: &Path, runs: &[ArmRun], labels: &[String], quick: bool) -> anyhow::Result<()> {
    let xs: Vec<f64> = KS.iter().map(|&k| k as f64).collect();
    let series = |label: &str, eval: &str| -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
        let mut ys = Vec::new();
        let mut es = Vec::new();
        for k in KS {
            let s = Summary::of(&values(runs, label, eval, &format!("pass@{k}"))?);
            ys.push(s.mean);
            es.push(s.std);
        }
        Ok((ys, es))
    };
    let (ys, es) = series(&labels[0], "before")?;
    let mut lines = vec![Line {
        label: "before (SFT)".into(),
        xs: xs.clone(),
        ys,
        err: Some(es),
        dashed: true,
        color: None,
    }];
    for (i, l) in labels.iter().enumerate() {
        let (ys, es) = series(l, "after")?;
        lines.push(Line {
            label: l.clone(),
            xs: xs.clone(),
            ys,
            err: Some(es),
            dashed: false,
            color: Some(i),
        });
    }
    let k_max = KS[KS.len() - 1];
    let mut bars = Vec::new();
    for m in ["pass@1".to_string(), format!("pass@{k_max}")] {
        let mut values = Vec::new();
        let mut err = Vec::new();
        for l in labels {
            let s = Summary::of(&change(runs, l, &m)?);
            values.push(s.mean);
            err.push(s.std);
        }
        bars.push(BarSeries {
            label: format!("Δ {m}"),
            values,
            err: Some(err),
        });
    }
    figure(
        path,
        &format!(
            "psr_nsr{}: pass@k after RL from one SFT checkpoint (mean ± std over seeds)",
            if quick { " (quick)" } else { "" }
        ),
        1200,
        500,
        &[
            Panel::Lines {
                title: "pass@k on 200 held-out problems".into(),
                x_label: "k".into(),
                y_label: "pass@k".into(),
                log2_x: true,
                lines,
            },
            Panel::Bars {
                title: "change from before RL".into(),
                y_label: "after − before".into(),
                categories: labels.to_vec(),
                series: bars,
            },
        ],
    )
}

/// Runs the reproduction (see the module docs).
pub fn run(opts: &Options) -> anyhow::Result<Report> {
    let seeds = opts.seed_list(3, 2);
    let arms = arms(opts);
    let labels: Vec<String> = arms.iter().map(|a| a.label.clone()).collect();
    let common = common_overrides();
    let dir = opts.dir(NAME);
    let mut runs = Vec::new();
    for &seed in &seeds {
        runs.extend(
            run_arms(
                &arms,
                &common,
                seed,
                &dir.join("runs").join(format!("seed{seed}")),
                opts.progress,
            )
            .with_context(|| format!("{NAME}, seed {seed}"))?,
        );
    }
    let checks = checks(&runs, opts.quick)?;
    let plot = dir.join(format!("{NAME}.png"));
    draw(&plot, &runs, &labels, opts.quick)?;
    let mut sections = vec![format!(
        "Arms: {}. Overrides on every recipe: `{}`{}.",
        arms.iter()
            .map(|a| format!(
                "{} (`{}`)",
                a.label,
                a.recipe.file_name().unwrap_or_default().to_string_lossy()
            ))
            .collect::<Vec<_>>()
            .join(", "),
        common.join("`, `"),
        ", plus `seed=S`"
    )];
    sections.push(tables(&runs, &labels, &seeds)?);
    if opts.quick {
        sections.push(
            "`--quick` gates on PSR raising pass@1 and lowering pass@8; it reports NSR's \
             pass@8 change without gating on it (NSR does not keep pass@8 at this scale: \
             see docs/reproductions.md); W-REINFORCE ≥ GRPO needs the full run's arms."
                .into(),
        );
    }
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
            "ks": KS,
            "overrides": common,
            "runs": crate::arms::runs_json(&runs),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use foil_core::checkpoint::EvalRecord;

    /// An arm run with pass@k before and after (k = 1, 2, 4, 8).
    fn arm(label: &str, seed: u64, before: [f64; 4], after: [f64; 4]) -> ArmRun {
        let rec = |l: &str, v: [f64; 4]| EvalRecord {
            label: l.into(),
            metrics: KS
                .iter()
                .zip(v)
                .map(|(k, x)| (format!("pass@{k}"), x))
                .chain([("mean_length".to_string(), 15.0)])
                .collect(),
        };
        ArmRun {
            label: label.into(),
            seed,
            dir: "x".into(),
            evals: vec![rec("before", before), rec("after", after)],
        }
    }

    const B: [f64; 4] = [0.30, 0.45, 0.60, 0.69];

    /// Three seeds where every part of the claim holds.
    fn holding() -> Vec<ArmRun> {
        let mut r = Vec::new();
        for s in 1..=3u64 {
            let e = s as f64 * 0.005;
            r.push(arm("GRPO", s, B, [0.45 + e, 0.52, 0.60, 0.66]));
            r.push(arm("PSR", s, B, [0.40 + e, 0.48, 0.55, 0.60 - e]));
            r.push(arm("NSR", s, B, [0.32, 0.48, 0.62, 0.70 + e]));
            r.push(arm("W-REINFORCE", s, B, [0.45 + e, 0.53, 0.62, 0.69]));
        }
        r
    }

    #[test]
    fn a_holding_claim_passes_every_check() {
        let c = checks(&holding(), false).unwrap();
        assert_eq!(c.len(), 7);
        assert!(c.iter().all(|c| c.holds), "{c:#?}");
        let q = checks(&holding(), true).unwrap();
        assert_eq!(q.len(), 3);
        assert!(q.iter().all(|c| c.holds));
        assert_eq!(q.iter().filter(|c| c.gating).count(), 2);
    }

    #[test]
    fn the_single_seed_numbers_of_the_recipes_fail_w_reinforce_vs_grpo() {
        // seed 1, full recipes: GRPO 0.489 and W-REINFORCE 0.371 pass@1 after
        let mut r = holding();
        for a in r.iter_mut().filter(|a| a.label == "W-REINFORCE") {
            a.evals[1].metrics[0].1 = 0.371;
        }
        for a in r.iter_mut().filter(|a| a.label == "GRPO") {
            a.evals[1].metrics[0].1 = 0.489;
        }
        let c = checks(&r, false).unwrap();
        let w1 = c
            .iter()
            .find(|c| c.claim.starts_with("W-REINFORCE ≥ GRPO at pass@1 "))
            .unwrap();
        assert!(!w1.holds);
        assert_eq!(c.iter().filter(|c| !c.holds).count(), 1);
    }

    #[test]
    fn nsr_losing_pass_at_8_fails() {
        let mut r = holding();
        for a in r.iter_mut().filter(|a| a.label == "NSR") {
            a.evals[1].metrics[3].1 = 0.64; // 0.69 → 0.64
        }
        let c = checks(&r, false).unwrap();
        assert!(!c[0].holds && c[0].gating && c[1].holds);
        // --quick reports it without gating on it
        let q = checks(&r, true).unwrap();
        assert!(!q[0].holds && !q[0].gating);
        assert!(q[1..].iter().all(|c| c.holds && c.gating));
    }

    #[test]
    fn psr_not_raising_pass_at_1_fails() {
        let mut r = holding();
        for (i, a) in r.iter_mut().filter(|a| a.label == "PSR").enumerate() {
            // +0.02, −0.03, +0.02: mean +0.0033 < sem
            a.evals[1].metrics[0].1 = B[0] + [0.02, -0.03, 0.02][i];
        }
        let c = checks(&r, true).unwrap();
        assert!(c[0].holds && !c[1].holds && c[1].gating);
    }

    #[test]
    fn psr_keeping_pass_at_8_fails_even_quick() {
        let mut r = holding();
        for a in r.iter_mut().filter(|a| a.label == "PSR") {
            a.evals[1].metrics[3].1 = B[3] + 0.01;
        }
        let c = checks(&r, true).unwrap();
        assert!(!c[2].holds && c[2].gating);
    }

    #[test]
    fn tables_and_plot_from_runs() {
        let r = holding();
        let labels: Vec<String> = ["GRPO", "PSR", "NSR", "W-REINFORCE"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let t = tables(&r, &labels, &[1, 2, 3]).unwrap();
        // PSR pass@1 after: 0.405, 0.41, 0.415 → mean 0.41, std 0.005
        assert!(
            t.contains("| PSR | 0.3000 ± 0.0000 | 0.4100 ± 0.0050 | +0.1100 ± 0.0050 |"),
            "{t}"
        );
        assert!(
            t.contains("| NSR | 2 | 0.3000 → 0.3200 (+0.0200) | 0.6900 → 0.7100 (+0.0200) |"),
            "{t}"
        );
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("p.png");
        draw(&p, &r, &labels, false).unwrap();
        assert!(std::fs::metadata(&p).unwrap().len() > 5000);
    }
}
