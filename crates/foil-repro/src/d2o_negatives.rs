//! `d2o_negatives`: D²O learns from negatives without the collapse of gradient ascent.
//!
//! **Claim** (Duan et al. 2024, "Negating Negatives", arXiv 2403.03419;
//! `../shared/docs/methods.md` §6): contrasting each negative with the mean implicit
//! reward of K self-samples (D²O) reduces the bad behaviour the negatives show while
//! keeping the held-out skill, where gradient ascent on the negatives collapses.
//!
//! **Setting, part A (no training; `--quick` and full).** For each seed: the policy of
//! `recipes/d2o.yaml` as initialised, 8 training problems × 8 samples from the recipe's
//! RL sampler. The samples are labelled by a fixed rule (odd-numbered samples of each
//! group are negatives, A = −1, the others A = +1: an untrained policy gets every answer
//! wrong, so the verifier cannot split it) and packed as the `rl` stage packs a batch
//! (reference = the same policy, group ids = the prompt). Measured: the gradient of the
//! recipe's D²O objective with respect to each token's log-prob, summed per row.
//!
//! **Setting, part B (training, full run only).** From one SFT checkpoint per seed
//! (demonstrations of which half take a shortcut: they skip the last step), 80 RL steps
//! of 16 prompts × 8 samples with w_reinforce (λ = 1) credits: D²O (`recipes/d2o.yaml`,
//! α = β = 0.1, K = 8) against gradient ascent on the negatives (GA: the same recipe with
//! `safe_align`, blue weight 0, red weight 1, no bound). The negatives are what the
//! verifier flags, mostly the shortcut. Evaluation: 200 held-out problems × 8 samples:
//! accuracy (1 − accuracy = the bad-behaviour rate), pass@8 (the held-out skill),
//! process accuracy (all steps present and right; the shortcut fails it), mean length.
//! Seeds 1–3.
//!
//! **Acceptance rule** (fixed before the runs, [`crate::rules`]):
//! 1. D²O's gradient lowers every negative's log-likelihood: the per-row gradient sum is
//!    > 0 on every negative row (smallest per seed);
//! 2. and raises every other self-sample's: < 0 on every positive row (largest per seed);
//! 3. (full) D²O lowers the bad-behaviour rate: Δaccuracy (after − before) > 0 and > sem;
//! 4. (full) D²O keeps the held-out skill: mean Δpass@8 ≥ −0.02;
//! 5. (full) GA collapses: Δaccuracy(GA) < 0 and < −sem;
//! 6. (full) D²O beats GA after training: accuracy(D²O) − accuracy(GA), paired by seed,
//!    > 0 and > sem.
//!
//! **Measured** (seeds 1–3, `docs/reproductions.md`): 1, 2, 3 and 6 hold (D²O raises
//! accuracy by +0.087 ± 0.048 and ends 0.066 above GA on every seed); 4 does not (D²O
//! lowers pass@8 by 0.073 ± 0.038: it sharpens the policy) and 5 does not (GA at lr 1e-3
//! with grad clip 1 for 80 steps does not collapse: Δaccuracy +0.020 ± 0.048, though it
//! loses pass@8, −0.12, more than D²O).
//!
//! **`--quick`** runs part A only (checks 1–2, two seeds, seconds).

use anyhow::{Context, ensure};
use burn::tensor::{Tensor, TensorData};
use foil_core::backend::{B, parse_device};
use foil_core::batch::{HostPolicyBatch, PolicyBatch, to_vec, token_logprobs};
use foil_core::recipe::Recipe;
use foil_core::{Objective, PolicyOutput, Sampler, rng};
use serde::Serialize;
use serde_json::{Value, json};

use crate::Options;
use crate::arms::{Arm, ArmRun, run_arms};
use crate::report::{Report, md_table};
use crate::rules::{Check, all_negative, all_positive, keeps_or_raises, lowers, raises};
use crate::stats::{Summary, diff};

pub const NAME: &str = "d2o_negatives";
pub const ABOUT: &str = "D²O lowers the bad behaviour its negatives show and keeps the held-out \
     skill, where gradient ascent on the negatives collapses (Duan et al. 2024)";

/// Problems per seed in part A.
pub const PROBE_PROBLEMS: usize = 8;

