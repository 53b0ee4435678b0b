//! `preference`: preference fine-tuning on pairs, offline or on-policy, with DPO / IPO
//! (the `dpo` objective) or the likelihood-only baseline Pref-FT (the `nll` objective on
//! the chosen responses), as compared by Tajwar et al. 2024 ("Preference Fine-Tuning of
//! LLMs Should Leverage Suboptimal, On-Policy Data", arXiv 2404.14367, `methods.md` §15).
//!
//! ```text
//! π_ref ← the policy at the stage start (stage_start_snapshot)
//! mode offline:
//!     P ← pairs from `data` (JSONL, see pairs_jsonl.rs), or, without `data`, from ONE fixed
//!         set: `offline_prompts` training problems × sampler.n samples of π_ref, judged by
//!         `verifier`, paired by `pairing`
//!     step s: the `batch` pairs at positions s·batch … of the stream perm₀(P) ‖ perm₁(P) ‖ …
//!             (perm_e a seeded shuffle per epoch e)
//! mode on_policy:
//!     step s: prompts_per_step problems, sampler.n fresh samples each from π_θ, judged by
//!             `verifier`, paired by `pairing` (best ≻ worst, all ranked, correct × incorrect;
//!             cap max_pairs_per_prompt; pairs with reward gap < min_score_gap dropped)
//! train_on pairs:  rows 2k = chosen, 2k+1 = rejected → objective (dpo: sigmoid or ipo;
//!                  sdpo: score-aware DPO of UV-CoT, reading the scores below)
//!                  every token's advantage = the row's verifier reward (its score; 0 for
//!                  JSONL pairs, which carry none); dpo ignores advantages
//! train_on chosen: rows = the chosen responses only → objective (nll) = Pref-FT; on-policy
//!                  this is the best sample of each prompt (best-of-N likelihood, RWR-style)
//! θ ← θ − lr ∇ objective, `inner_steps` times on the same rows (sample reuse)
//! ```
//!
//! Logged each step (before the update, on the step's pairs): the objective's metrics
//! (`dpo/margin`, …), `chosen_logp` / `rejected_logp` (mean sequence log-prob under π_θ),
//! `chosen_logp_change` / `rejected_logp_change` (the same minus π_ref's: DPO's known effect
//! is that both may fall), `logp_margin` (their difference) and `pair_accuracy`; on-policy
//! also `mean_reward`, `accuracy` of the samples, and `reward_queries` (cumulative verifier
//! calls, the offline reference set included).
//!
//! Each step's randomness derives from `(seed, stage, step)` and the offline set from
//! `(seed, stage)` with π_ref rebuilt from the stage's first checkpoint, so a resumed run
//! repeats an uninterrupted one. Provenance: the losses are the `dpo`/`nll` objectives'
//! [paper]; the offline-set / on-policy loop with sample reuse follows the paper's
//! `bandit_experiment` [code, per methods.md §15]; the pairing rules for `n > 2` are [recon].

use std::path::PathBuf;

use foil_core::batch::{HostPolicyBatch, PolicyBatch, to_vec};
use foil_core::policy::{InferenceModel, OptimizerConfig};
use foil_core::run::RunContext;
use foil_core::{Objective, Problem, Sampler, Stage, Verifier, register_part, rng};
use rand::seq::SliceRandom;
use rand::seq::index::sample;
use serde::{Deserialize, Serialize};

use crate::pairs_jsonl::{EncodedPair, Pairing, best, load_pairs, scored_pairs};
use crate::train_step::{frozen_logprobs, objective_step};

/// Where pairs come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PreferenceMode {
    /// A fixed set: a JSONL file, or samples of π_ref drawn once.
    #[default]
    Offline,
    /// Fresh samples of the current policy every step.
    OnPolicy,
}

/// Which rows the objective sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainOn {
    /// Chosen and rejected rows (2k, 2k+1): DPO / IPO.
    #[default]
    Pairs,
    /// The chosen responses only (on-policy: the best sample per prompt): Pref-FT.
    Chosen,
}

