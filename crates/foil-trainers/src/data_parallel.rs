//! Data-parallel supervised steps: the `data_parallel:` option of the `sft` stage.
//!
//! `W` local workers (threads), worker 0 the run's policy, workers 1.. replicas built from
//! the same policy config and seed and then loaded from the policy's saved state (weights
//! and optimizer state, so they match after earlier stages and on resume). Each step the
//! stage's batch is split into `world_size` equal consecutive shards (global rank `r` takes
//! rows `r·b/W ..(r+1)·b/W`); every worker computes its shard's loss, the workers all-reduce
//! the loss value (so all see the same mean and stop together on a non-finite one), then
//! [`Policy::step_synced`] averages the gradients and applies the same AdamW step
//! everywhere. The logged loss and metrics are the means over the shards.
//!
//! With a per-token mean loss (`nll`'s default `token_mean`) the mean of the shard losses is
//! the batch loss when every shard holds the same number of response tokens, and the
//! weighted-per-shard mean otherwise (what PyTorch DDP computes too).

use burn::tensor::{Tensor, TensorData};
use foil_core::batch::{HostPolicyBatch, PolicyBatch, to_vec, token_entropy, token_logprobs};
use foil_core::grad_sync::GradientSync;
use foil_core::policy::{OptimizerConfig, Policy};
use foil_core::run::RunContext;
use foil_core::{Objective, PolicyOutput};
use foil_distributed::DataParallel;

/// The replicas and all-reduce handles of a stage.
pub(crate) struct Workers {
    dp: DataParallel,
    /// Local workers 1.. (worker 0 is `ctx.policy`).
    replicas: Vec<Box<dyn Policy>>,
    peers: Vec<Box<dyn GradientSync>>,
}

impl Workers {
    /// Builds workers 1.. as copies of `ctx.policy` (after its optimizer is prepared).
    pub(crate) fn new(
        ctx: &RunContext,
        dp: &DataParallel,
        optimizer: &OptimizerConfig,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        ctx.policy.save(dir.path())?;
        let replicas = (1..dp.workers)
            .map(|_| {
                let mut p = ctx.policy_config.build(
                    ctx.task.tokenizer.vocab_size(),
                    &ctx.device,
                    ctx.seed,
                )?;
                p.reset_optimizer(optimizer);
                p.load(dir.path())?;
                Ok(p)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let peers = dp.peers(&ctx.policy.device())?;
        Ok(Self {
            dp: dp.clone(),
            replicas,
            peers,
        })
    }

    /// One data-parallel optimizer step on `rows` (the whole step's batch, as every node
    /// draws it). Returns the mean loss and metrics like `objective_step`.
    pub(crate) fn step(
        &mut self,
        ctx: &mut RunContext,
        objective: &dyn Objective,
        rows: &[(&[u32], &[u32], Vec<f32>)],
        step: usize,
        lr: f64,
    ) -> anyhow::Result<Vec<(String, f32)>> {
        let world = self.dp.world_size();
        anyhow::ensure!(
            rows.len().is_multiple_of(world),
            "data parallel: {} rows this step do not split evenly over {world} workers \
             (the task has fewer training rows than `batch`?)",
            rows.len()
        );
        let shard = rows.len() / world;
        let pad = ctx.task.tokenizer.pad_id();
        let device = ctx.policy.device();
        let batches: Vec<PolicyBatch> = (0..self.dp.workers)
            .map(|w| {
                let r = self.dp.global_rank(w);
                HostPolicyBatch::new(&rows[r * shard..(r + 1) * shard], pad).to_device(&device, 0)
            })
            .collect();
        let policies = std::iter::once(&mut ctx.policy).chain(self.replicas.iter_mut());
        let results: Vec<anyhow::Result<Vec<(String, f32)>>> = std::thread::scope(|s| {
            let handles: Vec<_> = policies
                .zip(self.peers.iter_mut())
                .zip(batches)
                .map(|((policy, peer), batch)| {
                    s.spawn(move || {
                        worker_step(policy.as_mut(), peer.as_mut(), objective, &batch, lr)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("a data-parallel worker panicked")))
                })
                .collect()
        });
        let mut per_worker = Vec::with_capacity(results.len());
        for (w, r) in results.into_iter().enumerate() {
            per_worker.push(r.map_err(|e| e.context(format!("data-parallel worker {w}")))?);
        }
        // element-wise mean of the workers' metrics (same keys, same order)
        let mut metrics = per_worker[0].clone();
        for (i, (_, v)) in metrics.iter_mut().enumerate() {
            *v = per_worker.iter().map(|m| m[i].1).sum::<f32>() / per_worker.len() as f32;
        }
        // the loss is the all-reduced mean (over every node's shards)
        metrics[0].1 = per_worker[0][0].1;
        if !metrics[0].1.is_finite() {
            let detail = metrics[1..]
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(ctx.non_finite(step, metrics[0].1, detail));
        }
        Ok(metrics)
    }
}

/// Forward, loss, all-reduce of the loss value, then (if it is finite) the synced step.
fn worker_step(
    policy: &mut dyn Policy,
    peer: &mut dyn GradientSync,
    objective: &dyn Objective,
    batch: &PolicyBatch,
    lr: f64,
) -> anyhow::Result<Vec<(String, f32)>> {
    let logits = policy.forward(&batch.input);
    let entropy = objective
        .needs_entropy()
        .then(|| token_entropy(logits.clone()));
    let logprobs = token_logprobs(logits, batch.targets.clone());
    let loss = objective.loss(batch, &PolicyOutput { logprobs, entropy })?;
    let value = to_vec(loss.value.clone())[0];
    let device = foil_core::backend::inner_device(&policy.device());
    let mean = to_vec(peer.all_reduce_mean(Tensor::from_data(
        TensorData::new(vec![value], [1]),
        &device,
    ))?)[0];
    let mut metrics = vec![("loss".to_string(), mean)];
    metrics.extend(loss.metrics);
    if mean.is_finite() {
        policy.step_synced(loss.value, lr, peer)?;
    }
    Ok(metrics)
}
