//! `gtpo_stability`: GTPO trains stably without a reference model where GRPO without KL
//! degrades.
//!
//! **Claim** (Simoni et al. 2025, "GTPO: Trajectory-Based Policy Optimization in Large
//! Language Models", arXiv 2508.03772; `../shared/docs/methods.md` §16): protecting
//! "conflict tokens" (shared by positively and negatively rewarded completions: ×2 on the
//! positives, ×0 on the negatives) and filtering high-entropy completions lets GTPO train
//! with β = 0 (no KL, no reference model) where GRPO without KL collapses — at a
//! deliberately high learning rate, GRPO-no-KL loses the format and accuracy while GTPO
//! stays stable.
//!
//! **Part A (mechanism, no training, deterministic).** Per seed, on the first 8 training
//! problems of `recipes/gtpo.yaml`'s task whose demonstration is correct, a group of four hand-built completions per problem: `c0` the
//! demonstration (correct), `c1` the same with a wrong final digit (incorrect; it shares
//! every token with `c0` up to the answer: the *shared prefix*), `c2` the demonstration again
//! but with mean token entropy 1.5 > 0.7 (correct, filtered), `c3` the wrong answer alone
//! (`A:w`, incorrect). Entropies are set (0.2 for `c0`, `c1`, `c3`), not measured, since the
//! check is about what the estimator and objective do with them; rewards come from the
//! recipe's verifier. Each group goes through the recipe's estimator and objective (GTPO:
//! `gtpo` + `ppo_clip`), through GTPO with `conflicts: false`, and through GRPO
//! (`quickstart.yaml`), packed as the `rl` stage packs a batch; measured is the gradient of
//! the loss with respect to each token's log-probability (on-policy: ratio 1).
//!
//! **Part B (training, full run only).** One SFT checkpoint per seed (seeds 1–3), then two
//! arms with the RL learning rate raised from 1e-3 to [`HIGH_LR`] (Adam): GRPO without KL
//! (`quickstart.yaml`: its `kl` term has coefficient 0, so it is GRPO with β = 0) and GTPO
//! (`gtpo.yaml`, β = 0); 80 steps of 16 prompts × 8 samples. Evaluated before RL (the
//! SFT checkpoint) and after: pass@1 on 200 held-out problems × 8 samples (the recipes'
//! eval stages), and on a second draw of 200 × 8 samples from the saved policy, the
//! *format validity* (fraction of responses that end with EOS and read
//! `a∘b=c|…|A:n`: every piece before the last is one step `int op int = int`, the last is
//! `A:` and an integer — right or wrong) and the *mean token entropy* of the model's own
//! distribution over the generated tokens.
//!
//! **Acceptance rule** (fixed before any run; [`crate::rules`]):
//! 1. (A) GTPO's gradient on every shared-prefix token of the negative completion `c1` is
//!    exactly 0, on every seed (largest absolute value);
//! 2. (A) GRPO's gradient there is not zero (the contradictory update exists);
//! 3. (A) GTPO's gradient on the shared-prefix tokens of the positive `c0` is twice that of
//!    GTPO without conflict protection: largest `|g_gtpo / g_noconflict − 2|` ≤ 1e-5;
//! 4. (A) the filtered completion `c2` gets exactly zero gradient on every token;
//! 5. (B) GRPO without KL degrades at this learning rate: pass@1 after − before *lowers*;
//! 6. (B) GTPO keeps pass@1: after − before *keeps or raises* (≥ −0.02);
//! 7. (B) GTPO keeps the format: validity after − before *keeps or raises*;
//! 8. (B) GTPO beats GRPO-no-KL on pass@1 after (paired by seed): *raises*;
//! 9. (B) GTPO's format validity is *at least* GRPO-no-KL's (paired, tol 0.02).
//!
//! Reported, not gating: the change of mean token entropy of each arm, and GTPO − GRPO
//! entropy after.
//!
//! **Measured** (`docs/reproductions.md`): part A holds on seeds 1–3 (GTPO's gradient on the
//! negative's shared prefix exactly 0 where GRPO's is ~2.5e-3; exactly ×2 on the positive's;
//! filtered completion exactly 0). Part B, seed 1 only so far, at lr 1e-2: both arms
//! collapse — GRPO-no-KL pass@1 0.301 → 0.210, format validity 0.977 → 0, entropy 0.17 →
//! 0.35; GTPO pass@1 → 0.230, validity → 0, entropy → 0.03 (never emits EOS). Checks 6 and
//! 7 fail: the claim does not hold at this setting.
//!
//! **`--quick`** runs part A only (checks 1–4; three seeds, a few seconds): training
//! outcomes need the full runs.

