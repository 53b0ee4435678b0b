//! `guard_unlearning`: GUARD's generation-time unlearning stops a policy from producing
//! forgotten facts while keeping what it should keep, without touching the weights.
//!
//! **Claim** (GUARD, "generation-time unlearning by adaptive restriction and detection",
//! arXiv May 2025, id not verified; `../shared/docs/methods.md` §12): decoding through a
//! prompt classifier + forbidden-token trie + similarity penalty gives ≈ 0 exact leak of the
//! forgotten answers on forget prompts with retain accuracy unchanged.
//!
//! **Setting.** `recipes/guard.yaml`, one run per seed through [`foil_trainers::run`] with
//! `seed=N`: the `facts` task (200 synthetic "who:NAME=" → "A:ATTR" facts, facts seed 7;
//! the first 20 form the forget set), a `tiny_gpt` (d = 64, 2 layers) SFT-trained on all
//! 200 for 1200 steps of 64, then two greedy evals of the same weights: `base` (plain
//! decoding) and `guard` (the `guard` logits processor with the forget file
//! `data-samples/guard_facts.jsonl`: logistic-regression prompt classifier on character
//! n-grams, nearest-forget-prompt retrieval, trie of the answer's token 2..5-grams with
//! β = 1, soft penalty λ = 2, δ = 0.5). Forget leak = `pass@1_d1` (the forgotten
//! attribute produced exactly), retain accuracy = `pass@1_d0`. The classifier's accuracy on
//! the 200 prompts and on their paraphrases "what:NAME=" (not seen in its training) is
//! computed here directly. Seeds 1–3; `--quick`: seed 1, 450 SFT steps.
//!
//! **Acceptance rule** (fixed before the runs):
//! 1. (gating) base leak ≥ [`MEMORISED`] = 0.5 on every seed (the policy did memorise the
//!    forget facts — otherwise there is nothing to forget and the test says nothing);
//! 2. (gating) guard leak ≤ [`LEAK_MAX`] = 0.05 on every seed;
//! 3. (gating) retain accuracy, guard − base ≥ −[`RETAIN_TOL`] = −0.02 on every seed;
//! 4. (gating) classifier accuracy on the training prompts ≥ [`CLASSIFIER_MIN`] = 0.95;
//! 5. (reported) classifier accuracy on the "what:NAME=" paraphrases ≥ 0.95.
//!
//! **Measured**: see `docs/reproductions.md` (section `guard_unlearning`).

use anyhow::Context;
use foil_core::checkpoint::EvalRecord;
use foil_trainers::{RunOptions, run as run_recipe};
use serde_json::json;

use crate::Options;
use crate::arms::metric;
use crate::plot::{BarSeries, Panel, figure};
use crate::report::{Report, md_table};
use crate::rules::Check;
use crate::stats::Summary;

pub const NAME: &str = "guard_unlearning";
pub const ABOUT: &str = "GUARD decoding (prompt classifier + forbidden-token trie + similarity \
     penalty) drives the leak of forgotten facts to ~0 with retain accuracy unchanged";

/// Check 1: the base policy must produce at least this share of the forget answers.
pub const MEMORISED: f64 = 0.5;
/// Check 2: the guarded leak rate may be at most this.
pub const LEAK_MAX: f64 = 0.05;
/// Check 3: retain accuracy may fall by at most this.
pub const RETAIN_TOL: f64 = 0.02;
/// Checks 4–5: classifier accuracy at least this.
pub const CLASSIFIER_MIN: f64 = 0.95;
/// The forget file the recipe names (relative to the repository root).
pub const FORGET_FILE: &str = "data-samples/guard_facts.jsonl";

/// Per seed: (base leak, guard leak, base retain, guard retain).
fn numbers(evals: &[EvalRecord]) -> anyhow::Result<[f64; 4]> {
    let m =
        |e: &str, k: &str| metric(evals, e, k).with_context(|| format!("no `{k}` in eval `{e}`"));
    Ok([
        m("base", "pass@1_d1")?,
        m("guard", "pass@1_d1")?,
        m("base", "pass@1_d0")?,
        m("guard", "pass@1_d0")?,
    ])
}

/// Classifier accuracy on the facts prompts and on their "what:" paraphrases.
fn classifier_accuracy(forget_file: &str) -> anyhow::Result<(f64, f64)> {
    let mut guard = foil_samplers::Guard::default();
    guard.forget_path = forget_file.to_string();
    let rows = foil_data::Facts::default().rows()?;
    let (mut ok, mut ok_para) = (0usize, 0usize);
    for (prompt, _, _, forget) in &rows {
        ok += ((guard.p_forget(prompt)? > guard.threshold) == *forget) as usize;
        let para = prompt.replacen("who:", "what:", 1);
        ok_para += ((guard.p_forget(&para)? > guard.threshold) == *forget) as usize;
    }
    let n = rows.len() as f64;
    Ok((ok as f64 / n, ok_para as f64 / n))
}

fn every(claim: &str, rule: String, v: &[f64], pred: impl Fn(f64) -> bool, gating: bool) -> Check {
    Check {
        claim: claim.into(),
        rule,
        values: Summary::of(v),
        holds: !v.is_empty() && v.iter().all(|&x| pred(x)),
        gating,
    }
}

