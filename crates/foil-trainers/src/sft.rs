//! `sft`: supervised fine-tuning on the task's demonstrations.
//!
//! Each step draws `batch` training problems (seeded by run seed, stage and step), packs
//! `prompt → solution <eos>` rows, and minimises the objective (default `nll`, i.e.
//! `L = −(1/|y|) Σ_t log π_θ(y_t | x, y_<t)` averaged over the batch's response tokens).
//! With `data_parallel: {workers: W}` each step's batch is split over `W` replicas whose
//! gradients are combined into exactly the whole batch's gradient (`data_parallel.rs`,
//! `docs/data-parallel.md`).

use foil_core::batch::HostPolicyBatch;
use foil_core::policy::OptimizerConfig;
use foil_core::run::RunContext;
use foil_core::{Objective, Stage, register_part, rng};
use foil_distributed::DataParallel;
use rand::seq::index::sample;
use serde::{Deserialize, Serialize};

use crate::data_parallel::Workers;
use crate::train_step::objective_step;

/// Recipe part: `{type: sft, steps: 600, batch: 64, optimizer: {type: adamw, lr: 1.0e-3}}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sft {
    /// Optimizer steps.
    pub steps: usize,
    /// Demonstrations per step.
    pub batch: usize,
    pub optimizer: OptimizerConfig,
    /// Loss on demonstrations.
    pub objective: Box<dyn Objective>,
    /// Log every this many steps (and the last).
    pub log_every: usize,
    /// Data-parallel workers, e.g. `{workers: 2}` (default: none, one policy). See
    /// `docs/data-parallel.md`.
    pub data_parallel: Option<DataParallel>,
}

impl Default for Sft {
    fn default() -> Self {
        Self {
            steps: 500,
            batch: 64,
            optimizer: OptimizerConfig::adamw(1e-3),
            objective: Box::new(foil_objectives::Nll::default()),
            log_every: 10,
            data_parallel: None,
        }
    }
}

register_part!(
    Stage,
    "sft",
    Sft,
    "supervised fine-tuning on the task's demonstrations (prompt → solution <eos>)"
);

#[typetag::serde(name = "sft")]
impl Stage for Sft {
    fn steps(&self) -> usize {
        self.steps
    }

    fn run(&self, ctx: &mut RunContext, start_step: usize) -> anyhow::Result<()> {
        anyhow::ensure!(self.batch > 0, "sft: batch must be at least 1");
        if let Some(dp) = &self.data_parallel {
            dp.validate("sft", self.batch)?;
        }
        anyhow::ensure!(
            !ctx.task.train.is_empty(),
            "sft: the task has no training problems"
        );
        ctx.prepare_optimizer(&self.optimizer, start_step)?;
        let tok = ctx.task.tokenizer.clone();
        let encoded: Vec<(Vec<u32>, Vec<u32>)> = ctx
            .task
            .train
            .iter()
            .map(|p| {
                let mut y = tok.encode(&p.solution)?;
                y.push(tok.eos_id());
                Ok((tok.encode_prompt(&p.prompt)?, y))
            })
            .collect::<anyhow::Result<_>>()?;
        let mut workers = match &self.data_parallel {
            Some(dp) => Some(Workers::new(ctx, dp, &self.optimizer)?),
            None => None,
        };
        supervised_steps_with(
            ctx,
            "sft",
            &encoded,
            &SupervisedSchedule {
                steps: self.steps,
                batch: self.batch,
                optimizer: &self.optimizer,
                objective: self.objective.as_ref(),
                log_every: self.log_every,
            },
            start_step,
            &[],
            workers.as_mut(),
        )
    }
}

/// What [`supervised_steps`] trains with.
pub(crate) struct SupervisedSchedule<'a> {
    pub steps: usize,
    pub batch: usize,
    pub optimizer: &'a OptimizerConfig,
    pub objective: &'a dyn Objective,
    pub log_every: usize,
}

/// Steps `start_step..steps` of supervised training on `(prompt, response)` rows: each step
/// draws `batch` rows without replacement (seeded by run seed, stage and step) and takes one
/// optimizer step on the objective. `extra` is appended to every logged line. Shared by
/// `sft` (demonstrations) and `rft` (the policy's own correct samples).
pub(crate) fn supervised_steps(
    ctx: &mut RunContext,
    label: &str,
    encoded: &[(Vec<u32>, Vec<u32>)],
    s: &SupervisedSchedule<'_>,
    start_step: usize,
    extra: &[(String, f64)],
) -> anyhow::Result<()> {
    supervised_steps_with(ctx, label, encoded, s, start_step, extra, None)
}

/// [`supervised_steps`], with data-parallel `workers` when given.
#[allow(clippy::too_many_arguments)]
fn supervised_steps_with(
    ctx: &mut RunContext,
    label: &str,
    encoded: &[(Vec<u32>, Vec<u32>)],
    s: &SupervisedSchedule<'_>,
    start_step: usize,
    extra: &[(String, f64)],
    mut workers: Option<&mut Workers>,
) -> anyhow::Result<()> {
    anyhow::ensure!(!encoded.is_empty(), "{label}: no training rows");
    let tok = ctx.task.tokenizer.clone();
    let bar = ctx.bar(s.steps, label);
    bar.set_position(start_step as u64);
    let train_device = ctx.policy.device();
    for step in start_step..s.steps {
        let mut r = rng::rng(ctx.seed, &[ctx.stage as u64, step as u64]);
        let k = s.batch.min(encoded.len());
        let rows: Vec<(&[u32], &[u32], Vec<f32>)> = sample(&mut r, encoded.len(), k)
            .into_iter()
            .map(|i| {
                (
                    encoded[i].0.as_slice(),
                    encoded[i].1.as_slice(),
                    vec![1.0; encoded[i].1.len()],
                )
            })
            .collect();
        let lr = s.optimizer.lr_at(step);
        let host = HostPolicyBatch::new(&rows, tok.pad_id());
        let batch = host.to_device(&train_device, 0);
        let metrics = match workers.as_deref_mut() {
            Some(w) => w.step(ctx, s.objective, &host, &batch, step, lr)?,
            None => objective_step(ctx, s.objective, &batch, step, lr)?,
        };
        bar.inc(1);
        if step % s.log_every.max(1) == 0 || step + 1 == s.steps {
            bar.set_prefix(format!("loss {:.4}", metrics[0].1));
            let mut m: Vec<(String, f64)> = metrics
                .iter()
                .map(|(k, v)| (k.clone(), *v as f64))
                .collect();
            m.push(("lr".into(), lr));
            m.extend(extra.iter().cloned());
            ctx.log(step, &m)?;
        }
        if ctx.end_step(step)? {
            break;
        }
    }
    bar.finish();
    Ok(())
}