/// Recipe part: the `preference` stage (see the module docs).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Preference {
    /// Optimizer steps (on-policy: sampling rounds, each with `inner_steps` updates).
    pub steps: usize,
    /// `offline` or `on_policy`.
    pub mode: PreferenceMode,
    /// Offline JSONL file of pairs / rankings (relative to the working directory).
    pub data: Option<PathBuf>,
    /// Skip (and count) bad JSONL lines instead of failing.
    pub skip_bad_lines: bool,
    /// Pairs kept per ranking line (0 = all `m(m−1)/2`).
    pub max_pairs_per_ranking: usize,
    /// Offline: pairs per step.
    pub batch: usize,
    /// Offline without `data`: problems of the fixed set sampled once from π_ref.
    pub offline_prompts: usize,
    /// On-policy: problems per step.
    pub prompts_per_step: usize,
    /// Samples per problem (on-policy, and the offline set without `data`).
    pub sampler: Box<dyn Sampler>,
    /// Judges samples (reward and correctness).
    pub verifier: Box<dyn Verifier>,
    /// How samples of one prompt become pairs.
    pub pairing: Pairing,
    /// Pairs per prompt at most (0 = all).
    pub max_pairs_per_prompt: usize,
    /// Sampled pairs whose reward gap `r(chosen) − r(rejected)` is below this are dropped
    /// before the cap (UV-CoT keeps gaps ≥ 1 on its evaluator's scale); 0 keeps all.
    pub min_score_gap: f32,
    /// `pairs` (DPO / IPO) or `chosen` (Pref-FT / best-of-N).
    pub train_on: TrainOn,
    /// Updates on each step's rows (sample reuse, on-policy).
    pub inner_steps: usize,
    pub objective: Box<dyn Objective>,
    pub optimizer: OptimizerConfig,
    /// Log every this many steps (and the last).
    pub log_every: usize,
}

impl Default for Preference {
    fn default() -> Self {
        Self {
            steps: 100,
            mode: PreferenceMode::Offline,
            data: None,
            skip_bad_lines: false,
            max_pairs_per_ranking: 0,
            batch: 16,
            offline_prompts: 64,
            prompts_per_step: 8,
            sampler: Box::new(foil_samplers::Local::default()),
            verifier: Box::new(foil_verifiers::Numeric::default()),
            pairing: Pairing::BestWorst,
            max_pairs_per_prompt: 0,
            min_score_gap: 0.0,
            train_on: TrainOn::Pairs,
            inner_steps: 1,
            objective: Box::new(foil_objectives::Dpo::default()),
            optimizer: OptimizerConfig::adamw(1e-4),
            log_every: 1,
        }
    }
}

register_part!(
    Stage,
    "preference",
    Preference,
    "DPO / IPO / Pref-FT on preference pairs: offline (JSONL or a fixed π_ref sample) or on-policy (Tajwar et al. 2024)"
);

/// A (prompt, response) row of token ids.
type Row = (Vec<u32>, Vec<u32>);

/// A pair with the verifier's scores (rewards) of its chosen and rejected responses.
#[derive(Debug, Clone)]
struct ScoredPair {
    pair: EncodedPair,
    scores: [f32; 2],
}

/// Sampled, judged and paired problems.
struct Judged {
    pairs: Vec<ScoredPair>,
    /// The best sample of each prompt (best-of-N), as (prompt, response).
    best: Vec<Row>,
    samples: usize,
    correct: usize,
    reward: f64,
}