fn checks(per_seed: &[[f64; 4]], cls: (f64, f64)) -> Vec<Check> {
    let col = |i: usize| per_seed.iter().map(|r| r[i]).collect::<Vec<_>>();
    let retain_diff: Vec<f64> = per_seed.iter().map(|r| r[3] - r[2]).collect();
    vec![
        every(
            "1. base policy leaks the forget facts (they were memorised)",
            format!("every seed ≥ {MEMORISED}"),
            &col(0),
            |x| x >= MEMORISED,
            true,
        ),
        every(
            "2. guard: forget leak rate",
            format!("every seed ≤ {LEAK_MAX}"),
            &col(1),
            |x| x <= LEAK_MAX,
            true,
        ),
        every(
            "3. retain accuracy, guard − base",
            format!("every seed ≥ −{RETAIN_TOL}"),
            &retain_diff,
            |x| x >= -RETAIN_TOL,
            true,
        ),
        every(
            "4. classifier accuracy, facts prompts",
            format!("≥ {CLASSIFIER_MIN}"),
            &[cls.0],
            |x| x >= CLASSIFIER_MIN,
            true,
        ),
        every(
            "5. classifier accuracy, \"what:NAME=\" paraphrases",
            format!("≥ {CLASSIFIER_MIN}"),
            &[cls.1],
            |x| x >= CLASSIFIER_MIN,
            false,
        ),
    ]
}

fn table(seeds: &[u64], per_seed: &[[f64; 4]]) -> String {
    let names = [
        "base leak (pass@1_d1)",
        "guard leak",
        "base retain (pass@1_d0)",
        "guard retain",
    ];
    let rows: Vec<Vec<String>> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let v: Vec<f64> = per_seed.iter().map(|r| r[i]).collect();
            let s = Summary::of(&v);
            vec![
                n.to_string(),
                format!("{} ({})", s.mean_std(), s.per_seed()),
            ]
        })
        .collect();
    format!(
        "seeds {seeds:?}\n\n{}",
        md_table(&["metric", "mean ± std (per seed)"], &rows)
    )
}

fn draw(path: &std::path::Path, per_seed: &[[f64; 4]], quick: bool) -> anyhow::Result<()> {
    let s = |i: usize| Summary::of(&per_seed.iter().map(|r| r[i]).collect::<Vec<_>>());
    let series = [("base", 0, 2), ("guard", 1, 3)]
        .iter()
        .map(|(label, leak, retain)| BarSeries {
            label: label.to_string(),
            values: vec![s(*leak).mean, s(*retain).mean],
            err: Some(vec![s(*leak).std, s(*retain).std]),
        })
        .collect();
    figure(
        path,
        &format!(
            "GUARD decoding on memorised facts{} (mean ± std over seeds)",
            if quick { " (quick)" } else { "" }
        ),
        800,
        450,
        &[Panel::Bars {
            title: "forget leak and retain accuracy (greedy pass@1)".into(),
            y_label: "rate".into(),
            categories: vec!["forget leak".into(), "retain accuracy".into()],
            series,
        }],
    )
}

pub fn run(opts: &Options) -> anyhow::Result<Report> {
    let seeds = opts.seed_list(3, 1);
    let dir = opts.dir(NAME);
    let forget_file = opts.root.join(FORGET_FILE).display().to_string();
    let mut per_seed = Vec::new();
    let mut evals = Vec::new();
    for &seed in &seeds {
        let mut overrides = vec![
            format!("seed={seed}"),
            format!("stages.2.sampler.logit_processors.0.forget_path={forget_file}"),
        ];
        if opts.quick {
            overrides.push("stages.0.steps=450".into());
        }
        overrides.extend(crate::arms::extra_overrides());
        let summary = run_recipe(
            Some(&opts.recipe("guard.yaml")),
            &RunOptions {
                overrides,
                run_dir: Some(dir.join("runs").join(format!("seed{seed}"))),
                progress: false,
                ..RunOptions::default()
            },
        )
        .with_context(|| format!("{NAME}, seed {seed}"))?;
        if opts.progress {
            eprintln!("  seed {seed} done");
        }
        per_seed.push(numbers(&summary.evals)?);
        evals.push(summary.evals);
    }
    let cls = classifier_accuracy(&forget_file)?;
    let checks = checks(&per_seed, cls);
    let plot = dir.join(format!("{NAME}.png"));
    std::fs::create_dir_all(&dir)?;
    draw(&plot, &per_seed, opts.quick)?;
    Ok(Report {
        name: NAME.into(),
        claim: ABOUT.into(),
        command: opts.command(NAME),
        quick: opts.quick,
        seeds: seeds.clone(),
        sections: vec![
            table(&seeds, &per_seed),
            format!(
                "classifier accuracy: {:.4} on the 200 facts prompts, {:.4} on \"what:NAME=\" paraphrases",
                cls.0, cls.1
            ),
        ],
        checks,
        plot: Some(plot),
        wall_s: 0.0,
        data: json!({
            "classifier_accuracy": cls.0,
            "classifier_accuracy_paraphrase": cls.1,
            "evals": seeds.iter().zip(&evals).map(|(s, e)| json!({"seed": s, "evals": e})).collect::<Vec<_>>(),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_on_worked_numbers() {
        // seed 1: base leak 0.90, guard leak 0.00, retain 0.80 → 0.80 (diff 0)
        // seed 2: base leak 0.85, guard leak 0.10 (> 0.05: check 2 fails), retain
        //         0.75 → 0.72 (diff −0.03 < −0.02: check 3 fails)
        let good = [0.90, 0.00, 0.80, 0.80];
        let c = checks(&[good, [0.85, 0.10, 0.75, 0.72]], (0.99, 0.90));
        assert!(c[0].holds && !c[1].holds && !c[2].holds && c[3].holds);
        assert!(!c[4].holds && !c[4].gating);
        let c = checks(&[good, good], (0.94, 1.0));
        assert!(c[1].holds && c[2].holds && !c[3].holds);
        // an unmemorised base (leak 0.3 < 0.5) fails check 1
        assert!(!checks(&[[0.3, 0.0, 0.8, 0.8]], (1.0, 1.0))[0].holds);
        assert!(table(&[1], &[good]).contains("| guard leak | 0.0000"));
    }
}