use std::path::Path;

use anyhow::{Context, ensure};
use foil_core::backend::parse_device;
use foil_core::batch::{HostPolicyBatch, to_vec, token_entropy, token_logprobs};
use foil_core::recipe::Recipe;
use foil_core::{
    AdvantageEstimator, Completion, Finish, Group, Objective, PolicyOutput, Problem, Sampler,
    ScoredGroup, Verifier, rng,
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::Options;
use crate::arms::{Arm, ArmRun, run_arms};
use crate::plot::{BarSeries, Panel, figure};
use crate::report::{Report, md_table};
use crate::rules::{Check, TOL, all_positive, all_zero, at_least, keeps_or_raises, lowers, raises};
use crate::stats::{Summary, diff};

pub const NAME: &str = "gtpo_stability";
pub const ABOUT: &str = "GTPO trains stably without a reference model where GRPO without KL \
     degrades, at a high learning rate (Simoni et al. 2025)";

/// The RL learning rate of part B (the recipes use 1e-3).
pub const HIGH_LR: f64 = 1.0e-2;

/// Part B's learning rate: [`HIGH_LR`], or the last `--set stages.2.optimizer.lr=…` of the
/// command line (a sweep; the result records the command).
pub fn high_lr() -> f64 {
    crate::arms::extra_overrides()
        .iter()
        .rev()
        .find_map(|s| s.strip_prefix("stages.2.optimizer.lr=")?.parse().ok())
        .unwrap_or(HIGH_LR)
}
/// Problems per seed in part A.
pub const PROBE_PROBLEMS: usize = 8;
/// Entropy given to the filtered completion in part A (above the 0.7 threshold) and to the
/// others (below it).
const HIGH_ENTROPY: f32 = 1.5;
const LOW_ENTROPY: f32 = 0.2;

// ---------------------------------------------------------------------------------------
// format validity

fn is_int(s: &str) -> bool {
    let d = s.strip_prefix('-').unwrap_or(s);
    !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
}

/// One step piece `a∘b=c` with integers and `∘ ∈ {+, -, *}`.
fn is_step(s: &str) -> bool {
    let Some((lhs, rhs)) = s.split_once('=') else {
        return false;
    };
    if !is_int(rhs) {
        return false;
    }
    // the operator is the first + - * after the first character (a may be negative)
    let Some(pos) = lhs
        .char_indices()
        .skip(1)
        .find(|(_, c)| matches!(c, '+' | '-' | '*'))
        .map(|(i, _)| i)
    else {
        return false;
    };
    is_int(&lhs[..pos]) && is_int(&lhs[pos + 1..])
}

/// Whether a response is well formed: it ended with EOS and reads `step|…|step|A:n` (zero
/// or more steps), whatever its numbers.
pub fn format_valid(text: &str, finish: Finish) -> bool {
    if finish != Finish::Eos {
        return false;
    }
    let pieces: Vec<&str> = text.split('|').collect();
    let (last, steps) = pieces.split_last().expect("split yields one piece");
    last.strip_prefix("A:").is_some_and(is_int) && steps.iter().all(|s| is_step(s))
}

// ---------------------------------------------------------------------------------------
// part A

/// The parts of a recipe's first `rl` stage that part A uses.
fn rl_part<T: serde::de::DeserializeOwned>(recipe: &Recipe, key: &str) -> anyhow::Result<T> {
    let stage = recipe
        .stages
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .find(|v| v.get("type").and_then(Value::as_str) == Some("rl"))
        .with_context(|| format!("recipe `{}` has no rl stage", recipe.name))?;
    let v = stage
        .get(key)
        .cloned()
        .with_context(|| format!("recipe `{}`: rl stage without `{key}`", recipe.name))?;
    Ok(serde_json::from_value(v)?)
}

/// What part A measured for one seed.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    pub seed: u64,
    pub groups: usize,
    /// Shared-prefix tokens of the negative completions, over all groups.
    pub shared_prefix_tokens: usize,
    /// Largest `|∂L/∂logp|` of GTPO on the negative completion's shared prefix.
    pub gtpo_neg_prefix: f64,
    /// The same under GRPO.
    pub grpo_neg_prefix: f64,
    /// Largest `|g_gtpo / g_noconflict − 2|` on the positive completion's shared prefix.
    pub pos_ratio_dev: f64,
    /// Largest `|∂L/∂logp|` of GTPO on the filtered completion.
    pub gtpo_filtered: f64,
    /// Mean `|∂L/∂logp|` of GTPO on the other tokens (that the update is not empty).
    pub gtpo_other_mean: f64,
}

