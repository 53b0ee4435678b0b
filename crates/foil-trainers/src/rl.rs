//! `rl`: the on-policy loop.
//!
//! ```text
//! for step in 0..steps:
//!     problems  ← prompts_per_step training problems (seeded by run seed, stage, step)
//!     groups    ← sampler(π_θ, problems)                  n completions each, no autodiff
//!     scored    ← verifier(groups)                        reward, correct, step rewards
//!     kept      ← filters(scored)     (refilled with fresh prompts while a filter asks)
//!     credit    ← advantage(kept)                         → per-token advantages A_t
//!     old, ref  ← log π_old, log π_ref on the batch       (only if the objective needs them)
//!     for epoch in 0..ppo_epochs, for each of mini_batches slices:
//!         θ ← θ − lr · ∇ objective(batch)
//! ```
//!
//! `π_ref` is the policy as it was when the stage started (frozen; rebuilt from the
//! stage's first checkpoint on resume).
//!
//! **Data parallel** (`data_parallel: {workers: W}`, as in `sft`): rollouts are sampled,
//! verified, filtered and scored on the leader (the run's policy) exactly as with one
//! worker. Each optimizer step's batch is split by rows over the `W` replicas, which
//! back-propagate their rows and all-reduce so that the step is exactly the whole batch's
//! (`data_parallel.rs`, `docs/data-parallel.md`); the π_old / π_ref log-prob passes are
//! split by rows too, each worker running its rows in its own thread, on its own snapshot
//! and reference when it is another device of the leader's backend
//! (`data_parallel::logprobs_on_workers`, `own_snapshot`). With `rollouts: workers` each
//! worker also samples a consecutive share of the step's prompts, side by side, on the
//! same models (`data_parallel::sample_on_workers`); verification, filters and credit stay
//! on the leader.
//!
//! **One update per batch** (`ppo_epochs: 1`, `mini_batches: 1`, the defaults): π_old is
//! exactly the π_θ being differentiated, so `old` is not computed; the objectives then use
//! `π_old = sg[π_θ]` (ratio 1, the same loss and gradient) and one forward pass over the
//! batch is saved. [code]: TRL's GRPOTrainer and verl skip the old-log-prob pass the same
//! way when a batch gets a single update.

use anyhow::Context;
use foil_core::batch::HostPolicyBatch;
use foil_core::policy::{InferenceModel, OptimizerConfig};
use foil_core::run::RunContext;
use foil_core::{
    AdvantageEstimator, Filter, Objective, Problem, Sampler, ScoredGroup, Stage, Verdict, Verifier,
    register_part, rng,
};
use rand::seq::SliceRandom;
use rand::seq::index::sample;
use serde::{Deserialize, Serialize};

use crate::data_parallel::{WorkerModels, Workers, logprobs_on_workers, sample_on_workers};
use crate::train_step::objective_step;
use foil_distributed::{DataParallel, Rollouts};

/// Recipe part: the `rl` stage (see the module docs for the loop).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rl {
    /// Policy-update steps (each with fresh rollouts).
    pub steps: usize,
    /// Problems sampled per step (before filtering).
    pub prompts_per_step: usize,
    pub sampler: Box<dyn Sampler>,
    pub verifier: Box<dyn Verifier>,
    /// Group filters, applied in order.
    pub filters: Vec<Box<dyn Filter>>,
    pub advantage: Box<dyn AdvantageEstimator>,
    pub objective: Box<dyn Objective>,
    pub optimizer: OptimizerConfig,
    /// Passes over each step's rollouts.
    pub ppo_epochs: usize,
    /// Slices per pass (one optimizer step each).
    pub mini_batches: usize,
    /// Log every this many steps (and the last).
    pub log_every: usize,
    /// Samples one extra completion per prompt that is scored but never trained on, as
    /// the baseline of estimators that need one (ReMax: `{type: local, n: 1,
    /// temperature: 0}`, the greedy completion).
    pub baseline_sampler: Option<Box<dyn Sampler>>,
    /// Cooper (`cooper.rs`): a learned reward that judges the rollouts (the policy's
    /// reward) and is updated after every step on pairs the `verifier` picks; the
    /// `verifier` then only gives `accuracy` and the reward model's positives.
    pub reward_model: Option<Box<dyn crate::cooper::UpdatableReward>>,
    /// Data-parallel workers for the policy updates, e.g. `{workers: 2}` (default: none,
    /// one policy). Sampling stays on the leader. See `docs/data-parallel.md`.
    pub data_parallel: Option<DataParallel>,
}