impl Preference {
    fn judge(
        &self,
        model: &dyn InferenceModel,
        tok: &dyn foil_core::Tokenizer,
        problems: &[Problem],
        seed: u64,
        pair_seed: u64,
    ) -> anyhow::Result<Judged> {
        let groups = self.sampler.sample(model, tok, problems, seed)?;
        let mut r = rng::rng(pair_seed, &[]);
        let mut out = Judged {
            pairs: Vec::new(),
            best: Vec::new(),
            samples: 0,
            correct: 0,
            reward: 0.0,
        };
        for g in &groups {
            let verdicts: Vec<_> = g
                .completions
                .iter()
                .map(|c| self.verifier.verify(&g.problem, &c.text))
                .collect();
            let rewards: Vec<f32> = verdicts.iter().map(|v| v.reward).collect();
            let correct: Vec<bool> = verdicts.iter().map(|v| v.correct).collect();
            out.samples += rewards.len();
            out.correct += correct.iter().filter(|&&c| c).count();
            out.reward += rewards.iter().map(|&x| x as f64).sum::<f64>();
            let prompt = tok.encode_prompt(&g.problem.prompt)?;
            // with a gap floor, pair first without the cap, filter, then cap
            let cap = if self.min_score_gap > 0.0 {
                0
            } else {
                self.max_pairs_per_prompt
            };
            let mut ij = scored_pairs(&rewards, &correct, self.pairing, cap, &mut r);
            if self.min_score_gap > 0.0 {
                ij.retain(|&(i, j)| rewards[i] - rewards[j] >= self.min_score_gap);
                if self.max_pairs_per_prompt > 0 && ij.len() > self.max_pairs_per_prompt {
                    ij.shuffle(&mut r);
                    ij.truncate(self.max_pairs_per_prompt);
                }
            }
            for (i, j) in ij {
                let (c, w) = (&g.completions[i].tokens, &g.completions[j].tokens);
                if c.is_empty() || w.is_empty() {
                    continue;
                }
                out.pairs.push(ScoredPair {
                    pair: EncodedPair {
                        prompt: prompt.clone(),
                        chosen: c.clone(),
                        rejected: w.clone(),
                    },
                    scores: [rewards[i], rewards[j]],
                });
            }
            if let Some(b) = best(&rewards)
                && !g.completions[b].tokens.is_empty()
            {
                out.best
                    .push((prompt.clone(), g.completions[b].tokens.clone()));
            }
        }
        Ok(out)
    }
}

/// Sequence log-prob sums of each row of a batch under `model`.
fn row_sums(model: &dyn InferenceModel, host: &HostPolicyBatch, batch: &PolicyBatch) -> Vec<f64> {
    let lp = to_vec(frozen_logprobs(model, host, batch) * batch.mask.clone());
    let w = batch.width.max(1);
    lp.chunks(w)
        .map(|r| r.iter().map(|&x| x as f64).sum())
        .collect()
}

/// Pair log-prob diagnostics: (name, value) under π_θ and vs π_ref.
fn pair_metrics(
    policy: &dyn InferenceModel,
    reference: &dyn InferenceModel,
    pairs: &[EncodedPair],
    pad: u32,
    device: &foil_core::backend::Device,
) -> Vec<(String, f64)> {
    if pairs.is_empty() {
        return Vec::new();
    }
    let rows: Vec<(&[u32], &[u32], Vec<f32>)> = pairs
        .iter()
        .flat_map(|p| {
            [
                (p.prompt.as_slice(), p.chosen.as_slice()),
                (p.prompt.as_slice(), p.rejected.as_slice()),
            ]
        })
        .map(|(a, b)| (a, b, vec![0.0; b.len()]))
        .collect();
    let host = HostPolicyBatch::new(&rows, pad);
    let batch = host.to_device(device, 0);
    let now = row_sums(policy, &host, &batch);
    let re = row_sums(reference, &host, &batch);
    let n = pairs.len() as f64;
    let (mut c, mut r, mut dc, mut dr, mut acc) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for k in 0..pairs.len() {
        let (hc, hr) = (now[2 * k] - re[2 * k], now[2 * k + 1] - re[2 * k + 1]);
        c += now[2 * k];
        r += now[2 * k + 1];
        dc += hc;
        dr += hr;
        if hc > hr {
            acc += 1.0;
        }
    }
    vec![
        ("chosen_logp".into(), c / n),
        ("rejected_logp".into(), r / n),
        ("chosen_logp_change".into(), dc / n),
        ("rejected_logp_change".into(), dr / n),
        ("logp_margin".into(), (c - r) / n),
        ("pair_accuracy".into(), acc / n),
    ]
}

#[typetag::serde(name = "preference")]
impl Stage for Preference {
    fn steps(&self) -> usize {
        self.steps
    }