/// Per-row response-token gradients of `objective`'s loss with respect to the token
/// log-probabilities, for `groups` credited by `estimator`. Rows in completion order.
#[allow(clippy::too_many_arguments)]
fn token_grads(
    recipe: &Recipe,
    estimator: &dyn AdvantageEstimator,
    objective: &dyn Objective,
    groups: &[ScoredGroup],
    prompts: &[Vec<u32>],
    pad: u32,
    vocab: usize,
    seed: u64,
) -> anyhow::Result<Vec<Vec<f64>>> {
    let credits = estimator.estimate(groups)?;
    let mut rows: Vec<(&[u32], &[u32], Vec<f32>)> = Vec::new();
    for ((g, cs), p) in groups.iter().zip(&credits).zip(prompts) {
        for (c, credit) in g.group.completions.iter().zip(cs) {
            let adv = credit
                .per_token(c.tokens.len())
                .context("part A: no completion may be excluded")?;
            rows.push((p, &c.tokens, adv));
        }
    }
    let device = parse_device(&recipe.device)?;
    let policy = recipe.policy.build(vocab, &device, seed)?;
    let host = HostPolicyBatch::new(&rows, pad);
    let mut batch = host.to_device(&policy.device(), 32);
    let logits = policy.forward(&batch.input).detach();
    let lp = token_logprobs(logits.clone(), batch.targets.clone()).detach();
    batch.old_logprobs = Some(lp.clone());
    batch.ref_logprobs = Some(lp.clone());
    let lp = lp.require_grad();
    let out = PolicyOutput {
        logprobs: lp.clone(),
        entropy: objective.needs_entropy().then(|| token_entropy(logits)),
    };
    let loss = objective.loss(&batch, &out)?;
    let grads = loss.value.backward();
    let g = to_vec(lp.grad(&grads).context("no gradient on the log-probs")?);
    let mask = to_vec(batch.mask.clone());
    let w = batch.width;
    Ok((0..rows.len())
        .map(|r| {
            (0..w)
                .filter(|&j| mask[r * w + j] > 0.5)
                .map(|j| f64::from(g[r * w + j]))
                .collect()
        })
        .collect())
}

fn completion(
    tok: &dyn foil_core::tokenizer::Tokenizer,
    text: &str,
    h: f32,
) -> anyhow::Result<Completion> {
    let mut tokens = tok.encode(text)?;
    tokens.push(tok.eos_id());
    Ok(Completion {
        text: text.into(),
        logprobs: vec![0.0; tokens.len()],
        entropies: vec![h; tokens.len()],
        tokens,
        finish: Finish::Eos,
    })
}

/// The demonstration with its final answer replaced by a wrong one (`(a + 1) mod 10`,
/// or `a + 1` when the answer is not a digit).
fn wrong_answer(p: &Problem) -> anyhow::Result<String> {
    let a: i64 = p.answer.trim().parse().context("a numeric answer")?;
    Ok(((a + 1).rem_euclid(10)).to_string())
}

