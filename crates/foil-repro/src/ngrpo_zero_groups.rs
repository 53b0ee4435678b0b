//! `ngrpo_zero_groups`: NGRPO learns from all-incorrect groups, GRPO cannot.
//!
//! **Claim** (Nan et al. 2025, "NGRPO: Negative-enhanced Group Relative Policy
//! Optimization", arXiv 2509.18851; `../shared/docs/methods.md` §9): with a virtual
//! maximum-reward sample in each group's statistics, NGRPO gives a group whose samples are
//! all incorrect a negative advantage and so a gradient, where GRPO's advantage, and hence
//! its gradient, is exactly zero; and this improves accuracy on hard problems over GRPO.
//!
//! **Setting, part A (no training).** For each seed: the policy of `recipes/quickstart.yaml`
//! (GRPO) and `recipes/ngrpo.yaml` (NGRPO) as initialised (the same weights: same policy
//! config and seed), 8 training problems, 8 completions each from the recipes' RL sampler,
//! scored by their verifier; the groups whose completions are all incorrect (an untrained
//! policy gets everything wrong) go through each recipe's own advantage estimator and
//! objective, packed into a policy batch exactly as the `rl` stage packs one (behaviour
//! log-probs = the current policy's). Measured: the credits, the norm of the objective's
//! gradient with respect to the policy's logits (zero there means zero for every
//! parameter, by the chain rule), the largest change of any logit on the batch after one
//! optimizer step of the recipe's AdamW, and how many of the groups the recipe's filters
//! keep (GRPO's `dynamic_sampling` drops them before the estimator even sees them).
//!
//! **Setting, part B (training, full run only).** Both recipes with `task.max_operands=5`
//! (2–5 operands; about half of the RL groups of the SFT policy are all incorrect) from one
//! SFT checkpoint per seed; evaluation on 200 held-out problems × 8 samples with pass@k
//! per difficulty (`by_difficulty`); hard problems = 5 operands. Seeds 1–3.
//!
//! **Acceptance rule** (per seed, [`crate::rules`]):
//! 1. GRPO's credit on every completion of an all-incorrect group is exactly 0;
//! 2. NGRPO's is < 0 on every one;
//! 3. the GRPO objective's gradient norm there is exactly 0;
//! 4. NGRPO's is > 0;
//! 5. one GRPO optimizer step leaves every logit exactly unchanged;
//! 6. one NGRPO step changes some logit;
//! 7. NGRPO's filters keep some all-incorrect groups;
//! 8. (full only) NGRPO improves hard-problem accuracy over GRPO: mean over seeds of
//!    pass@1 on 5-operand problems after RL, NGRPO − GRPO paired by seed, > 0 and > one
//!    standard error.
//!
//! **Measured** (seeds 1–3, `docs/reproductions.md`): 1–7 hold (GRPO's credit, gradient
//! and update exactly zero, NGRPO's credit −1/3); 8 does not (NGRPO − GRPO on 5-operand
//! pass@1 −0.064 ± 0.054, below GRPO on every seed).
//!
//! **`--quick`** runs part A (checks 1–7, three seeds, seconds) and not part B: a hard-problem
//! accuracy difference needs the full training runs.

use std::path::Path;

