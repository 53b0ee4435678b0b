//! `per_step`: per-step credit from Monte Carlo rollouts (Setlur et al. 2024, arXiv
//! 2406.14532; `methods.md` §1), as first-pit DPO pairs or as advantage-weighted RL.
//!
//! ```text
//! for step in 0..steps:
//!     problems ← prompts_per_step of the first `problems` training problems (0 = all), seeded
//!     groups   ← sampler(π_θ, problems), verified                       n samples each
//!     values   ← MC step values of the incorrect samples (mode awr: of every sample),
//!                M = rollout_sampler.n continuations per step prefix, Best-of-K (per_step_values.rs)
//!     mode dpo: pairs ← first-pit pairs (x, y⁺ ≻ ŷ_{1:c}) (per_step_pairs.rs)
//!               θ ← θ − lr ∇ dpo(pairs; π_ref = the policy at the stage start)   rows 2k / 2k+1
//!     mode awr: every sample's token t of step i gets credit A_i = Q_i − Q_{i−1}
//!               (awr_weight: exp → exp(A_i / awr_beta)); θ ← θ − lr ∇ objective(batch)
//! ```
//!
//! The paper trains offline on pairs from `π_sft` with `π_ref = π_sft`; here rollouts come
//! from the current policy each step and `π_ref` is the policy at the stage start (π_sft when
//! the stage follows `sft`) [recon]. The AWR form is the paper's equivalence (Thm 6.1:
//! per-step DPO ≈ advantage-weighted RL with weights `exp(A/β)`) turned into token credit
//! [recon]: by default (`awr_weight: advantage`) the step advantage itself is each token's
//! advantage in the recipe's policy-gradient objective (`ppo_clip` in
//! `recipes/per_step_awr.yaml`); `exp` uses `exp(A/β)` as a positive weight (advantage-
//! weighted regression). Metrics: sample accuracy, pairs, mean `Q_0` (the prompt's value),
//! mean Q over the valued prefixes, the first pits (mean `c`, mean `c / L`, fraction at
//! `c = L`), rollouts sampled.

use foil_core::batch::HostPolicyBatch;
use foil_core::policy::OptimizerConfig;
use foil_core::run::RunContext;
use foil_core::{Objective, Problem, Sampler, Stage, Verifier, register_part, rng};
use rand::seq::SliceRandom;
use rand::seq::index::sample;
use serde::{Deserialize, Serialize};

use crate::per_step_pairs::{Scored, first_pit_pairs};
use crate::per_step_values::{Response, StepValues, mc_step_values, token_steps};
use crate::train_step::{frozen_logprobs, objective_step};

/// How the step values are used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PerStepMode {
    /// First-pit pairs and a pairwise objective (`dpo`).
    #[default]
    Dpo,
    /// Token credit = the step advantage, in a policy-gradient objective.
    Awr,
}

/// How a step advantage becomes a token's credit in `awr` mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AwrWeight {
    /// `A_i`.
    #[default]
    Advantage,
    /// `exp(A_i / awr_beta)`.
    Exp,
}

/// Recipe part: the `per_step` stage (see the module docs).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PerStep {
    /// Update steps (each with fresh samples and rollouts).
    pub steps: usize,
    /// Problems per step.
    pub prompts_per_step: usize,
    /// Draw problems from the first this many training problems (0 = all): the synthetic
    /// problem budget `N`.
    pub problems: usize,
    /// Samples per problem (`n`).
    pub sampler: Box<dyn Sampler>,
    /// Continuations per step prefix (`M` = its `n`).
    pub rollout_sampler: Box<dyn Sampler>,
    pub verifier: Box<dyn Verifier>,
    /// Step separator in response text.
    pub separator: String,
    /// `K` of the Best-of-K value (1 = plain MC).
    pub bok_k: u32,
    /// `dpo` or `awr`.
    pub mode: PerStepMode,
    /// Pairs per question at most (`dpo` mode).
    pub negatives_per_question: usize,
    /// Use the reference solution as `y⁺` when no sample is correct (`dpo` mode).
    pub use_reference: bool,
    /// `advantage` or `exp` (`awr` mode).
    pub awr_weight: AwrWeight,
    /// `β` of `exp(A/β)` (`awr` mode, `awr_weight: exp`).
    pub awr_beta: f32,
    /// The loss: `dpo` for `mode: dpo`, a policy-gradient objective for `mode: awr`.
    pub objective: Box<dyn Objective>,
    pub optimizer: OptimizerConfig,
    /// Passes over each step's rows.
    pub epochs: usize,
    /// Slices per pass (one optimizer step each; pairs stay together).
    pub mini_batches: usize,
    /// Log every this many steps (and the last).
    pub log_every: usize,
}