/// Part A for one seed.
pub fn probe(opts: &Options, seed: u64) -> anyhow::Result<Probe> {
    let set = [format!("seed={seed}")];
    let gtpo = Recipe::load(&opts.recipe("gtpo.yaml"), &set)?;
    let grpo = Recipe::load(&opts.recipe("quickstart.yaml"), &set)?;
    let task = gtpo.task.build(seed)?;
    let tok = task.tokenizer.clone();
    let verifier: Box<dyn Verifier> = rl_part(&gtpo, "verifier")?;
    let gtpo_adv: Value = rl_part(&gtpo, "advantage")?;
    let est: Box<dyn AdvantageEstimator> = serde_json::from_value(gtpo_adv.clone())?;
    let mut off = gtpo_adv;
    off["conflicts"] = json!(false);
    let est_off: Box<dyn AdvantageEstimator> = serde_json::from_value(off)?;
    let obj: Box<dyn Objective> = rl_part(&gtpo, "objective")?;
    let grpo_est: Box<dyn AdvantageEstimator> = rl_part(&grpo, "advantage")?;
    let grpo_obj: Box<dyn Objective> = rl_part(&grpo, "objective")?;

    // training problems whose demonstration is correct (half of them take a shortcut)
    let problems: Vec<Problem> = task
        .train
        .iter()
        .filter(|p| verifier.verify(p, &p.solution).correct && p.solution.contains('|'))
        .take(PROBE_PROBLEMS)
        .cloned()
        .collect();
    ensure!(
        !problems.is_empty(),
        "part A: no training problem with a correct demonstration"
    );
    let mut groups = Vec::new();
    let mut prefix_len = Vec::new();
    for p in &problems {
        let wrong = wrong_answer(p)?;
        let cut = p
            .solution
            .rfind("A:")
            .context("a demonstration ending in A:n")?;
        let c1_text = format!("{}A:{wrong}", &p.solution[..cut]);
        let cs = vec![
            completion(tok.as_ref(), &p.solution, LOW_ENTROPY)?,
            completion(tok.as_ref(), &c1_text, LOW_ENTROPY)?,
            completion(tok.as_ref(), &p.solution, HIGH_ENTROPY)?,
            completion(tok.as_ref(), &format!("A:{wrong}"), LOW_ENTROPY)?,
        ];
        let shared = cs[0]
            .tokens
            .iter()
            .zip(&cs[1].tokens)
            .take_while(|(a, b)| a == b)
            .count();
        prefix_len.push(shared);
        let verdicts: Vec<_> = cs.iter().map(|c| verifier.verify(p, &c.text)).collect();
        ensure!(
            verdicts[0].correct
                && !verdicts[1].correct
                && verdicts[2].correct
                && !verdicts[3].correct,
            "part A: the hand-built completions of {} were not judged as intended",
            p.id
        );
        groups.push(ScoredGroup {
            group: Group {
                problem: p.clone(),
                completions: cs,
            },
            verdicts,
            baseline: None,
        });
    }
    let prompts: Vec<Vec<u32>> = problems
        .iter()
        .map(|p| tok.encode_prompt(&p.prompt))
        .collect::<anyhow::Result<_>>()?;
    let vocab = tok.vocab_size();
    let pad = tok.pad_id();
    let g = token_grads(
        &gtpo,
        est.as_ref(),
        obj.as_ref(),
        &groups,
        &prompts,
        pad,
        vocab,
        seed,
    )?;
    let g_off = token_grads(
        &gtpo,
        est_off.as_ref(),
        obj.as_ref(),
        &groups,
        &prompts,
        pad,
        vocab,
        seed,
    )?;
    let g_grpo = token_grads(
        &grpo,
        grpo_est.as_ref(),
        grpo_obj.as_ref(),
        &groups,
        &prompts,
        pad,
        vocab,
        seed,
    )?;
    let (mut neg, mut neg_grpo, mut dev, mut filt) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    let (mut other, mut n_other, mut n_shared) = (0.0, 0usize, 0usize);
    for (gi, &shared) in prefix_len.iter().enumerate() {
        let row = |c: usize| gi * 4 + c;
        for t in 0..shared {
            neg = neg.max(g[row(1)][t].abs());
            neg_grpo = neg_grpo.max(g_grpo[row(1)][t].abs());
            let (a, b) = (g[row(0)][t], g_off[row(0)][t]);
            dev = dev.max(if b == 0.0 {
                f64::INFINITY
            } else {
                (a / b - 2.0).abs()
            });
        }
        n_shared += shared;
        filt = g[row(2)].iter().fold(filt, |m, x| m.max(x.abs()));
        for c in [0, 1, 3] {
            for (t, x) in g[row(c)].iter().enumerate() {
                if t >= shared {
                    other += x.abs();
                    n_other += 1;
                }
            }
        }
    }
    Ok(Probe {
        seed,
        groups: groups.len(),
        shared_prefix_tokens: n_shared,
        gtpo_neg_prefix: neg,
        grpo_neg_prefix: neg_grpo,
        pos_ratio_dev: dev,
        gtpo_filtered: filt,
        gtpo_other_mean: other / n_other.max(1) as f64,
    })
}