use anyhow::{Context, bail, ensure};
use burn::tensor::{Tensor, TensorData};
use foil_core::backend::{B, parse_device};
use foil_core::batch::{HostPolicyBatch, PolicyBatch, to_vec, token_entropy, token_logprobs};
use foil_core::policy::{InferenceModel, OptimizerConfig, Policy};
use foil_core::recipe::Recipe;
use foil_core::{
    AdvantageEstimator, Credit, Filter, Objective, PolicyOutput, Sampler, ScoredGroup, Verifier,
    rng,
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::Options;
use crate::arms::{Arm, ArmRun, run_arms};
use crate::plot::{BarSeries, Panel, figure};
use crate::report::{Report, md_table};
use crate::rules::{Check, all_negative, all_positive, all_zero, raises};
use crate::stats::{Summary, diff};

pub const NAME: &str = "ngrpo_zero_groups";
pub const ABOUT: &str = "NGRPO gets gradient from all-incorrect groups where GRPO's is exactly \
     zero, and improves hard-problem accuracy over GRPO (Nan et al. 2025)";

/// Problems sampled per seed for part A.
pub const PROBE_PROBLEMS: usize = 8;
/// The hardest difficulty of part B (operands).
pub const HARD: u32 = 5;

/// The RL parts of a recipe's first `rl` stage.
struct RlParts {
    sampler: Box<dyn Sampler>,
    verifier: Box<dyn Verifier>,
    filters: Vec<Box<dyn Filter>>,
    advantage: Box<dyn AdvantageEstimator>,
    objective: Box<dyn Objective>,
    optimizer: OptimizerConfig,
}

fn rl_parts(recipe: &Recipe) -> anyhow::Result<RlParts> {
    let stage = recipe
        .stages
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .find(|v| v.get("type").and_then(Value::as_str) == Some("rl"))
        .with_context(|| format!("recipe `{}` has no rl stage", recipe.name))?;
    let field = |k: &str| {
        stage
            .get(k)
            .cloned()
            .with_context(|| format!("recipe `{}`: rl stage without `{k}`", recipe.name))
    };
    Ok(RlParts {
        sampler: serde_json::from_value(field("sampler")?)?,
        verifier: serde_json::from_value(field("verifier")?)?,
        filters: serde_json::from_value(field("filters")?)?,
        advantage: serde_json::from_value(field("advantage")?)?,
        objective: serde_json::from_value(field("objective")?)?,
        optimizer: serde_json::from_value(field("optimizer")?)?,
    })
}

/// What part A measured for one recipe and seed.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    pub label: String,
    pub seed: u64,
    /// All-incorrect groups probed, and their completions.
    pub groups: usize,
    pub completions: usize,
    /// How many of the groups the recipe's filters keep.
    pub kept_by_filters: usize,
    /// The sequence credit of every completion (excluded ones left out).
    pub credits: Vec<f64>,
    /// `‖∂ objective / ∂ logits‖₂` on the batch of those completions.
    pub logit_grad_norm: f64,
    /// `max |logits after − logits before|` over the batch after one optimizer step.
    pub step_max_logit_change: f64,
}

/// Per-token log-probs of the batch's targets under a frozen model, on the training device.
fn frozen(model: &dyn InferenceModel, host: &HostPolicyBatch, batch: &PolicyBatch) -> Tensor<B, 2> {
    let input = host.seqs.to_input(&model.device());
    let targets = input.tokens.clone().slice([0..host.seqs.n, 1..host.seqs.t]);
    let lp = to_vec(model.token_logprobs(&input, targets));
    Tensor::from_data(
        TensorData::new(lp, [batch.n, batch.width]),
        &batch.mask.device(),
    )
}

fn l2(v: &[f32]) -> f64 {
    v.iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt()
}