/// The GA arm: `d2o.yaml` with its objective replaced.
pub const GA_OBJECTIVE: &str =
    "stages.2.objective={type: safe_align, blue_weight: 0.0, red_weight: 1.0, tau: null}";

/// A batch of real samples for probing an objective: rows, per-token log-probs as a
/// differentiable leaf, and the row labels.
pub struct ProbeBatch {
    pub batch: PolicyBatch,
    /// Per-token log-probs of the policy as initialised (detached values).
    pub logprobs: Vec<f32>,
    /// `+1` / `−1` label of each row.
    pub labels: Vec<f32>,
}

/// The rl stage's sampler and objective of `recipe`.
pub fn rl_sampler_objective(
    recipe: &Recipe,
) -> anyhow::Result<(Box<dyn Sampler>, Box<dyn Objective>)> {
    let stage = recipe
        .stages
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .find(|v| v.get("type").and_then(Value::as_str) == Some("rl"))
        .with_context(|| format!("recipe `{}` has no rl stage", recipe.name))?;
    Ok((
        serde_json::from_value(stage["sampler"].clone())?,
        serde_json::from_value(stage["objective"].clone())?,
    ))
}

/// Samples `PROBE_PROBLEMS` groups from `recipe`'s policy as initialised and packs them
/// with `label(index in group)` as each row's advantage and `group(prompt, index)` as its
/// group id; reference log-probs = the policy's own.
pub fn probe_batch(
    recipe: &Recipe,
    seed: u64,
    label: impl Fn(usize) -> f32,
    group: impl Fn(usize, usize) -> usize,
) -> anyhow::Result<ProbeBatch> {
    let task = recipe.task.build(seed)?;
    let tok = task.tokenizer.clone();
    let device = parse_device(&recipe.device)?;
    let policy = recipe.policy.build(tok.vocab_size(), &device, seed)?;
    let model = policy.inference();
    let (sampler, _) = rl_sampler_objective(recipe)?;
    let problems = task.train[..PROBE_PROBLEMS.min(task.train.len())].to_vec();
    let groups = sampler.sample(
        model.as_ref(),
        tok.as_ref(),
        &problems,
        rng::derive(seed, &[0xd20]),
    )?;
    let prompts: Vec<Vec<u32>> = groups
        .iter()
        .map(|g| tok.encode_prompt(&g.problem.prompt))
        .collect::<anyhow::Result<_>>()?;
    let mut rows: Vec<(&[u32], &[u32], Vec<f32>)> = Vec::new();
    let (mut ids, mut labels) = (Vec::new(), Vec::new());
    for (gi, (g, p)) in groups.iter().zip(&prompts).enumerate() {
        for (i, c) in g.completions.iter().enumerate() {
            if c.tokens.is_empty() {
                continue;
            }
            let a = label(i);
            rows.push((p, &c.tokens, vec![a; c.tokens.len()]));
            ids.push(group(gi, i));
            labels.push(a);
        }
    }
    ensure!(!rows.is_empty(), "seed {seed}: no non-empty samples");
    let host = HostPolicyBatch::new(&rows, tok.pad_id()).with_group_ids(ids);
    let mut batch = host.to_device(&policy.device(), sampler.max_tokens());
    let logits = policy.forward(&batch.input).detach();
    let lp = token_logprobs(logits, batch.targets.clone()).detach();
    batch.ref_logprobs = Some(lp.clone());
    Ok(ProbeBatch {
        logprobs: to_vec(lp),
        batch,
        labels,
    })
}

/// `∂ objective / ∂ log π(token)` summed over each row's tokens.
pub fn row_gradients(obj: &dyn Objective, p: &ProbeBatch) -> anyhow::Result<Vec<f64>> {
    let (n, w) = (p.batch.n, p.batch.width);
    let x: Tensor<B, 2> = Tensor::from_data(
        TensorData::new(p.logprobs.clone(), [n, w]),
        &p.batch.mask.device(),
    )
    .require_grad();
    let loss = obj.loss(
        &p.batch,
        &PolicyOutput {
            logprobs: x.clone(),
            entropy: None,
        },
    )?;
    let grads = loss.value.backward();
    let g = x
        .grad(&grads)
        .map(to_vec)
        .unwrap_or_else(|| vec![0.0; n * w]);
    let mask = to_vec(p.batch.mask.clone());
    Ok((0..n)
        .map(|i| {
            (0..w)
                .map(|j| f64::from(g[i * w + j] * mask[i * w + j]))
                .sum()
        })
        .collect())
}