/// Checks 1–4 on part A's probes.
pub fn probe_checks(probes: &[Probe]) -> Vec<Check> {
    let v = |f: fn(&Probe) -> f64| probes.iter().map(f).collect::<Vec<_>>();
    vec![
        all_zero(
            "1. GTPO's gradient on the negative completion's shared-prefix tokens is exactly 0 (largest abs ∂L/∂logp per seed)",
            &v(|p| p.gtpo_neg_prefix),
        ),
        all_positive(
            "2. GRPO's gradient there is not zero (largest abs ∂L/∂logp per seed)",
            &v(|p| p.grpo_neg_prefix),
        ),
        all_positive(
            "3. GTPO doubles the positive completion's shared-prefix gradient: 1e-5 − max abs(g_gtpo/g_noconflict − 2) per seed",
            &v(|p| 1e-5 - p.pos_ratio_dev),
        ),
        all_zero(
            "4. the filtered (mean entropy 1.5 > 0.7) completion gets exactly zero gradient (largest abs ∂L/∂logp per seed)",
            &v(|p| p.gtpo_filtered),
        ),
    ]
}

fn probe_table(probes: &[Probe]) -> String {
    let rows: Vec<Vec<String>> = probes
        .iter()
        .map(|p| {
            vec![
                p.seed.to_string(),
                format!(
                    "{} ({} shared-prefix tokens)",
                    p.groups, p.shared_prefix_tokens
                ),
                format!("{:.3e}", p.gtpo_neg_prefix),
                format!("{:.3e}", p.grpo_neg_prefix),
                format!("{:.2e}", p.pos_ratio_dev),
                format!("{:.3e}", p.gtpo_filtered),
                format!("{:.3e}", p.gtpo_other_mean),
            ]
        })
        .collect();
    format!(
        "## Part A: conflict tokens and the entropy filter, no training\n\nPer seed {PROBE_PROBLEMS} \
         groups of four hand-built completions (demonstration; the same with a wrong final \
         digit; the demonstration with mean entropy {HIGH_ENTROPY}; the wrong answer alone); \
         abs ∂L/∂logp per token through each recipe's estimator and objective.\n\n{}\n",
        md_table(
            &[
                "seed",
                "groups",
                "GTPO, negative's shared prefix (max)",
                "GRPO, negative's shared prefix (max)",
                "positive's shared prefix: max abs(GTPO/no-conflict − 2)",
                "GTPO, filtered completion (max)",
                "GTPO, other tokens (mean)",
            ],
            &rows
        )
    )
}

// ---------------------------------------------------------------------------------------
// part B

/// Common `--set` overrides of part B.
pub fn overrides() -> Vec<String> {
    vec![format!("stages.2.optimizer.lr={}", high_lr())]
}

/// Format validity and mean token entropy of one saved policy.
#[derive(Debug, Clone, Serialize)]
pub struct Sampled {
    pub label: String,
    pub seed: u64,
    /// `before` (the SFT checkpoint) or `after`.
    pub when: String,
    pub format_valid: f64,
    pub entropy: f64,
}

/// Samples the test split (200 × 8, T = 1) from the newest checkpoint of `run`.
fn sample_policy(run: &Path, seed: u64) -> anyhow::Result<(f64, f64)> {
    let (ckpt, _) = foil_core::checkpoint::latest(run)?
        .with_context(|| format!("{} has no checkpoint", run.display()))?;
    let recipe = Recipe::load(&run.join("recipe.yaml"), &[])?;
    let device = parse_device(&recipe.device)?;
    let (policy, tok) = foil::load::policy_from_checkpoint(run, &ckpt, &device)?;
    let task = recipe.task.build(recipe.seed)?;
    let sampler: Box<dyn Sampler> = serde_json::from_value(
        json!({"type": "local", "n": 8, "temperature": 1.0, "max_tokens": 32}),
    )?;
    let model = policy.inference();
    let (mut valid, mut n, mut ent, mut toks) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for (i, chunk) in task.test.chunks(64).enumerate() {
        let groups = sampler.sample(
            model.as_ref(),
            tok.as_ref(),
            chunk,
            rng::derive(seed, &[0x67_7470, i as u64]),
        )?;
        for c in groups.iter().flat_map(|g| &g.completions) {
            valid += f64::from(u8::from(format_valid(&c.text, c.finish)));
            n += 1.0;
            ent += c.entropies.iter().map(|&e| f64::from(e)).sum::<f64>();
            toks += c.entropies.len() as f64;
        }
    }
    Ok((valid / n.max(1.0), ent / toks.max(1.0)))
}

fn values(runs: &[ArmRun], label: &str, eval: &str, metric: &str) -> anyhow::Result<Vec<f64>> {
    runs.iter()
        .filter(|r| r.label == label)
        .map(|r| r.metric(eval, metric))
        .collect()
}