/// Part A for one recipe: credits, gradient and one step on `groups`.
fn probe_one(
    label: &str,
    seed: u64,
    recipe: &Recipe,
    parts: &RlParts,
    groups: &[ScoredGroup],
    vocab: usize,
    tok: &dyn foil_core::tokenizer::Tokenizer,
) -> anyhow::Result<Probe> {
    let device = parse_device(&recipe.device)?;
    let mut policy: Box<dyn Policy> = recipe.policy.build(vocab, &device, seed)?;
    let kept_by_filters = groups
        .iter()
        .filter(|g| parts.filters.iter().all(|f| f.keep(g)))
        .count();
    let credits = parts.advantage.estimate(groups)?;
    let mut seq = Vec::new();
    let prompts: Vec<Vec<u32>> = groups
        .iter()
        .map(|g| tok.encode_prompt(&g.group.problem.prompt))
        .collect::<anyhow::Result<_>>()?;
    let mut rows: Vec<(&[u32], &[u32], Vec<f32>)> = Vec::new();
    for ((g, cs), p) in groups.iter().zip(&credits).zip(&prompts) {
        ensure!(
            cs.len() == g.group.completions.len(),
            "one credit per completion"
        );
        for (c, credit) in g.group.completions.iter().zip(cs) {
            match credit {
                Credit::Sequence(a) => seq.push(f64::from(*a)),
                Credit::Token(v) => seq.extend(v.iter().map(|&a| f64::from(a))),
                Credit::Excluded => {}
            }
            if let Some(adv) = credit.per_token(c.tokens.len())
                && !c.tokens.is_empty()
            {
                rows.push((p, &c.tokens, adv));
            }
        }
    }
    let (mut grad_norm, mut change) = (0.0, 0.0);
    if !rows.is_empty() {
        let host = HostPolicyBatch::new(&rows, tok.pad_id());
        let mut batch = host.to_device(&policy.device(), parts.sampler.max_tokens());
        let before_model = policy.inference();
        if parts.objective.needs_old_logprobs() {
            batch.old_logprobs = Some(frozen(before_model.as_ref(), &host, &batch));
        }
        if parts.objective.needs_reference() {
            batch.ref_logprobs = Some(frozen(before_model.as_ref(), &host, &batch));
        }
        // gradient with respect to the logits, as a leaf of its own
        let logits = policy.forward(&batch.input).detach().require_grad();
        let out = PolicyOutput {
            logprobs: token_logprobs(logits.clone(), batch.targets.clone()),
            entropy: parts
                .objective
                .needs_entropy()
                .then(|| token_entropy(logits.clone())),
        };
        let loss = parts.objective.loss(&batch, &out)?;
        let grads = loss.value.backward();
        grad_norm = logits.grad(&grads).map(|g| l2(&to_vec(g))).unwrap_or(0.0);
        // one optimizer step through the parameters
        policy.reset_optimizer(&parts.optimizer);
        let logits = policy.forward(&batch.input);
        let out = PolicyOutput {
            entropy: parts
                .objective
                .needs_entropy()
                .then(|| token_entropy(logits.clone())),
            logprobs: token_logprobs(logits, batch.targets.clone()),
        };
        let loss = parts.objective.loss(&batch, &out)?;
        policy.step(loss.value, parts.optimizer.lr_at(0))?;
        let input = host.seqs.to_input(&before_model.device());
        let before = to_vec(before_model.forward(&input));
        let after = to_vec(policy.inference().forward(&input));
        change = before
            .iter()
            .zip(&after)
            .map(|(a, b)| f64::from((a - b).abs()))
            .fold(0.0, f64::max);
    }
    Ok(Probe {
        label: label.into(),
        seed,
        groups: groups.len(),
        completions: groups.iter().map(|g| g.group.completions.len()).sum(),
        kept_by_filters,
        credits: seq,
        logit_grad_norm: grad_norm,
        step_max_logit_change: change,
    })
}

/// Part A for one seed: GRPO and NGRPO on the same all-incorrect groups.
pub fn probe(opts: &Options, seed: u64) -> anyhow::Result<Vec<Probe>> {
    let set = [format!("seed={seed}")];
    let grpo = Recipe::load(&opts.recipe("quickstart.yaml"), &set)?;
    let ngrpo = Recipe::load(&opts.recipe("ngrpo.yaml"), &set)?;
    for (what, a, b) in [
        (
            "task",
            serde_json::to_value(&grpo.task)?,
            serde_json::to_value(&ngrpo.task)?,
        ),
        (
            "policy",
            serde_json::to_value(&grpo.policy)?,
            serde_json::to_value(&ngrpo.policy)?,
        ),
    ] {
        if a != b {
            bail!("quickstart.yaml and ngrpo.yaml must share their {what} for this probe");
        }
    }
    let task = grpo.task.build(seed)?;
    let tok = task.tokenizer.clone();
    let vocab = tok.vocab_size();
    let (gp, np) = (rl_parts(&grpo)?, rl_parts(&ngrpo)?);
    // rollouts of the policy as initialised, with GRPO's sampler and verifier
    let device = parse_device(&grpo.device)?;
    let init = grpo.policy.build(vocab, &device, seed)?.inference();
    let problems = task.train[..PROBE_PROBLEMS.min(task.train.len())].to_vec();
    let sampled = gp.sampler.sample(
        init.as_ref(),
        tok.as_ref(),
        &problems,
        rng::derive(seed, &[0x2e80]),
    )?;
    let groups: Vec<ScoredGroup> = sampled
        .into_iter()
        .map(|g| {
            let verdicts = g
                .completions
                .iter()
                .map(|c| gp.verifier.verify(&g.problem, &c.text))
                .collect();
            ScoredGroup {
                group: g,
                verdicts,
                baseline: None,
            }
        })
        .filter(|g| g.num_correct() == 0)
        .collect();
    ensure!(
        !groups.is_empty(),
        "seed {seed}: no all-incorrect group among {PROBE_PROBLEMS} problems"
    );
    Ok(vec![
        probe_one("GRPO", seed, &grpo, &gp, &groups, vocab, tok.as_ref())?,
        probe_one("NGRPO", seed, &ngrpo, &np, &groups, vocab, tok.as_ref())?,
    ])
}