/// Part A for one seed.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    pub seed: u64,
    pub rows: usize,
    pub negatives: usize,
    /// Smallest per-row gradient sum over the negatives.
    pub min_negative_grad: f64,
    /// Largest per-row gradient sum over the positives.
    pub max_positive_grad: f64,
}

/// Part A (see the module docs).
pub fn probe(opts: &Options, seed: u64) -> anyhow::Result<Probe> {
    let recipe = Recipe::load(&opts.recipe("d2o.yaml"), &[format!("seed={seed}")])?;
    let (_, obj) = rl_sampler_objective(&recipe)?;
    let p = probe_batch(
        &recipe,
        seed,
        |i| if i % 2 == 1 { -1.0 } else { 1.0 },
        |g, _| g,
    )?;
    let g = row_gradients(obj.as_ref(), &p)?;
    let pick = |sign: f32| -> Vec<f64> {
        g.iter()
            .zip(&p.labels)
            .filter(|(_, l)| **l == sign)
            .map(|(v, _)| *v)
            .collect()
    };
    let (neg, pos) = (pick(-1.0), pick(1.0));
    Ok(Probe {
        seed,
        rows: g.len(),
        negatives: neg.len(),
        min_negative_grad: neg.iter().copied().fold(f64::INFINITY, f64::min),
        max_positive_grad: pos.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    })
}

/// Checks 1–2.
pub fn probe_checks(probes: &[Probe]) -> Vec<Check> {
    vec![
        all_positive(
            "D²O's gradient lowers every negative (smallest per-row ∂L/∂log π over negatives, per seed)",
            &probes
                .iter()
                .map(|p| p.min_negative_grad)
                .collect::<Vec<_>>(),
        ),
        all_negative(
            "D²O's gradient raises every other self-sample (largest per-row ∂L/∂log π over positives, per seed)",
            &probes
                .iter()
                .map(|p| p.max_positive_grad)
                .collect::<Vec<_>>(),
        ),
    ]
}

fn values(runs: &[ArmRun], label: &str, eval: &str, metric: &str) -> anyhow::Result<Vec<f64>> {
    runs.iter()
        .filter(|r| r.label == label)
        .map(|r| r.metric(eval, metric))
        .collect()
}

fn change(runs: &[ArmRun], label: &str, metric: &str) -> anyhow::Result<Vec<f64>> {
    Ok(diff(
        &values(runs, label, "after", metric)?,
        &values(runs, label, "before", metric)?,
    ))
}

/// Checks 3–6 on part B's runs.
pub fn training_checks(runs: &[ArmRun]) -> anyhow::Result<Vec<Check>> {
    Ok(vec![
        raises(
            "D²O lowers the bad-behaviour rate: Δaccuracy (after − before) > 0",
            &change(runs, "D2O", "accuracy")?,
        ),
        keeps_or_raises(
            "D²O keeps the held-out skill: Δpass@8",
            &change(runs, "D2O", "pass@8")?,
            crate::rules::TOL,
        ),
        lowers(
            "gradient ascent on the negatives collapses: Δaccuracy(GA) < 0",
            &change(runs, "GA", "accuracy")?,
        ),
        raises(
            "D²O − GA accuracy after training, paired by seed",
            &diff(
                &values(runs, "D2O", "after", "accuracy")?,
                &values(runs, "GA", "after", "accuracy")?,
            ),
        ),
    ])
}

fn training_table(runs: &[ArmRun]) -> anyhow::Result<String> {
    let mut rows = Vec::new();
    for r in runs {
        let mut row = vec![r.label.clone(), r.seed.to_string()];
        for m in ["accuracy", "pass@8", "process_accuracy", "mean_length"] {
            let (b, a) = (r.metric("before", m)?, r.metric("after", m)?);
            row.push(format!("{b:.4} → {a:.4}"));
        }
        rows.push(row);
    }
    Ok(format!(
        "## Part B: training from one SFT checkpoint per seed\n\n{}\n",
        md_table(
            &[
                "arm",
                "seed",
                "accuracy",
                "pass@8",
                "process accuracy",
                "mean length"
            ],
            &rows
        )
    ))
}