fn sampled(s: &[Sampled], label: &str, when: &str, f: fn(&Sampled) -> f64) -> Vec<f64> {
    s.iter()
        .filter(|x| x.label == label && x.when == when)
        .map(f)
        .collect()
}

const GRPO: &str = "GRPO (no KL)";
const GTPO: &str = "GTPO";

/// Checks 5–9 and the reported entropy checks.
pub fn training_checks(runs: &[ArmRun], s: &[Sampled]) -> anyhow::Result<Vec<Check>> {
    let p = |l, e| values(runs, l, e, "pass@1");
    let fv = |s: &Sampled| s.format_valid;
    let en = |s: &Sampled| s.entropy;
    Ok(vec![
        lowers(
            &format!(
                "5. GRPO without KL degrades at lr {}: pass@1 after − before",
                high_lr()
            ),
            &diff(&p(GRPO, "after")?, &p(GRPO, "before")?),
        ),
        keeps_or_raises(
            "6. GTPO keeps pass@1: after − before",
            &diff(&p(GTPO, "after")?, &p(GTPO, "before")?),
            TOL,
        ),
        keeps_or_raises(
            "7. GTPO keeps the format: validity after − before",
            &diff(
                &sampled(s, GTPO, "after", fv),
                &sampled(s, GTPO, "before", fv),
            ),
            TOL,
        ),
        raises(
            "8. GTPO beats GRPO without KL on pass@1 after (GTPO − GRPO)",
            &diff(&p(GTPO, "after")?, &p(GRPO, "after")?),
        ),
        at_least(
            "9. GTPO's format validity after is at least GRPO's (GTPO − GRPO)",
            &diff(
                &sampled(s, GTPO, "after", fv),
                &sampled(s, GRPO, "after", fv),
            ),
            TOL,
        ),
        raises(
            "GRPO without KL: mean token entropy after − before",
            &diff(
                &sampled(s, GRPO, "after", en),
                &sampled(s, GRPO, "before", en),
            ),
        )
        .reported(),
        lowers(
            "GTPO − GRPO mean token entropy after",
            &diff(
                &sampled(s, GTPO, "after", en),
                &sampled(s, GRPO, "after", en),
            ),
        )
        .reported(),
    ])
}

fn training_tables(runs: &[ArmRun], s: &[Sampled], seeds: &[u64]) -> anyhow::Result<String> {
    let mut rows = Vec::new();
    for (name, label, when) in [
        ("before (SFT)", GRPO, "before"),
        ("GRPO (no KL) after", GRPO, "after"),
        ("GTPO after", GTPO, "after"),
    ] {
        rows.push(vec![
            name.to_string(),
            Summary::of(&values(runs, label, when, "pass@1")?).mean_std(),
            Summary::of(&values(runs, label, when, "pass@8")?).mean_std(),
            Summary::of(&sampled(s, label, when, |x| x.format_valid)).mean_std(),
            Summary::of(&sampled(s, label, when, |x| x.entropy)).mean_std(),
            Summary::of(&values(runs, label, when, "mean_length")?).mean_std(),
        ]);
    }
    let mut out = format!(
        "## Part B: GRPO without KL vs GTPO at lr {}\n\nOverrides on both recipes: `{}`, \
         plus `seed=S`. Mean ± std over seeds {}.\n\n{}\n\n",
        high_lr(),
        overrides().join("`, `"),
        seeds
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        md_table(
            &[
                "",
                "pass@1",
                "pass@8",
                "format validity",
                "mean token entropy (nats)",
                "mean length (tokens)",
            ],
            &rows
        )
    );
    let mut rows = Vec::new();
    for (i, seed) in seeds.iter().enumerate() {
        for label in [GRPO, GTPO] {
            let b = values(runs, label, "before", "pass@1")?[i];
            let a = values(runs, label, "after", "pass@1")?[i];
            let fb = sampled(s, label, "before", |x| x.format_valid)[i];
            let fa = sampled(s, label, "after", |x| x.format_valid)[i];
            let eb = sampled(s, label, "before", |x| x.entropy)[i];
            let ea = sampled(s, label, "after", |x| x.entropy)[i];
            rows.push(vec![
                label.to_string(),
                seed.to_string(),
                format!("{b:.4} → {a:.4} ({:+.4})", a - b),
                format!("{fb:.4} → {fa:.4} ({:+.4})", fa - fb),
                format!("{eb:.4} → {ea:.4}"),
            ]);
        }
    }
    out.push_str(&format!(
        "### Per seed (before → after)\n\n{}\n",
        md_table(
            &[
                "method",
                "seed",
                "pass@1",
                "format validity",
                "mean token entropy"
            ],
            &rows
        )
    ));
    Ok(out)
}