    fn run(&self, ctx: &mut RunContext, start_step: usize) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.batch > 0 && self.inner_steps > 0 && self.prompts_per_step > 0,
            "preference: batch, prompts_per_step and inner_steps must be at least 1"
        );
        anyhow::ensure!(
            self.min_score_gap >= 0.0 && self.min_score_gap.is_finite(),
            "preference: min_score_gap must be ≥ 0, got {}",
            self.min_score_gap
        );
        anyhow::ensure!(
            !ctx.task.train.is_empty(),
            "preference: the task has no training problems"
        );
        let sampling = self.mode == PreferenceMode::OnPolicy || self.data.is_none();
        if sampling {
            self.verifier.prepare()?;
        }
        if self.mode == PreferenceMode::OnPolicy && self.data.is_some() {
            anyhow::bail!("preference: `data` is for mode offline; on_policy samples its pairs");
        }
        ctx.prepare_optimizer(&self.optimizer, start_step)?;
        let reference = ctx.stage_start_snapshot(start_step)?;
        let tok = ctx.task.tokenizer.clone();
        let pad = tok.pad_id();
        let device = ctx.policy.device();
        let stage = ctx.stage as u64;

        // the offline set
        let mut queries = 0usize;
        let mut offline: Vec<ScoredPair> = Vec::new();
        let mut head0: Vec<(String, f64)> = Vec::new();
        if self.mode == PreferenceMode::Offline {
            if let Some(path) = &self.data {
                let l = load_pairs(
                    path,
                    tok.as_ref(),
                    self.max_pairs_per_ranking,
                    self.skip_bad_lines,
                )?;
                head0.push(("data_lines".into(), l.lines as f64));
                head0.push(("data_skipped".into(), l.skipped as f64));
                // JSONL pairs carry no scores
                offline = l
                    .pairs
                    .into_iter()
                    .map(|pair| ScoredPair {
                        pair,
                        scores: [0.0, 0.0],
                    })
                    .collect();
            } else {
                let train = &ctx.task.train;
                let mut r = rng::rng(ctx.seed, &[stage, 0x0FF1]);
                let take = self.offline_prompts.min(train.len()).max(1);
                let problems: Vec<Problem> = sample(&mut r, train.len(), take)
                    .into_iter()
                    .map(|i| train[i].clone())
                    .collect();
                let j = self.judge(
                    reference.as_ref(),
                    tok.as_ref(),
                    &problems,
                    rng::derive(ctx.seed, &[stage, 0x0FF1, 1]),
                    rng::derive(ctx.seed, &[stage, 0x0FF1, 2]),
                )?;
                queries = j.samples;
                head0.push((
                    "offline_mean_reward".into(),
                    j.reward / j.samples.max(1) as f64,
                ));
                head0.push(("reward_queries".into(), queries as f64));
                // Pref-FT (train_on: chosen) trains on the chosen responses of these pairs
                offline = j.pairs;
            }
            anyhow::ensure!(
                !offline.is_empty(),
                "preference: the offline set has no pairs (all samples scored alike?)"
            );
            head0.push(("offline_pairs".into(), offline.len() as f64));
        }

        let bar = ctx.bar(self.steps, "preference");
        bar.set_position(start_step as u64);
        let mut epoch_cache: Option<(usize, Vec<usize>)> = None;
        for step in start_step..self.steps {
            let mut head = head0.clone();
            let (scored, chosen_rows): (Vec<ScoredPair>, Vec<Row>) = match self.mode {
                PreferenceMode::Offline => {
                    let m = offline.len();
                    let mut picked = Vec::with_capacity(self.batch);
                    for p in step * self.batch..(step + 1) * self.batch {
                        let e = p / m;
                        if epoch_cache.as_ref().is_none_or(|(ce, _)| *ce != e) {
                            let mut perm: Vec<usize> = (0..m).collect();
                            perm.shuffle(&mut rng::rng(ctx.seed, &[stage, 0xE90C, e as u64]));
                            epoch_cache = Some((e, perm));
                        }
                        let perm = &epoch_cache.as_ref().expect("just set").1;
                        picked.push(offline[perm[p % m]].clone());
                    }
                    head.push(("epoch".into(), (step * self.batch) as f64 / m as f64));
                    let chosen = picked
                        .iter()
                        .map(|p| (p.pair.prompt.clone(), p.pair.chosen.clone()))
                        .collect();
                    (picked, chosen)
                }
                PreferenceMode::OnPolicy => {
                    let behaviour = ctx.policy.inference();
                    let train = &ctx.task.train;
                    let mut r = rng::rng(ctx.seed, &[stage, step as u64]);
                    let take = self.prompts_per_step.min(train.len());
                    let problems: Vec<Problem> = sample(&mut r, train.len(), take)
                        .into_iter()
                        .map(|i| train[i].clone())
                        .collect();
                    let j = self.judge(
                        behaviour.as_ref(),
                        tok.as_ref(),
                        &problems,
                        rng::derive(ctx.seed, &[stage, step as u64, 1]),
                        rng::derive(ctx.seed, &[stage, step as u64, 2]),
                    )?;
                    head.push(("mean_reward".into(), j.reward / j.samples.max(1) as f64));
                    head.push((
                        "accuracy".into(),
                        j.correct as f64 / j.samples.max(1) as f64,
                    ));
                    head.push((
                        "reward_queries".into(),
                        (queries + (step + 1) * j.samples) as f64,
                    ));
                    (j.pairs, j.best)
                }
            };
            let (pairs, scores): (Vec<EncodedPair>, Vec<[f32; 2]>) =
                scored.into_iter().map(|p| (p.pair, p.scores)).unzip();
            head.push(("pairs".into(), pairs.len() as f64));
            let behaviour = ctx.policy.inference();
            head.extend(pair_metrics(
                behaviour.as_ref(),
                reference.as_ref(),
                &pairs,
                pad,
                &device,
            ));
            drop(behaviour);

            let rows: Vec<(&[u32], &[u32], Vec<f32>)> = match self.train_on {
                // each token's advantage = the row's score (read by sdpo, ignored by dpo)
                TrainOn::Pairs => pairs
                    .iter()
                    .zip(&scores)
                    .flat_map(|(p, s)| {
                        [
                            (p.prompt.as_slice(), p.chosen.as_slice(), s[0]),
                            (p.prompt.as_slice(), p.rejected.as_slice(), s[1]),
                        ]
                    })
                    .map(|(a, b, s)| (a, b, vec![s; b.len()]))
                    .collect(),
                TrainOn::Chosen => chosen_rows
                    .iter()
                    .map(|(a, b)| (a.as_slice(), b.as_slice(), vec![1.0; b.len()]))
                    .collect(),
            };
            head.push(("trained_rows".into(), rows.len() as f64));
            if !rows.is_empty() {
                let host = HostPolicyBatch::new(&rows, pad);
                let mut batch = host.to_device(&device, self.sampler.max_tokens());
                if self.objective.needs_reference() {
                    batch.ref_logprobs = Some(frozen_logprobs(reference.as_ref(), &host, &batch));
                }
                if self.objective.needs_old_logprobs() {
                    let b = ctx.policy.inference();
                    batch.old_logprobs = Some(frozen_logprobs(b.as_ref(), &host, &batch));
                }
                let lr = self.optimizer.lr_at(step);
                let mut sums: Vec<(String, f64)> = Vec::new();
                for _ in 0..self.inner_steps {
                    for (k, v) in objective_step(ctx, self.objective.as_ref(), &batch, step, lr)? {
                        match sums.iter_mut().find(|(n, _)| *n == k) {
                            Some(e) => e.1 += v as f64,
                            None => sums.push((k, v as f64)),
                        }
                    }
                }
                let inner = self.inner_steps as f64;
                head.extend(sums.into_iter().map(|(k, v)| (k, v / inner)));
                head.push(("lr".into(), lr));
            }
            bar.inc(1);
            if step % self.log_every.max(1) == 0 || step + 1 == self.steps {
                ctx.log(step, &head)?;
            }
            if ctx.end_step(step)? {
                break;
            }
        }
        bar.finish();
        Ok(())
    }
}