fn probe_values(probes: &[Probe], label: &str, f: impl Fn(&Probe) -> f64) -> Vec<f64> {
    probes.iter().filter(|p| p.label == label).map(f).collect()
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().map(|x| x.abs()).fold(0.0, f64::max)
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// Checks 1–7 on part A's probes (values per seed).
pub fn probe_checks(probes: &[Probe]) -> Vec<Check> {
    vec![
        all_zero(
            "GRPO's credit on all-incorrect groups is exactly 0 (largest absolute credit per seed)",
            &probe_values(probes, "GRPO", |p| max_abs(&p.credits)),
        ),
        all_negative(
            "NGRPO's credit there is negative (largest credit per seed)",
            &probe_values(probes, "NGRPO", |p| max(&p.credits)),
        ),
        all_zero(
            "GRPO's gradient there is exactly 0 (‖∂L/∂logits‖ per seed)",
            &probe_values(probes, "GRPO", |p| p.logit_grad_norm),
        ),
        all_positive(
            "NGRPO's gradient there is non-zero (‖∂L/∂logits‖ per seed)",
            &probe_values(probes, "NGRPO", |p| p.logit_grad_norm),
        ),
        all_zero(
            "one GRPO AdamW step leaves every logit unchanged (largest absolute logit change per seed)",
            &probe_values(probes, "GRPO", |p| p.step_max_logit_change),
        ),
        all_positive(
            "one NGRPO AdamW step moves the policy (largest absolute logit change per seed)",
            &probe_values(probes, "NGRPO", |p| p.step_max_logit_change),
        ),
        all_positive(
            "NGRPO's filters (drop_solved) keep all-incorrect groups (fraction kept per seed)",
            &probe_values(probes, "NGRPO", |p| {
                p.kept_by_filters as f64 / p.groups as f64
            }),
        ),
    ]
}

fn probe_table(probes: &[Probe]) -> String {
    let rows: Vec<Vec<String>> = probes
        .iter()
        .map(|p| {
            let credits = Summary::of(&p.credits);
            vec![
                p.label.clone(),
                p.seed.to_string(),
                format!("{} ({} completions)", p.groups, p.completions),
                format!("{} of {}", p.kept_by_filters, p.groups),
                if credits.std == 0.0 {
                    format!("all {:.4}", credits.mean)
                } else {
                    format!("{:.4} ± {:.4}", credits.mean, credits.std)
                },
                format!("{:.6e}", p.logit_grad_norm),
                format!("{:.6e}", p.step_max_logit_change),
            ]
        })
        .collect();
    format!(
        "## Part A: all-incorrect groups, no training\n\nRollouts of the policy as \
         initialised on {PROBE_PROBLEMS} training problems per seed (8 samples each); the \
         groups with no correct sample go through each recipe's estimator and objective.\n\n{}\n",
        md_table(
            &[
                "recipe",
                "seed",
                "all-incorrect groups",
                "kept by the recipe's filters",
                "credit per completion",
                "‖∂L/∂logits‖",
                "largest absolute logit change after one step",
            ],
            &rows
        )
    )
}

/// Common `--set` overrides of part B.
pub fn hard_overrides() -> Vec<String> {
    vec![
        format!("task.max_operands={HARD}"),
        "stages.1.by_difficulty=true".into(),
        "stages.3.by_difficulty=true".into(),
    ]
}

fn values(runs: &[ArmRun], label: &str, eval: &str, metric: &str) -> anyhow::Result<Vec<f64>> {
    runs.iter()
        .filter(|r| r.label == label)
        .map(|r| r.metric(eval, metric))
        .collect()
}

/// Fraction of the RL stage's sampled groups that were all incorrect (from metrics.jsonl).
fn all_wrong_fraction(dir: &Path) -> anyhow::Result<f64> {
    let text = std::fs::read_to_string(dir.join("metrics.jsonl"))?;
    let (mut wrong, mut sampled) = (0.0, 0.0);
    for line in text.lines() {
        let v: Value = serde_json::from_str(line)?;
        if v.get("stage_type").and_then(Value::as_str) == Some("rl") {
            wrong += v["all_wrong_groups"].as_f64().unwrap_or(0.0);
            sampled += v["groups_sampled"].as_f64().unwrap_or(0.0);
        }
    }
    Ok(if sampled > 0.0 {
        wrong / sampled
    } else {
        f64::NAN
    })
}

/// Check 8 on part B's runs.
pub fn hard_check(runs: &[ArmRun]) -> anyhow::Result<Check> {
    let m = format!("pass@1_d{HARD}");
    Ok(raises(
        &format!(
            "NGRPO improves hard-problem ({HARD}-operand) accuracy over GRPO (pass@1 after, NGRPO − GRPO paired by seed)"
        ),
        &diff(
            &values(runs, "NGRPO", "after", &m)?,
            &values(runs, "GRPO", "after", &m)?,
        ),
    ))
}

fn difficulties(runs: &[ArmRun]) -> Vec<u32> {
    let mut ds: Vec<u32> = runs
        .iter()
        .flat_map(|r| r.evals.iter().flat_map(|e| e.metrics.iter()))
        .filter_map(|(k, _)| k.strip_prefix("pass@1_d").and_then(|d| d.parse().ok()))
        .collect();
    ds.sort();
    ds.dedup();
    ds
}

fn hard_tables(runs: &[ArmRun], seeds: &[u64]) -> anyhow::Result<String> {
    let ds = difficulties(runs);
    let labels = ["GRPO", "NGRPO"];
    let mut rows = Vec::new();
    let mut before = vec!["before (SFT)".to_string()];
    for d in &ds {
        before.push(
            Summary::of(&values(runs, "GRPO", "before", &format!("pass@1_d{d}"))?).mean_std(),
        );
    }
    before
        .push(Summary::of(&values(runs, "GRPO", "before", &format!("pass@8_d{HARD}"))?).mean_std());
    before.push(Summary::of(&values(runs, "GRPO", "before", "pass@1")?).mean_std());
    before.push(String::new());
    rows.push(before);
    for l in labels {
        let mut row = vec![format!("{l} after")];
        for d in &ds {
            row.push(Summary::of(&values(runs, l, "after", &format!("pass@1_d{d}"))?).mean_std());
        }
        row.push(Summary::of(&values(runs, l, "after", &format!("pass@8_d{HARD}"))?).mean_std());
        row.push(Summary::of(&values(runs, l, "after", "pass@1")?).mean_std());
        let fr: Vec<f64> = runs
            .iter()
            .filter(|r| r.label == l)
            .map(|r| all_wrong_fraction(&r.dir))
            .collect::<anyhow::Result<_>>()?;
        row.push(Summary::of(&fr).mean_std());
        rows.push(row);
    }
    let hs: Vec<String> = ds
        .iter()
        .map(|d| format!("pass@1, {d} operands"))
        .chain([
            format!("pass@8, {HARD} operands"),
            "pass@1, all".into(),
            "all-incorrect groups during RL".into(),
        ])
        .collect();
    let mut h = vec![""];
    h.extend(hs.iter().map(String::as_str));
    let counts: Vec<String> = ds
        .iter()
        .map(|d| {
            values(runs, "GRPO", "before", &format!("problems_d{d}")).map(|v| {
                let n: Vec<String> = v.iter().map(|x| format!("{x:.0}")).collect();
                format!("{d} operands: {}", n.join(", "))
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let mut s = format!(
        "## Part B: hard problems (2–{HARD} operands)\n\nOverrides on both recipes: `{}`, plus \
         `seed=S`. Mean ± std over seeds {}; held-out problems per difficulty (per seed): {}.\n\n{}\n\n",
        hard_overrides().join("`, `"),
        seeds
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        counts.join("; "),
        md_table(&h, &rows)
    );
    let mut rows = Vec::new();
    let m = format!("pass@1_d{HARD}");
    for (i, seed) in seeds.iter().enumerate() {
        let b = values(runs, "GRPO", "before", &m)?[i];
        let g = values(runs, "GRPO", "after", &m)?[i];
        let n = values(runs, "NGRPO", "after", &m)?[i];
        let bg = values(runs, "GRPO", "before", "pass@1")?[i];
        let ga = values(runs, "GRPO", "after", "pass@1")?[i];
        let na = values(runs, "NGRPO", "after", "pass@1")?[i];
        rows.push(vec![
            seed.to_string(),
            format!("{b:.4}"),
            format!("{g:.4}"),
            format!("{n:.4}"),
            format!("{:+.4}", n - g),
            format!("{bg:.4} / {ga:.4} / {na:.4}"),
        ]);
    }
    s.push_str(&format!(
        "### Per seed\n\n{}\n",
        md_table(
            &[
                "seed",
                &format!("{m} before"),
                "GRPO after",
                "NGRPO after",
                "NGRPO − GRPO",
                "pass@1 all: before / GRPO / NGRPO",
            ],
            &rows
        )
    ));
    Ok(s)
}

fn draw(path: &Path, probes: &[Probe], runs: &[ArmRun], quick: bool) -> anyhow::Result<()> {
    let mut panels = Vec::new();
    if !runs.is_empty() {
        let ds = difficulties(runs);
        let mut series = Vec::new();
        for (name, label, eval) in [
            ("before (SFT)", "GRPO", "before"),
            ("GRPO after", "GRPO", "after"),
            ("NGRPO after", "NGRPO", "after"),
        ] {
            let mut v = Vec::new();
            let mut e = Vec::new();
            for d in &ds {
                let s = Summary::of(&values(runs, label, eval, &format!("pass@1_d{d}"))?);
                v.push(s.mean);
                e.push(s.std);
            }
            series.push(BarSeries {
                label: name.into(),
                values: v,
                err: Some(e),
            });
        }
        panels.push(Panel::Bars {
            title: "pass@1 by number of operands".into(),
            y_label: "pass@1".into(),
            categories: ds.iter().map(|d| format!("{d} operands")).collect(),
            series,
        });
    }
    let mut norms = Vec::new();
    let mut errs = Vec::new();
    for l in ["GRPO", "NGRPO"] {
        let s = Summary::of(&probe_values(probes, l, |p| p.logit_grad_norm));
        norms.push(s.mean);
        errs.push(s.std);
    }
    panels.push(Panel::Bars {
        title: "gradient on all-incorrect groups".into(),
        y_label: "‖∂L/∂logits‖".into(),
        categories: vec!["GRPO".into(), "NGRPO".into()],
        series: vec![BarSeries {
            label: "mean ± std over seeds".into(),
            values: norms,
            err: Some(errs),
        }],
    });
    let width = 500 * panels.len() as u32 + 100;
    figure(
        path,
        &format!(
            "ngrpo_zero_groups{}: NGRPO vs GRPO",
            if quick { " (quick)" } else { "" }
        ),
        width,
        450,
        &panels,
    )
}

/// Runs the reproduction (see the module docs).
pub fn run(opts: &Options) -> anyhow::Result<Report> {
    let seeds = opts.seed_list(3, 3);
    let dir = opts.dir(NAME);
    let mut probes = Vec::new();
    for &seed in &seeds {
        probes.extend(probe(opts, seed).with_context(|| format!("{NAME}, part A, seed {seed}"))?);
    }
    if opts.progress {
        eprintln!("  part A done ({} seeds)", seeds.len());
    }
    let mut checks = probe_checks(&probes);
    let mut sections = vec![probe_table(&probes)];
    let mut runs = Vec::new();
    if !opts.quick {
        let arms = [
            Arm::new("GRPO", opts.recipe("quickstart.yaml")),
            Arm::new("NGRPO", opts.recipe("ngrpo.yaml")),
        ];
        for &seed in &seeds {
            runs.extend(
                run_arms(
                    &arms,
                    &hard_overrides(),
                    seed,
                    &dir.join("runs").join(format!("seed{seed}")),
                    opts.progress,
                )
                .with_context(|| format!("{NAME}, part B, seed {seed}"))?,
            );
        }
        checks.push(hard_check(&runs)?);
        sections.push(hard_tables(&runs, &seeds)?);
    } else {
        sections.push(
            "`--quick` runs part A only (checks 1–7); the hard-problem accuracy comparison \
             (part B) needs the full run."
                .into(),
        );
    }
    let plot = dir.join(format!("{NAME}.png"));
    std::fs::create_dir_all(&dir)?;
    draw(&plot, &probes, &runs, opts.quick)?;
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
            "hard_overrides": if opts.quick { Vec::new() } else { hard_overrides() },
            "runs": crate::arms::runs_json(&runs),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use foil_core::checkpoint::EvalRecord;

    fn p(label: &str, seed: u64, credits: &[f64], grad: f64, change: f64, kept: usize) -> Probe {
        Probe {
            label: label.into(),
            seed,
            groups: 8,
            completions: 64,
            kept_by_filters: kept,
            credits: credits.to_vec(),
            logit_grad_norm: grad,
            step_max_logit_change: change,
        }
    }

    #[test]
    fn probe_checks_hold_on_the_expected_numbers_and_fail_otherwise() {
        let good = vec![
            p("GRPO", 1, &[0.0; 8], 0.0, 0.0, 0),
            p("NGRPO", 1, &[-1.0 / 3.0; 8], 0.02, 1e-3, 8),
        ];
        assert!(probe_checks(&good).iter().all(|c| c.holds));
        // a GRPO gradient that is merely tiny is not "exactly zero"
        let mut bad = good.clone();
        bad[0].logit_grad_norm = 1e-12;
        let c = probe_checks(&bad);
        assert_eq!(c.iter().filter(|c| !c.holds).count(), 1);
        assert!(!c[2].holds);
        // NGRPO with a zero credit somewhere fails check 2
        let mut bad = good.clone();
        bad[1].credits[3] = 0.0;
        assert!(!probe_checks(&bad)[1].holds);
        // NGRPO's filters dropping every all-incorrect group fails check 7
        let mut bad = good;
        bad[1].kept_by_filters = 0;
        assert!(!probe_checks(&bad)[6].holds);
    }

    fn arm(label: &str, seed: u64, hard_after: f64) -> ArmRun {
        let rec = |l: &str, v: f64| EvalRecord {
            label: l.into(),
            metrics: vec![("pass@1".into(), 0.4), (format!("pass@1_d{HARD}"), v)],
        };
        ArmRun {
            label: label.into(),
            seed,
            dir: "x".into(),
            evals: vec![rec("before", 0.1), rec("after", hard_after)],
        }
    }

    #[test]
    fn hard_accuracy_rule() {
        let runs = vec![
            arm("GRPO", 1, 0.10),
            arm("NGRPO", 1, 0.14),
            arm("GRPO", 2, 0.12),
            arm("NGRPO", 2, 0.15),
        ];
        assert!(hard_check(&runs).unwrap().holds);
        // NGRPO worse on one seed and better on the other by as much: no improvement
        let runs = vec![
            arm("GRPO", 1, 0.10),
            arm("NGRPO", 1, 0.14),
            arm("GRPO", 2, 0.15),
            arm("NGRPO", 2, 0.11),
        ];
        assert!(!hard_check(&runs).unwrap().holds);
    }
}