impl Default for Rl {
    fn default() -> Self {
        Self {
            steps: 100,
            prompts_per_step: 16,
            sampler: Box::new(foil_samplers::Local::default()),
            verifier: Box::new(foil_verifiers::Numeric::default()),
            filters: Vec::new(),
            advantage: Box::new(foil_advantages::Grpo::default()),
            objective: Box::new(foil_objectives::PpoClip::default()),
            optimizer: OptimizerConfig::adamw(1e-4),
            ppo_epochs: 1,
            mini_batches: 1,
            log_every: 1,
            baseline_sampler: None,
            reward_model: None,
            data_parallel: None,
        }
    }
}

register_part!(
    Stage,
    "rl",
    Rl,
    "on-policy RL: sample groups, verify, filter, assign credit, optimise the objective"
);

/// What one step's rollouts looked like, for the metrics log.
#[derive(Default)]
struct RolloutStats {
    groups_sampled: usize,
    groups_kept: usize,
    completions: usize,
    reward: f64,
    correct: f64,
    length: f64,
    all_correct_groups: usize,
    all_wrong_groups: usize,
    // --- Cooper (reward_model set): every sampled group with its rule verdicts, and how
    // often the learned verdict agreed with the rule one
    rule_groups: Vec<ScoredGroup>,
    rm_agree: usize,
}

impl Rl {
    /// One verdict per problem from `baseline_sampler` (all `None` without one).
    fn baseline_verdicts(
        &self,
        model: &dyn InferenceModel,
        tok: &dyn foil_core::tokenizer::Tokenizer,
        problems: &[Problem],
        seed: u64,
    ) -> anyhow::Result<Vec<Option<Verdict>>> {
        let Some(sampler) = &self.baseline_sampler else {
            return Ok(vec![None; problems.len()]);
        };
        anyhow::ensure!(
            sampler.n() == 1,
            "rl: baseline_sampler must draw one completion per prompt (n: 1), not {}",
            sampler.n()
        );
        let groups = sampler.sample(model, tok, problems, rng::derive(seed, &[0xba5e]))?;
        Ok(groups
            .iter()
            .map(|g| {
                g.completions
                    .first()
                    .map(|c| self.verifier.verify(&g.problem, &c.text))
            })
            .collect())
    }