fn draw(
    path: &Path,
    probes: &[Probe],
    runs: &[ArmRun],
    s: &[Sampled],
    quick: bool,
) -> anyhow::Result<()> {
    let mut panels = Vec::new();
    if !runs.is_empty() {
        let bar = |name: &str, label: &str, when: &str| -> anyhow::Result<BarSeries> {
            let p = Summary::of(&values(runs, label, when, "pass@1")?);
            let f = Summary::of(&sampled(s, label, when, |x| x.format_valid));
            let e = Summary::of(&sampled(s, label, when, |x| x.entropy));
            Ok(BarSeries {
                label: name.into(),
                values: vec![p.mean, f.mean, e.mean],
                err: Some(vec![p.std, f.std, e.std]),
            })
        };
        panels.push(Panel::Bars {
            title: format!("after RL at lr {}", high_lr()),
            y_label: "value".into(),
            categories: vec![
                "pass@1".into(),
                "format validity".into(),
                "mean entropy (nats)".into(),
            ],
            series: vec![
                bar("before (SFT)", GRPO, "before")?,
                bar("GRPO (no KL)", GRPO, "after")?,
                bar("GTPO", GTPO, "after")?,
            ],
        });
    }
    let mean_of = |f: fn(&Probe) -> f64| Summary::of(&probes.iter().map(f).collect::<Vec<_>>());
    let (g, r) = (
        mean_of(|p| p.gtpo_neg_prefix),
        mean_of(|p| p.grpo_neg_prefix),
    );
    panels.push(Panel::Bars {
        title: "gradient on a negative's shared prefix".into(),
        y_label: "max abs ∂L/∂logp".into(),
        categories: vec!["GRPO".into(), "GTPO".into()],
        series: vec![BarSeries {
            label: "mean ± std over seeds".into(),
            values: vec![r.mean, g.mean],
            err: Some(vec![r.std, g.std]),
        }],
    });
    let width = 500 * panels.len() as u32 + 100;
    figure(
        path,
        &format!(
            "gtpo_stability{}: GTPO vs GRPO without KL",
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
        probes.push(probe(opts, seed).with_context(|| format!("{NAME}, part A, seed {seed}"))?);
    }
    if opts.progress {
        eprintln!("  part A done ({} seeds)", seeds.len());
    }
    let mut checks = probe_checks(&probes);
    let mut sections = vec![probe_table(&probes)];
    let (mut runs, mut samples) = (Vec::new(), Vec::new());
    if !opts.quick {
        let arms = [
            Arm::new(GRPO, opts.recipe("quickstart.yaml")),
            Arm::new(GTPO, opts.recipe("gtpo.yaml")),
        ];
        for &seed in &seeds {
            let seed_dir = dir.join("runs").join(format!("seed{seed}"));
            let out = run_arms(&arms, &overrides(), seed, &seed_dir, opts.progress)
                .with_context(|| format!("{NAME}, part B, seed {seed}"))?;
            let (fv, en) = sample_policy(&seed_dir.join("prefix"), seed)?;
            for r in &out {
                let (fa, ea) = sample_policy(&r.dir, seed)?;
                for (when, f, e) in [("before", fv, en), ("after", fa, ea)] {
                    samples.push(Sampled {
                        label: r.label.clone(),
                        seed,
                        when: when.into(),
                        format_valid: f,
                        entropy: e,
                    });
                }
            }
            runs.extend(out);
        }
        checks.extend(training_checks(&runs, &samples)?);
        sections.push(training_tables(&runs, &samples, &seeds)?);
    } else {
        sections.push(
            "`--quick` runs part A only (checks 1–4); the training comparison (part B, checks \
             5–9) needs the full run."
                .into(),
        );
    }
    let plot = dir.join(format!("{NAME}.png"));
    std::fs::create_dir_all(&dir)?;
    draw(&plot, &probes, &runs, &samples, opts.quick)?;
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
            "high_lr": high_lr(),
            "sampled": samples,
            "runs": crate::arms::runs_json(&runs),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use foil_core::checkpoint::EvalRecord;

    #[test]
    fn format_validity() {
        assert!(format_valid("17+5=2|2-3=9|A:9", Finish::Eos));
        assert!(format_valid("A:4", Finish::Eos)); // the shortcut is well formed
        assert!(format_valid("3*4=2|A:7", Finish::Eos)); // wrong, but well formed
        assert!(!format_valid("17+5=2|2-3=9|A:9", Finish::Length)); // never ended
        assert!(!format_valid("17+5=2|2-3=9", Finish::Eos)); // no answer
        assert!(!format_valid("17+5=2|A:", Finish::Eos)); // empty answer
        assert!(!format_valid("17+=2|A:2", Finish::Eos)); // broken step
        assert!(!format_valid("17+5=2||A:2", Finish::Eos)); // empty step
        assert!(!format_valid("A:9|A:9", Finish::Eos)); // an answer as a step
        assert!(!format_valid("", Finish::Eos));
    }

    fn probe_of(seed: u64, neg: f64, grpo: f64, dev: f64, filt: f64) -> Probe {
        Probe {
            seed,
            groups: 8,
            shared_prefix_tokens: 60,
            gtpo_neg_prefix: neg,
            grpo_neg_prefix: grpo,
            pos_ratio_dev: dev,
            gtpo_filtered: filt,
            gtpo_other_mean: 1e-3,
        }
    }

    #[test]
    fn probe_rules() {
        let good = vec![
            probe_of(1, 0.0, 1e-3, 0.0, 0.0),
            probe_of(2, 0.0, 2e-3, 1e-7, 0.0),
        ];
        assert!(probe_checks(&good).iter().all(|c| c.holds));
        let mut bad = good.clone();
        bad[1].gtpo_neg_prefix = 1e-9; // tiny is not zero
        assert!(!probe_checks(&bad)[0].holds);
        let mut bad = good.clone();
        bad[0].pos_ratio_dev = 1e-3; // ×2.001 is not doubled
        assert!(!probe_checks(&bad)[2].holds);
        let mut bad = good;
        bad[0].gtpo_filtered = 1e-6;
        assert!(!probe_checks(&bad)[3].holds);
    }

    fn arm(label: &str, seed: u64, before: f64, after: f64) -> ArmRun {
        let rec = |l: &str, v: f64| EvalRecord {
            label: l.into(),
            metrics: vec![("pass@1".into(), v)],
        };
        ArmRun {
            label: label.into(),
            seed,
            dir: "x".into(),
            evals: vec![rec("before", before), rec("after", after)],
        }
    }

    fn s(label: &str, seed: u64, when: &str, f: f64, e: f64) -> Sampled {
        Sampled {
            label: label.into(),
            seed,
            when: when.into(),
            format_valid: f,
            entropy: e,
        }
    }

    #[test]
    fn training_rules() {
        // GRPO falls 0.30 → 0.10 / 0.28 → 0.12; GTPO rises; formats: GTPO keeps 0.99.
        let runs = vec![
            arm(GRPO, 1, 0.30, 0.10),
            arm(GTPO, 1, 0.30, 0.40),
            arm(GRPO, 2, 0.28, 0.12),
            arm(GTPO, 2, 0.28, 0.35),
        ];
        let mut sm = Vec::new();
        for seed in [1, 2] {
            sm.push(s(GRPO, seed, "before", 0.99, 0.3));
            sm.push(s(GRPO, seed, "after", 0.60, 0.9));
            sm.push(s(GTPO, seed, "before", 0.99, 0.3));
            sm.push(s(GTPO, seed, "after", 0.99, 0.2));
        }
        let c = training_checks(&runs, &sm).unwrap();
        assert!(c.iter().all(|c| c.holds), "{c:?}");
        // GRPO does not degrade: check 5 fails (and 8, GTPO is no better)
        let runs = vec![
            arm(GRPO, 1, 0.30, 0.45),
            arm(GTPO, 1, 0.30, 0.40),
            arm(GRPO, 2, 0.28, 0.40),
            arm(GTPO, 2, 0.28, 0.35),
        ];
        let c = training_checks(&runs, &sm).unwrap();
        assert!(!c[0].holds && c[1].holds && !c[3].holds);
        // GTPO loses the format: check 7 fails
        let mut sm2 = sm.clone();
        for x in sm2
            .iter_mut()
            .filter(|x| x.label == GTPO && x.when == "after")
        {
            x.format_valid = 0.9;
        }
        assert!(!training_checks(&runs, &sm2).unwrap()[2].holds);
    }
}