/// Runs the reproduction (see the module docs).
pub fn run(opts: &Options) -> anyhow::Result<Report> {
    let seeds = opts.seed_list(3, 2);
    let dir = opts.dir(NAME);
    let mut probes = Vec::new();
    for &seed in &seeds {
        probes.push(probe(opts, seed).with_context(|| format!("{NAME}, part A, seed {seed}"))?);
    }
    let mut checks = probe_checks(&probes);
    let rows: Vec<Vec<String>> = probes
        .iter()
        .map(|p| {
            vec![
                p.seed.to_string(),
                format!("{} ({} negatives)", p.rows, p.negatives),
                format!("{:.4e}", p.min_negative_grad),
                format!("{:.4e}", p.max_positive_grad),
            ]
        })
        .collect();
    let mut sections = vec![format!(
        "## Part A: D²O's gradient on real samples\n\n{}\n",
        md_table(
            &[
                "seed",
                "rows",
                "smallest ∂L/∂log π, negatives",
                "largest ∂L/∂log π, positives"
            ],
            &rows
        )
    )];
    let mut runs = Vec::new();
    if !opts.quick {
        let mut ga = Arm::new("GA", opts.recipe("d2o.yaml"));
        ga.overrides.push(GA_OBJECTIVE.into());
        let arms = [Arm::new("D2O", opts.recipe("d2o.yaml")), ga];
        for &seed in &seeds {
            runs.extend(
                run_arms(
                    &arms,
                    &[],
                    seed,
                    &dir.join("runs").join(format!("seed{seed}")),
                    opts.progress,
                )
                .with_context(|| format!("{NAME}, part B, seed {seed}"))?,
            );
        }
        checks.extend(training_checks(&runs)?);
        sections.push(training_table(&runs)?);
        let acc = |l: &str| -> anyhow::Result<String> {
            Ok(Summary::of(&change(&runs, l, "accuracy")?).signed_mean_std())
        };
        sections.push(format!(
            "Δaccuracy: D²O {}, GA {}.",
            acc("D2O")?,
            acc("GA")?
        ));
    } else {
        sections.push("`--quick` runs part A only (checks 1–2).".into());
    }
    std::fs::create_dir_all(&dir)?;
    Ok(Report {
        name: NAME.into(),
        claim: ABOUT.into(),
        command: opts.command(NAME),
        quick: opts.quick,
        seeds,
        sections,
        checks,
        plot: None,
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

    fn arm(label: &str, seed: u64, acc: (f64, f64), p8: (f64, f64)) -> ArmRun {
        let rec = |l: &str, a: f64, p: f64| EvalRecord {
            label: l.into(),
            metrics: vec![("accuracy".into(), a), ("pass@8".into(), p)],
        };
        ArmRun {
            label: label.into(),
            seed,
            dir: "x".into(),
            evals: vec![rec("before", acc.0, p8.0), rec("after", acc.1, p8.1)],
        }
    }

    #[test]
    fn training_rule_holds_and_fails() {
        let mut r = Vec::new();
        for s in 1..=3 {
            let e = s as f64 * 0.01;
            r.push(arm("D2O", s, (0.3, 0.4 + e), (0.7, 0.7)));
            r.push(arm("GA", s, (0.3, 0.05 + e), (0.7, 0.2)));
        }
        assert!(training_checks(&r).unwrap().iter().all(|c| c.holds));
        // D²O losing pass@8 fails check 4
        for a in r.iter_mut().filter(|a| a.label == "D2O") {
            a.evals[1].metrics[1].1 = 0.6;
        }
        let c = training_checks(&r).unwrap();
        assert!(!c[1].holds && c[0].holds);
    }

    #[test]
    fn probe_rule() {
        let p = |a: f64, b: f64| Probe {
            seed: 1,
            rows: 4,
            negatives: 2,
            min_negative_grad: a,
            max_positive_grad: b,
        };
        assert!(probe_checks(&[p(0.1, -0.1)]).iter().all(|c| c.holds));
        assert!(!probe_checks(&[p(0.0, -0.1)])[0].holds);
    }

    #[test]
    fn the_ga_arm_resolves() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        foil::link_all();
        let r = Recipe::load(&root.join("recipes/d2o.yaml"), &[GA_OBJECTIVE.into()]).unwrap();
        let (_, obj) = rl_sampler_objective(&r).unwrap();
        let v = serde_json::to_value(&obj).unwrap();
        assert_eq!(v["type"], "safe_align");
        assert!(v["tau"].is_null());
    }
}