    /// Samples, verifies and filters until `prompts_per_step` groups are kept or the
    /// filters' round budget is spent. `models`: the leader's snapshot, then under
    /// `rollouts: workers` the other workers' (which sample shares of the prompts beside
    /// it).
    fn collect(
        &self,
        ctx: &RunContext,
        models: &[&dyn InferenceModel],
        step: usize,
        stats: &mut RolloutStats,
    ) -> anyhow::Result<Vec<ScoredGroup>> {
        let model = models[0];
        let tok = ctx.task.tokenizer.clone();
        let rounds = self
            .filters
            .iter()
            .map(|f| f.max_rounds())
            .max()
            .unwrap_or(1);
        let refill = self.filters.iter().any(|f| f.refill());
        let mut kept = Vec::new();
        for round in 0..rounds {
            let want = self.prompts_per_step - kept.len();
            if want == 0 || (round > 0 && !refill) {
                break;
            }
            let mut r = rng::rng(ctx.seed, &[ctx.stage as u64, step as u64, round as u64]);
            let take = want.min(ctx.task.train.len());
            let problems: Vec<Problem> = sample(&mut r, ctx.task.train.len(), take)
                .into_iter()
                .map(|i| ctx.task.train[i].clone())
                .collect();
            let seed = rng::derive(ctx.seed, &[ctx.stage as u64, step as u64, round as u64, 1]);
            let groups = if models.len() == 1 {
                self.sampler.sample(model, tok.as_ref(), &problems, seed)?
            } else {
                sample_on_workers(self.sampler.as_ref(), models, tok.as_ref(), &problems, seed)?
            };
            let mut baselines = self
                .baseline_verdicts(model, tok.as_ref(), &problems, seed)?
                .into_iter();
            for g in groups {
                let rule: Vec<Verdict> = g
                    .completions
                    .iter()
                    .map(|c| self.verifier.verify(&g.problem, &c.text))
                    .collect();
                for (v, c) in rule.iter().zip(&g.completions) {
                    stats.completions += 1;
                    stats.correct += v.correct as u8 as f64;
                    stats.length += c.tokens.len() as f64;
                }
                // --- Cooper: the learned reward judges; the rule verdicts are kept
                let verdicts = match &self.reward_model {
                    None => rule,
                    Some(rm) => {
                        let texts: Vec<&str> =
                            g.completions.iter().map(|c| c.text.as_str()).collect();
                        let learned = rm.judge(&g.problem, &texts)?;
                        stats.rm_agree += learned
                            .iter()
                            .zip(&rule)
                            .filter(|(a, b)| a.correct == b.correct)
                            .count();
                        stats.rule_groups.push(ScoredGroup {
                            group: g.clone(),
                            verdicts: rule,
                            baseline: None,
                        });
                        learned
                    }
                };
                // --- end Cooper
                let sg = ScoredGroup {
                    group: g,
                    verdicts,
                    baseline: baselines.next().flatten(),
                };
                stats.groups_sampled += 1;
                let nc = sg.num_correct();
                stats.all_correct_groups += (nc == sg.verdicts.len()) as usize;
                stats.all_wrong_groups += (nc == 0) as usize;
                stats.reward += sg.verdicts.iter().map(|v| v.reward as f64).sum::<f64>();
                if self.filters.iter().all(|f| f.keep(&sg)) && kept.len() < self.prompts_per_step {
                    kept.push(sg);
                }
            }
        }
        stats.groups_kept = kept.len();
        Ok(kept)
    }
}

impl Rl {
    /// The `data_parallel` settings against this stage: valid settings, one process (the
    /// leader samples the rollouts, so `node:` is refused), and at least one row per worker
    /// in an update of a full step (`prompts_per_step × n / mini_batches` rows before
    /// filters and excluded completions; an update that ends up with fewer rows than
    /// workers still trains exactly, its spare workers contributing zero gradients).
    fn validate_data_parallel(&self, dp: &DataParallel) -> anyhow::Result<()> {
        dp.validate_settings("rl")?;
        anyhow::ensure!(
            dp.node.is_none(),
            "rl: data_parallel.node (multi-node) is not supported by the rl stage: rollouts \
             are sampled by the leader process only; use local workers"
        );
        let rows = (self.prompts_per_step * self.sampler.n()).div_ceil(self.mini_batches);
        anyhow::ensure!(
            dp.workers <= rows,
            "rl: data_parallel.workers ({}) is more than the rows of one update \
             (prompts_per_step {} × n {} / mini_batches {} = {rows}): every worker needs at \
             least one row",
            dp.workers,
            self.prompts_per_step,
            self.sampler.n(),
            self.mini_batches
        );
        Ok(())
    }
}

#[typetag::serde(name = "rl")]
impl Stage for Rl {
    fn steps(&self) -> usize {
        self.steps
    }