impl Default for PerStep {
    fn default() -> Self {
        Self {
            steps: 50,
            prompts_per_step: 8,
            problems: 0,
            sampler: Box::new(foil_samplers::Local::default()),
            rollout_sampler: Box::new(foil_samplers::Local {
                n: 4,
                ..Default::default()
            }),
            verifier: Box::new(foil_verifiers::Numeric::default()),
            separator: "|".into(),
            bok_k: 5,
            mode: PerStepMode::Dpo,
            negatives_per_question: 8,
            use_reference: false,
            awr_weight: AwrWeight::Advantage,
            awr_beta: 1.0,
            objective: Box::new(foil_objectives::Dpo::default()),
            optimizer: OptimizerConfig::adamw(1e-4),
            epochs: 1,
            mini_batches: 1,
            log_every: 1,
        }
    }
}

register_part!(
    Stage,
    "per_step",
    PerStep,
    "per-step credit from MC rollouts (Setlur et al. 2024): first-pit DPO pairs or step-advantage RL"
);

/// The first `problems` training problems (all when 0 or more than there are).
pub(crate) fn budget(train: &[Problem], problems: usize) -> &[Problem] {
    if problems == 0 {
        train
    } else {
        &train[..problems.min(train.len())]
    }
}

#[typetag::serde(name = "per_step")]
impl Stage for PerStep {
    fn steps(&self) -> usize {
        self.steps
    }

    fn run(&self, ctx: &mut RunContext, start_step: usize) -> anyhow::Result<()> {
        self.verifier.prepare()?;
        anyhow::ensure!(
            self.prompts_per_step > 0 && self.epochs > 0 && self.mini_batches > 0,
            "per_step: prompts_per_step, epochs and mini_batches must be at least 1"
        );
        anyhow::ensure!(self.bok_k >= 1, "per_step: bok_k must be at least 1");
        anyhow::ensure!(
            self.awr_beta > 0.0,
            "per_step: awr_beta must be > 0, got {}",
            self.awr_beta
        );
        anyhow::ensure!(
            !ctx.task.train.is_empty(),
            "per_step: the task has no training problems"
        );
        ctx.prepare_optimizer(&self.optimizer, start_step)?;
        let reference = if self.objective.needs_reference() {
            Some(ctx.stage_start_snapshot(start_step)?)
        } else {
            None
        };
        let tok = ctx.task.tokenizer.clone();
        let train_device = ctx.policy.device();
        let pool = budget(&ctx.task.train, self.problems).to_vec();
        let bar = ctx.bar(self.steps, "per_step");
        bar.set_position(start_step as u64);
        for step in start_step..self.steps {
            let behaviour = ctx.policy.inference();
            let mut r = rng::rng(ctx.seed, &[ctx.stage as u64, step as u64]);
            let take = self.prompts_per_step.min(pool.len());
            let problems: Vec<Problem> = sample(&mut r, pool.len(), take)
                .into_iter()
                .map(|i| pool[i].clone())
                .collect();
            let seed = rng::derive(ctx.seed, &[ctx.stage as u64, step as u64, 1]);
            let groups = self
                .sampler
                .sample(behaviour.as_ref(), tok.as_ref(), &problems, seed)?;
            let verdicts: Vec<Vec<bool>> = groups
                .iter()
                .map(|g| {
                    g.completions
                        .iter()
                        .map(|c| self.verifier.verify(&g.problem, &c.text).correct)
                        .collect()
                })
                .collect();
            // which samples get step values
            let all = self.mode == PerStepMode::Awr;
            let mut which = Vec::new();
            let mut responses = Vec::new();
            for (gi, g) in groups.iter().enumerate() {
                let has_correct = verdicts[gi].iter().any(|&v| v);
                for (ci, c) in g.completions.iter().enumerate() {
                    let correct = verdicts[gi][ci];
                    // dpo: only the negatives that can be paired
                    let wanted = all || (!correct && (has_correct || self.use_reference));
                    if wanted {
                        which.push((gi, ci));
                        responses.push(Response {
                            problem: &g.problem,
                            text: &c.text,
                            correct,
                        });
                    }
                }
            }
            let vseed = rng::derive(ctx.seed, &[ctx.stage as u64, step as u64, 0x5EED]);
            let (values, count) = mc_step_values(
                behaviour.as_ref(),
                tok.as_ref(),
                self.rollout_sampler.as_ref(),
                self.verifier.as_ref(),
                &responses,
                &self.separator,
                self.bok_k,
                vseed,
            )?;
            let mut value_of: Vec<Vec<Option<&StepValues>>> = groups
                .iter()
                .map(|g| vec![None; g.completions.len()])
                .collect();
            for (&(gi, ci), v) in which.iter().zip(&values) {
                value_of[gi][ci] = Some(v);
            }
            let prompts: Vec<Vec<u32>> = groups
                .iter()
                .map(|g| tok.encode_prompt(&g.problem.prompt))
                .collect::<anyhow::Result<_>>()?;

            let samples: usize = verdicts.iter().map(Vec::len).sum();
            let correct: usize = verdicts.iter().flatten().filter(|&&v| v).count();
            let mut head = vec![
                (
                    "accuracy".to_string(),
                    correct as f64 / samples.max(1) as f64,
                ),
                ("valued_responses".into(), values.len() as f64),
                ("rollout_prefixes".into(), count.prefixes as f64),
                ("rollouts".into(), count.continuations as f64),
            ];
            if !values.is_empty() {
                let nv = values.len() as f64;
                head.push((
                    "mean_q0".into(),
                    values.iter().map(|v| v.q[0]).sum::<f64>() / nv,
                ));
                let qs: Vec<f64> = values
                    .iter()
                    .flat_map(|v| v.q[..v.len().max(1)].iter().copied())
                    .collect();
                head.push((
                    "mean_q".into(),
                    qs.iter().sum::<f64>() / qs.len().max(1) as f64,
                ));
            }

            // rows: (prompt, response, per-token credit); dpo rows come in pairs
            let mut rows: Vec<(&[u32], Vec<u32>, Vec<f32>)> = Vec::new();
            let mut units: Vec<Vec<usize>> = Vec::new(); // rows that stay together
            match self.mode {
                PerStepMode::Dpo => {
                    let mut pairs = Vec::new();
                    for (gi, g) in groups.iter().enumerate() {
                        let scored: Vec<Scored> = g
                            .completions
                            .iter()
                            .enumerate()
                            .map(|(ci, c)| Scored {
                                completion: c,
                                correct: verdicts[gi][ci],
                                values: value_of[gi][ci],
                            })
                            .collect();
                        pairs.extend(first_pit_pairs(
                            gi,
                            &g.problem,
                            &scored,
                            tok.as_ref(),
                            self.negatives_per_question,
                            self.use_reference,
                        )?);
                    }
                    let np = pairs.len().max(1) as f64;
                    head.push(("pairs".into(), pairs.len() as f64));
                    if !pairs.is_empty() {
                        head.push((
                            "pit_mean".into(),
                            pairs.iter().map(|p| p.pit as f64).sum::<f64>() / np,
                        ));
                        head.push((
                            "pit_fraction".into(),
                            pairs
                                .iter()
                                .map(|p| p.pit as f64 / p.steps.max(1) as f64)
                                .sum::<f64>()
                                / np,
                        ));
                        head.push((
                            "pit_at_end".into(),
                            pairs.iter().filter(|p| p.pit == p.steps).count() as f64 / np,
                        ));
                    }
                    for p in pairs {
                        let prompt = prompts[p.problem].as_slice();
                        let (lc, lr) = (p.chosen.len(), p.rejected.len());
                        units.push(vec![rows.len(), rows.len() + 1]);
                        rows.push((prompt, p.chosen, vec![0.0; lc]));
                        rows.push((prompt, p.rejected, vec![0.0; lr]));
                    }
                }
                PerStepMode::Awr => {
                    let mut adv_sum = 0.0f64;
                    let mut adv_n = 0.0f64;
                    for (&(gi, ci), v) in which.iter().zip(&values) {
                        let c = &groups[gi].completions[ci];
                        if c.tokens.is_empty() || v.is_empty() {
                            continue;
                        }
                        let adv = v.advantages();
                        let credit: Vec<f32> =
                            token_steps(tok.as_ref(), &c.tokens, &self.separator, v.len())
                                .into_iter()
                                .map(|s| {
                                    let a = adv[s];
                                    adv_sum += a.abs();
                                    adv_n += 1.0;
                                    match self.awr_weight {
                                        AwrWeight::Advantage => a as f32,
                                        AwrWeight::Exp => (a / self.awr_beta as f64).exp() as f32,
                                    }
                                })
                                .collect();
                        units.push(vec![rows.len()]);
                        rows.push((prompts[gi].as_slice(), c.tokens.clone(), credit));
                    }
                    head.push(("mean_abs_token_advantage".into(), adv_sum / adv_n.max(1.0)));
                }
            }
            head.push(("trained_rows".into(), rows.len() as f64));

            if !rows.is_empty() {
                units.shuffle(&mut rng::rng(
                    ctx.seed,
                    &[ctx.stage as u64, step as u64, 0xB47C],
                ));
                let per = units.len().div_ceil(self.mini_batches).max(1);
                let old_model = self.objective.needs_old_logprobs().then_some(&behaviour);
                let mut batches = Vec::new();
                for slice in units.chunks(per) {
                    let sub: Vec<(&[u32], &[u32], Vec<f32>)> = slice
                        .iter()
                        .flatten()
                        .map(|&i| (rows[i].0, rows[i].1.as_slice(), rows[i].2.clone()))
                        .collect();
                    let host = HostPolicyBatch::new(&sub, tok.pad_id());
                    let mut batch = host.to_device(&train_device, self.sampler.max_tokens());
                    if let Some(m) = old_model {
                        batch.old_logprobs = Some(frozen_logprobs(m.as_ref(), &host, &batch));
                    }
                    if let Some(m) = &reference {
                        batch.ref_logprobs = Some(frozen_logprobs(m.as_ref(), &host, &batch));
                    }
                    batches.push(batch);
                }
                // done with the snapshot: dropped, it no longer shares the weights' buffers
                // and a CPU optimizer step updates them in place (as in `rl`)
                drop(behaviour);
                let lr = self.optimizer.lr_at(step);
                let mut sums: Vec<(String, f64)> = Vec::new();
                let mut updates = 0.0;
                for _ in 0..self.epochs {
                    for batch in &batches {
                        for (k, v) in objective_step(ctx, self.objective.as_ref(), batch, step, lr)?
                        {
                            match sums.iter_mut().find(|(n, _)| *n == k) {
                                Some(e) => e.1 += v as f64,
                                None => sums.push((k, v as f64)),
                            }
                        }
                        updates += 1.0;
                    }
                }
                head.extend(sums.into_iter().map(|(k, v)| (k, v / updates)));
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