    fn run(&self, ctx: &mut RunContext, start_step: usize) -> anyhow::Result<()> {
        self.verifier.prepare()?;
        anyhow::ensure!(
            self.prompts_per_step > 0,
            "rl: prompts_per_step must be at least 1"
        );
        anyhow::ensure!(
            self.ppo_epochs > 0 && self.mini_batches > 0,
            "rl: ppo_epochs and mini_batches must be at least 1"
        );
        anyhow::ensure!(
            self.reward_model.is_none() || self.baseline_sampler.is_none(),
            "rl: reward_model (Cooper) and baseline_sampler cannot be combined"
        );
        if let Some(dp) = &self.data_parallel {
            self.validate_data_parallel(dp)?;
        }
        ctx.prepare_optimizer(&self.optimizer, start_step)?;
        let mut workers = match &self.data_parallel {
            Some(dp) => Some(Workers::new(ctx, dp, &self.optimizer)?),
            None => None,
        };
        let resumed = if start_step > 0 {
            ctx.resumed_stage_state.take()
        } else {
            None
        };
        // Cooper: the stage state also holds the reward model's checkpoint
        let (objective_state, rm_state) =
            crate::cooper::split_state(self.reward_model.is_some(), resumed);
        if let Some(state) = objective_state {
            self.objective
                .restore(&state)
                .context("restoring the objective's state from the checkpoint")?;
        }
        if let Some(rm) = &self.reward_model {
            rm.prepare(ctx, rm_state.as_ref())
                .context("rl: loading the reward model")?;
        }
        let reference = if self.objective.needs_reference() {
            Some(ctx.stage_start_snapshot(start_step)?)
        } else {
            None
        };
        // data parallel: every replica computes its rows' π_ref log-probs, with its own
        // copy when it is another device of the leader's backend (`own_snapshot`)
        let replica_references = match (&workers, &reference) {
            (Some(w), Some(_)) => w.replica_references(ctx, start_step)?,
            _ => WorkerModels::default(),
        };
        let tok = ctx.task.tokenizer.clone();
        let train_device = ctx.policy.device();
        let bar = ctx.bar(self.steps, "rl");
        bar.set_position(start_step as u64);
        for step in start_step..self.steps {
            let mut stats = RolloutStats::default();
            // π_old: the weights that sample this step's rollouts, also used for their
            // behaviour log-probs
            let behaviour = ctx.policy.inference();
            // the replicas hold the same weights: their snapshots sample beside it under
            // `rollouts: workers`, and compute their rows' π_old log-probs
            let single_update = self.ppo_epochs == 1 && self.mini_batches == 1;
            let needs_old = self.objective.needs_old_logprobs() && !single_update;
            let sample_on_replicas = workers
                .as_ref()
                .is_some_and(|w| w.rollouts() == Rollouts::Workers);
            let replicas = match &workers {
                Some(w) if sample_on_replicas || needs_old => {
                    w.replica_inference(ctx.policy.as_ref())
                }
                _ => WorkerModels::default(),
            };
            let worker_models = replicas.with_leader(behaviour.as_ref());
            let samplers = if sample_on_replicas {
                &worker_models[..]
            } else {
                &worker_models[..1]
            };
            let kept = self.collect(ctx, samplers, step, &mut stats)?;
            let mut metrics: Vec<(String, f64)> = Vec::new();
            let mut trained_rows = 0;
            if !kept.is_empty() {
                let credits = self.advantage.estimate(&kept)?;
                let prompts: Vec<Vec<u32>> = kept
                    .iter()
                    .map(|g| tok.encode_prompt(&g.group.problem.prompt))
                    .collect::<anyhow::Result<_>>()?;
                let mut rows: Vec<(&[u32], &[u32], Vec<f32>)> = Vec::new();
                let mut row_accuracy: Vec<f32> = Vec::new();
                let mut row_group: Vec<usize> = Vec::new();
                for (gi, ((g, cs), p)) in kept.iter().zip(&credits).zip(&prompts).enumerate() {
                    anyhow::ensure!(
                        cs.len() == g.group.completions.len(),
                        "advantage estimator returned {} credits for a group of {}",
                        cs.len(),
                        g.group.completions.len()
                    );
                    let accuracy = g.num_correct() as f32 / g.verdicts.len().max(1) as f32;
                    for (c, credit) in g.group.completions.iter().zip(cs) {
                        if let Some(adv) = credit.per_token(c.tokens.len())
                            && !c.tokens.is_empty()
                        {
                            rows.push((p, &c.tokens, adv));
                            row_accuracy.push(accuracy);
                            row_group.push(gi);
                        }
                    }
                }
                trained_rows = rows.len();
                let mut order: Vec<usize> = (0..rows.len()).collect();
                order.shuffle(&mut rng::rng(
                    ctx.seed,
                    &[ctx.stage as u64, step as u64, 0xB47C],
                ));
                let per = rows.len().div_ceil(self.mini_batches);
                // one update per batch: π_old = sg[π_θ] in the objective (module docs);
                // data parallel: each worker's snapshot and reference take its share of rows
                let ref_models: Vec<&dyn InferenceModel> = match &reference {
                    Some(r) => replica_references.with_leader(r.as_ref()),
                    None => Vec::new(),
                };
                let mut batches: Vec<(HostPolicyBatch, _)> = Vec::new();
                for slice in order.chunks(per.max(1)) {
                    let sub: Vec<_> = slice.iter().map(|&i| rows[i].clone()).collect();
                    let host = HostPolicyBatch::new(&sub, tok.pad_id())
                        .with_group_accuracy(slice.iter().map(|&i| row_accuracy[i]).collect())
                        .with_group_ids(slice.iter().map(|&i| row_group[i]).collect());
                    let mut batch = host.to_device(&train_device, self.sampler.max_tokens());
                    if needs_old {
                        batch.old_logprobs =
                            Some(logprobs_on_workers(&worker_models, &host, &batch)?);
                    }
                    if !ref_models.is_empty() {
                        batch.ref_logprobs = Some(logprobs_on_workers(&ref_models, &host, &batch)?);
                    }
                    batches.push((host, batch));
                }
                // the snapshots have done their work (rollouts, π_old log-probs): dropped before
                // the updates, they no longer share the weights' buffers, which an optimizer
                // step on the CPU then updates in place instead of copying (`foil_models::adamw`)
                drop(worker_models);
                drop(behaviour);
                drop(replicas);
                let lr = self.optimizer.lr_at(step);
                let mut sums: Vec<(String, f64)> = Vec::new();
                let mut updates = 0.0;
                for _ in 0..self.ppo_epochs {
                    for (host, batch) in &batches {
                        let objective = self.objective.as_ref();
                        let m = match workers.as_mut() {
                            Some(w) => w.step(ctx, objective, host, batch, step, lr)?,
                            None => objective_step(ctx, objective, batch, step, lr)?,
                        };
                        for (k, v) in m {
                            match sums.iter_mut().find(|(n, _)| *n == k) {
                                Some(e) => e.1 += v as f64,
                                None => sums.push((k, v as f64)),
                            }
                        }
                        updates += 1.0;
                    }
                }
                // no update when every completion was excluded (e.g. PSR on an all-wrong batch)
                if updates > 0.0 {
                    metrics.extend(sums.into_iter().map(|(k, v)| (k, v / updates)));
                    metrics.push(("lr".into(), lr));
                    // a remote sampler's server gets the updated weights (weight sync)
                    metrics.extend(self.sampler.sync_weights(ctx.policy.as_ref(), step)?);
                }
            }
            // --- Cooper step (2): the reward model learns from this step's samples
            if let Some(rm) = &self.reward_model {
                let agree = stats.rm_agree as f64 / stats.completions.max(1) as f64;
                metrics.push(("rm_acc".into(), agree));
                metrics.extend(rm.update(ctx, step, &stats.rule_groups, self.verifier.as_ref())?);
            }
            let n = stats.completions.max(1) as f64;
            let mut head = vec![
                ("reward".to_string(), stats.reward / n),
                ("accuracy".into(), stats.correct / n),
                ("response_length".into(), stats.length / n),
                ("groups_sampled".into(), stats.groups_sampled as f64),
                ("groups_kept".into(), stats.groups_kept as f64),
                ("trained_completions".into(), trained_rows as f64),
                ("all_correct_groups".into(), stats.all_correct_groups as f64),
                ("all_wrong_groups".into(), stats.all_wrong_groups as f64),
            ];
            head.extend(metrics);
            bar.inc(1);
            bar.set_prefix(format!("reward {:.3}", stats.reward / n));
            if step % self.log_every.max(1) == 0 || step + 1 == self.steps {
                ctx.log(step, &head)?;
            }
            ctx.stage_state = self.objective.state();
            if let Some(rm) = &self.reward_model
                && crate::cooper::checkpoint_due(ctx, step)
            {
                let saved = rm.checkpoint(ctx, step + 1)?;
                ctx.stage_state = Some(crate::cooper::join_state(ctx.stage_state.take(), saved));
            }
            if let Some(rm) = &self.reward_model
                && step + 1 == self.steps
            {
                rm.finish(ctx)?;
            }
            if ctx.end_step(step)? {
                break;
            }
        }
        bar.finish();
        Ok(())
    }
}
