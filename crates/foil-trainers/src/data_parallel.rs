//! Data-parallel optimizer steps: the `data_parallel:` option of the `sft` and `rl` stages.
//!
//! `W` local workers (threads), worker 0 the run's policy, workers 1.. replicas built from
//! the same policy config and seed and then loaded from the policy's saved state (weights
//! and optimizer state, so they match after earlier stages and on resume). The stage builds
//! each update's whole batch as it would without `data_parallel` (for `rl`: the rollouts
//! after verification, filters and advantages, with their π_old / π_ref log-probs, which
//! [`logprobs_on_workers`] also splits by rows over the workers' own models); global
//! rank `r` of `world` takes rows `⌊r·n/world⌋ .. ⌊(r+1)·n/world⌋`. One step:
//!
//! 1. every worker runs the forward pass of its rows only (the expensive part) and keeps
//!    the autodiff graph of its per-token log-probs (and entropies when the objective
//!    reads them);
//! 2. the workers all-gather the *values* of those log-probs (an all-reduce of a
//!    `[n, T-1]` buffer in which each worker filled its own rows), so every process holds
//!    the log-probs of the whole batch;
//! 3. the objective is evaluated **once, on the whole batch**, with those log-probs as
//!    autodiff leaves: its value and metrics are exactly the single-worker ones, and
//!    back-propagating it gives `G = ∂L/∂logπ` for every token of the batch (a stateful
//!    objective such as `adaptive_kl` also updates its state once per step, as without
//!    workers);
//! 4. each worker back-propagates the surrogate `world · Σ_{its rows} G ⊙ logπ_θ` through its
//!    own graph and [`Policy::step_synced`] all-reduces the parameter gradients to their
//!    mean and applies the same AdamW step everywhere.
//!
//! By the chain rule `∇_θ L = Σ_{rows, t} G_t ∇_θ logπ_θ(t)`, and the mean of the workers'
//! surrogate gradients is exactly that sum, so the update equals the one-worker update for
//! *every* objective — per-token means over the whole batch (`token_mean`), per-row means
//! (`seq_mean_token_mean`), Dr.GRPO's constant normaliser, group- or pair-coupled losses
//! (D²O, AFT, DPO's row pairs) — with any split of the rows, up to f32 summation order.
//! The price over a plain DDP step is one extra `[n, T-1]` all-reduce and a loss
//! evaluation on `[n, T-1]` tensors, both tiny next to the model's forward and backward.

use anyhow::Context;
use burn::tensor::{Tensor, TensorData};
use foil_core::backend::{B, Device, inner_device};
use foil_core::batch::{
    HostPolicyBatch, PolicyBatch, SeqBatch, shard_rows, to_vec, token_entropy, token_logprobs,
};
use foil_core::grad_sync::GradientSync;
use foil_core::policy::{InferenceModel, OptimizerConfig, Policy};
use foil_core::run::RunContext;
use foil_core::{Group, Objective, PolicyConfig, PolicyOutput, Problem, Sampler, Tokenizer, rng};
use foil_distributed::{DataParallel, Rollouts};

pub use crate::train_step::NonFinite;
use crate::train_step::{finite_value, frozen_logprobs, frozen_tensor, seq_logprobs, step_metrics};

/// The replicas and all-reduce handles of a stage.
pub struct Workers {
    dp: DataParallel,
    /// Local workers 1.. (worker 0 is `ctx.policy`).
    replicas: Vec<Box<dyn Policy>>,
    peers: Vec<Box<dyn GradientSync>>,
}

impl Workers {
    /// Builds workers 1.. as copies of `ctx.policy` (after its optimizer is prepared), each
    /// on its device of `dp.devices` (default: the run's).
    pub(crate) fn new(
        ctx: &RunContext,
        dp: &DataParallel,
        optimizer: &OptimizerConfig,
    ) -> anyhow::Result<Self> {
        let workers = Self::replicating(
            ctx.policy.as_ref(),
            ctx.policy_config.as_ref(),
            ctx.task.tokenizer.vocab_size(),
            ctx.seed,
            dp,
            optimizer,
        )?;
        if ctx.progress && dp.workers > 1 {
            let devices: Vec<String> = std::iter::once(&ctx.policy)
                .chain(&workers.replicas)
                .map(|p| format!("{:?}", inner_device(&p.device())))
                .collect();
            eprintln!(
                "{}: data_parallel: {} workers on {}",
                ctx.stage_type,
                dp.workers,
                devices.join(", ")
            );
        }
        Ok(workers)
    }

    /// Workers 1.. built from `config` (vocabulary `vocab`, `seed`) on their devices of
    /// `dp.devices` (default: the leader's), then loaded with `leader`'s saved weights and
    /// optimizer state.
    pub fn replicating(
        leader: &dyn Policy,
        config: &dyn PolicyConfig,
        vocab: usize,
        seed: u64,
        dp: &DataParallel,
        optimizer: &OptimizerConfig,
    ) -> anyhow::Result<Self> {
        let devices = dp.worker_devices(&leader.device())?;
        let dir = tempfile::tempdir()?;
        leader.save(dir.path())?;
        let replicas = devices[1..]
            .iter()
            .map(|device| {
                let mut p = config.build(vocab, device, seed)?;
                p.reset_optimizer(optimizer);
                p.load(dir.path())?;
                Ok(p)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let peers = dp.peers(&devices)?;
        Ok(Self {
            dp: dp.clone(),
            replicas,
            peers,
        })
    }

    /// One data-parallel optimizer step of `ctx.policy` and the replicas on the whole
    /// `batch` (packed from `host`; every node holds the same one). Returns the loss and
    /// metrics like `objective_step`, or the run's non-finite-loss error.
    pub(crate) fn step(
        &mut self,
        ctx: &mut RunContext,
        objective: &dyn Objective,
        host: &HostPolicyBatch,
        batch: &PolicyBatch,
        step: usize,
        lr: f64,
    ) -> anyhow::Result<Vec<(String, f32)>> {
        match self.step_on(&mut ctx.policy, objective, host, batch, lr)? {
            Ok(metrics) => Ok(metrics),
            Err(nf) => Err(ctx.non_finite(step, nf.value, nf.detail)),
        }
    }

    /// Inference copies of the replicas (workers 1..): they sample under `rollouts:
    /// workers` and compute their rows' π_old log-probs. `None` where the replica uses the
    /// leader's snapshot instead ([`WorkerModels::with_leader`], [`own_snapshot`]).
    pub(crate) fn replica_inference(&self, leader: &dyn Policy) -> WorkerModels {
        let own = self.own_models(leader, |r, _| Ok(r.inference()));
        own.expect("taking a snapshot cannot fail")
    }

    /// The stage's frozen reference on every replica's device (workers 1..), as
    /// [`RunContext::stage_start_snapshot`] gives the leader's, for their rows' π_ref
    /// log-probs; `None` (the leader's reference) where [`own_snapshot`] says no. A
    /// reference does not drift (built once, from the same saved weights), but on another
    /// backend its log-probs differ from the leader's by rounding (2.4e-7 for flex and
    /// ndarray), and in `rl_data_parallel`'s two-epoch test that alone moved step 3's KL
    /// from 0.628 to 0.604: such a replica uses the leader's, so that mixed backends train
    /// exactly as one worker.
    pub(crate) fn replica_references(
        &self,
        ctx: &RunContext,
        start_step: usize,
    ) -> anyhow::Result<WorkerModels> {
        self.own_models(ctx.policy.as_ref(), |r, device| {
            ctx.stage_start_snapshot_on(r, device, start_step)
        })
    }

    /// `make(replica, its inner device)` for every replica that keeps frozen models of its
    /// own ([`own_snapshot`] beside `leader`), `None` for the others.
    fn own_models(
        &self,
        leader: &dyn Policy,
        make: impl Fn(&dyn Policy, &Device) -> anyhow::Result<Box<dyn InferenceModel>>,
    ) -> anyhow::Result<WorkerModels> {
        let home = inner_device(&leader.device());
        let models = self
            .replicas
            .iter()
            .map(|r| {
                let device = inner_device(&r.device());
                own_snapshot(&home, &device)
                    .then(|| make(r.as_ref(), &device))
                    .transpose()
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(WorkerModels(models))
    }

    /// Who samples the rollouts.
    pub(crate) fn rollouts(&self) -> Rollouts {
        self.dp.rollouts
    }

    /// Thread workers outside a run (benches): `leader` is worker 0, `replicas` the
    /// others, which must hold the leader's weights and optimizer settings.
    pub fn threads(leader: &dyn Policy, replicas: Vec<Box<dyn Policy>>) -> anyhow::Result<Self> {
        let dp = DataParallel {
            workers: replicas.len() + 1,
            ..DataParallel::default()
        };
        let devices: Vec<_> = std::iter::once(leader.device())
            .chain(replicas.iter().map(|r| r.device()))
            .collect();
        let peers = dp.peers(&devices)?;
        Ok(Self {
            dp,
            replicas,
            peers,
        })
    }

    /// [`Workers::step`] with the leader policy given directly (the module docs list the
    /// four phases). No worker steps when the loss is not finite.
    pub fn step_on(
        &mut self,
        leader: &mut Box<dyn Policy>,
        objective: &dyn Objective,
        host: &HostPolicyBatch,
        batch: &PolicyBatch,
        lr: f64,
    ) -> anyhow::Result<Result<Vec<(String, f32)>, NonFinite>> {
        let world = self.dp.world_size();
        let (n, width) = (batch.n, batch.width);
        anyhow::ensure!(n > 0, "data parallel: an update with no rows");
        let entropy = objective.needs_entropy();
        // (global rank, rows it trains on) per local worker
        let shards: Vec<_> = (0..self.dp.workers)
            .map(|w| {
                let r = self.dp.global_rank(w);
                (r, shard_rows(n, world, r))
            })
            .collect();

        // 1 + 2: forward passes of the shards, all-gather of the log-prob values
        let mut policies: Vec<&mut Box<dyn Policy>> = std::iter::once(leader)
            .chain(self.replicas.iter_mut())
            .collect();
        let forwards: Vec<anyhow::Result<Forward>> = std::thread::scope(|s| {
            let handles: Vec<_> = policies
                .iter_mut()
                .zip(self.peers.iter_mut())
                .zip(&shards)
                .map(|((policy, peer), (_, rows))| {
                    let policy: &mut dyn Policy = policy.as_mut();
                    s.spawn(move || {
                        forward_and_gather(policy, peer.as_mut(), host, rows.clone(), entropy)
                    })
                })
                .collect();
            join_all(handles)
        });
        let forwards = forwards
            .into_iter()
            .enumerate()
            .map(|(w, f)| f.map_err(|e| e.context(format!("data-parallel worker {w}"))))
            .collect::<anyhow::Result<Vec<_>>>()?;

        // 3: the objective on the whole batch, log-probs (and entropies) as leaves
        let device = batch.mask.device();
        let leaf = |values: &[f32]| {
            Tensor::<B, 2>::from_data(TensorData::new(values.to_vec(), [n, width]), &device)
                .require_grad()
        };
        let lp_leaf = leaf(&forwards[0].gathered_lp);
        let ent_leaf = forwards[0].gathered_ent.as_deref().map(leaf);
        let loss = objective.loss(
            batch,
            &PolicyOutput {
                logprobs: lp_leaf.clone(),
                entropy: ent_leaf.clone(),
            },
        )?;
        let value = match finite_value(&loss) {
            Ok(value) => value,
            Err(nf) => return Ok(Err(nf)),
        };
        let grads = loss.value.backward();
        let grad_of = |t: &Tensor<B, 2>| {
            t.grad(&grads)
                .map(to_vec)
                .unwrap_or_else(|| vec![0.0; n * width])
        };
        let g_lp = grad_of(&lp_leaf);
        let g_ent = ent_leaf.as_ref().map(grad_of);

        // 4: every worker back-propagates world · Σ_{its rows} G ⊙ (its graph), synced step
        let results: Vec<anyhow::Result<()>> = std::thread::scope(|s| {
            let handles: Vec<_> = policies
                .iter_mut()
                .zip(self.peers.iter_mut())
                .zip(forwards)
                .map(|((policy, peer), f)| {
                    let weights = |g: &[f32]| match &f.rows {
                        Some(rows) => g[rows.start * width..rows.end * width]
                            .iter()
                            .map(|x| x * world as f32)
                            .collect(),
                        // a worker without rows this update back-propagates row 0 × 0
                        None => vec![0.0; width],
                    };
                    let w_lp = weights(&g_lp);
                    let w_ent = g_ent.as_deref().map(weights);
                    let policy: &mut dyn Policy = policy.as_mut();
                    s.spawn(move || {
                        let dev = f.logprobs.device();
                        let rows = f.logprobs.dims()[0];
                        let w = |v: Vec<f32>| {
                            Tensor::<B, 2>::from_data(TensorData::new(v, [rows, width]), &dev)
                        };
                        let mut surrogate = (f.logprobs * w(w_lp)).sum();
                        if let (Some(e), Some(we)) = (f.entropy, w_ent) {
                            surrogate = surrogate + (e * w(we)).sum();
                        }
                        policy.step_synced(surrogate, lr, peer.as_mut())
                    })
                })
                .collect();
            join_all(handles)
        });
        for (w, r) in results.into_iter().enumerate() {
            r.map_err(|e| e.context(format!("data-parallel worker {w}")))?;
        }
        Ok(Ok(step_metrics(value, loss.metrics)))
    }
}

/// One worker's forward pass: its log-probs (and entropies) with the autodiff graph, the
/// gathered values of the whole batch, and the rows it holds (`None`: no rows this update).
struct Forward {
    logprobs: Tensor<B, 2>,
    entropy: Option<Tensor<B, 2>>,
    gathered_lp: Vec<f32>,
    gathered_ent: Option<Vec<f32>>,
    rows: Option<std::ops::Range<usize>>,
}

/// Forward pass of `rows` of `host` on `policy`'s device, then the all-gather of the
/// log-prob (and entropy) values through `peer`. A worker with no rows runs row 0 (so
/// that it has a graph to back-propagate with zero weights) and contributes zeros.
fn forward_and_gather(
    policy: &dyn Policy,
    peer: &mut dyn GradientSync,
    host: &HostPolicyBatch,
    rows: std::ops::Range<usize>,
    entropy: bool,
) -> anyhow::Result<Forward> {
    let seqs = &host.seqs;
    let (n, t) = (seqs.n, seqs.t);
    let width = t - 1;
    let run = if rows.is_empty() { 0..1 } else { rows.clone() };
    let input = sub_rows(seqs, run.clone()).to_input(&policy.device());
    let targets = input.tokens.clone().slice([0..run.len(), 1..t]);
    let (lp, ent) = if entropy {
        let logits = policy.forward(&input);
        let ent = token_entropy(logits.clone());
        (token_logprobs(logits, targets), Some(ent))
    } else {
        (policy.token_logprobs(&input, targets), None)
    };
    let device = foil_core::backend::inner_device(&policy.device());
    let world = peer.world_size() as f32;
    let mut gather = |part: &Tensor<B, 2>| -> anyhow::Result<Vec<f32>> {
        let mut buf = vec![0.0f32; n * width];
        if !rows.is_empty() {
            buf[rows.start * width..rows.end * width]
                .copy_from_slice(&to_vec(part.clone().detach()));
        }
        let mean = peer.all_reduce_mean(Tensor::from_data(
            TensorData::new(buf, [n * width]),
            &device,
        ))?;
        // the mean of rows that only one worker filled, times the workers
        Ok(to_vec(mean).into_iter().map(|x| x * world).collect())
    };
    let gathered_lp = gather(&lp)?;
    let gathered_ent = ent.as_ref().map(&mut gather).transpose()?;
    Ok(Forward {
        logprobs: lp,
        entropy: ent,
        gathered_lp,
        gathered_ent,
        rows: (!rows.is_empty()).then_some(rows),
    })
}

/// Rows `rows` of `seqs`, same columns (so each row keeps its layout in the whole batch).
fn sub_rows(seqs: &SeqBatch, rows: std::ops::Range<usize>) -> SeqBatch {
    let t = seqs.t;
    let span = rows.start * t..rows.end * t;
    SeqBatch {
        n: rows.len(),
        t,
        tokens: seqs.tokens[span.clone()].to_vec(),
        positions: seqs.positions[span.clone()].to_vec(),
        valid: seqs.valid[span].to_vec(),
    }
}

/// `rollouts: workers`: model `w` of `models` (the leader's first, then the replicas')
/// samples problems `⌊w·n/W⌋ .. ⌊(w+1)·n/W⌋` with the seed `rng::derive(seed, [w])`, every
/// worker in its own scoped thread (on a GPU, each on its own device); the groups come back
/// in `problems`' order. A worker whose share is empty samples nothing.
pub fn sample_on_workers(
    sampler: &dyn Sampler,
    models: &[&dyn InferenceModel],
    tokenizer: &dyn Tokenizer,
    problems: &[Problem],
    seed: u64,
) -> anyhow::Result<Vec<Group>> {
    on_worker_shards(models, problems.len(), |w, model, share| {
        sampler
            .sample(
                model,
                tokenizer,
                &problems[share],
                rng::derive(seed, &[w as u64]),
            )
            .with_context(|| format!("data_parallel: worker {w} sampling its rollouts"))
    })
}

/// `work(w, model, share)` of every worker `w` of `models` on its consecutive share
/// `⌊w·n/W⌋ .. ⌊(w+1)·n/W⌋` of `n` items, each in its own scoped thread (a worker whose
/// share is empty does nothing); the outputs joined in worker order.
fn on_worker_shards<T: Send>(
    models: &[&dyn InferenceModel],
    n: usize,
    work: impl Fn(usize, &dyn InferenceModel, std::ops::Range<usize>) -> anyhow::Result<Vec<T>> + Sync,
) -> anyhow::Result<Vec<T>> {
    let world = models.len();
    let work = &work;
    let parts: Vec<Vec<T>> = std::thread::scope(|s| {
        let handles = models
            .iter()
            .enumerate()
            .map(|(w, &model)| {
                let share = shard_rows(n, world, w);
                s.spawn(move || {
                    if share.is_empty() {
                        return Ok(Vec::new());
                    }
                    work(w, model, share)
                })
            })
            .collect();
        join_all(handles)
    })
    .into_iter()
    .collect::<anyhow::Result<_>>()?;
    Ok(parts.into_iter().flatten().collect())
}

/// Whether a replica on `device` samples and computes its rows' π_old / π_ref log-probs
/// with frozen models of its own, on its own device, rather than with the leader's (on
/// `home`): when it is another device of the same backend (e.g. `cuda:1` beside
/// `cuda:0`), where its weights are bit-identical to the leader's (every worker applies the
/// same elementwise AdamW step to the same all-reduced gradient) and its kernels the same.
/// On the leader's own device a second copy would only cost memory. On another backend
/// (`cpu-ndarray` beside flex's `cpu`) the log-probs differ by rounding, and this loop
/// amplifies that (AdamW's `m/√v` on near-zero gradients): in `rl_data_parallel`'s
/// two-epoch test, references 2.4e-7 apart moved step 3's KL from 0.628 to 0.604. Such a
/// replica therefore uses the leader's models, on the leader's device, from its thread.
pub(crate) fn own_snapshot(home: &Device, device: &Device) -> bool {
    device != home && std::mem::discriminant(device) == std::mem::discriminant(home)
}

/// Frozen models of workers 1.. (snapshots or references); `None` where a worker uses
/// the leader's.
#[derive(Default)]
pub(crate) struct WorkerModels(Vec<Option<Box<dyn InferenceModel>>>);

impl WorkerModels {
    /// Every worker's model, the leader's `leader` first.
    pub(crate) fn with_leader<'a>(
        &'a self,
        leader: &'a dyn InferenceModel,
    ) -> Vec<&'a dyn InferenceModel> {
        std::iter::once(leader)
            .chain(self.0.iter().map(|m| m.as_deref().unwrap_or(leader)))
            .collect()
    }
}

/// Frozen per-token log-probs of `host`'s rows (`[n, T−1]` on `batch`'s device, as
/// `train_step::frozen_logprobs` computes them on one model), spread over `models` (the
/// leader's first): model `w` of `W` runs rows `⌊w·n/W⌋ .. ⌊(w+1)·n/W⌋` on its own device
/// in its own thread, and the rows are joined in order. The π_old and π_ref passes of a
/// data-parallel `rl` update, which would otherwise run on the leader alone; with one
/// model, the plain pass (`rl` calls it with one model when not data-parallel).
pub fn logprobs_on_workers(
    models: &[&dyn InferenceModel],
    host: &HostPolicyBatch,
    batch: &PolicyBatch,
) -> anyhow::Result<Tensor<B, 2>> {
    let n = host.seqs.n;
    anyhow::ensure!(
        !models.is_empty() && n == batch.n,
        "logprobs_on_workers: {} models for a batch of {} rows packed as {}",
        models.len(),
        n,
        batch.n
    );
    if let [one] = models {
        // one worker: the plain pass, without a thread or a copy of the rows
        return Ok(frozen_logprobs(*one, host, batch));
    }
    let values = on_worker_shards(models, n, |_, model, rows| {
        Ok(seq_logprobs(model, &sub_rows(&host.seqs, rows)))
    })?;
    Ok(frozen_tensor(values, batch))
}

/// Joins scoped worker threads, turning a panic into an error.
fn join_all<T>(
    handles: Vec<std::thread::ScopedJoinHandle<'_, anyhow::Result<T>>>,
) -> Vec<anyhow::Result<T>> {
    handles
        .into_iter()
        .map(|h| {
            h.join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("a data-parallel worker panicked")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    //! Exactness of the split: the reference is the plain single-policy step
    //! (`forward → objective.loss → Policy::step_synced` through a one-peer group, i.e.
    //! burn's own gradient of the whole batch's loss), recorded at the all-reduce.

    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::train_step::frozen_logprobs;
    use foil_core::PolicyConfig;
    use foil_core::backend::{parse_device, train_device};
    use foil_core::grad_sync::ThreadAllReduce;
    use foil_objectives::{Aggregate, Entropy, Kl, PpoClip, Sum};

    /// Every all-reduce call a peer made: (what it sent, what it got back).
    type Log = Arc<Mutex<Vec<(Vec<f32>, Vec<f32>)>>>;

    struct Recorder {
        inner: ThreadAllReduce,
        log: Log,
    }

    impl GradientSync for Recorder {
        fn rank(&self) -> usize {
            self.inner.rank()
        }
        fn world_size(&self) -> usize {
            self.inner.world_size()
        }
        fn all_reduce_mean(&mut self, grad: Tensor<B, 1>) -> anyhow::Result<Tensor<B, 1>> {
            let sent = to_vec(grad.clone());
            let out = self.inner.all_reduce_mean(grad)?;
            self.log.lock().unwrap().push((sent, to_vec(out.clone())));
            Ok(out)
        }
    }

    /// `world` recording peers and their logs.
    fn recorders(world: usize) -> (Vec<Box<dyn GradientSync>>, Vec<Log>) {
        ThreadAllReduce::group(world)
            .unwrap()
            .into_iter()
            .map(|inner| {
                let log = Log::default();
                (
                    Box::new(Recorder {
                        inner,
                        log: log.clone(),
                    }) as Box<dyn GradientSync>,
                    log,
                )
            })
            .unzip()
    }

    fn config(init_seed: u64) -> foil_models::TinyGpt {
        foil_models::TinyGpt {
            d_model: 16,
            layers: 1,
            heads: 2,
            context: 16,
            mlp_ratio: 2,
            init_seed,
            precision: Default::default(),
        }
    }

    fn policy(init_seed: u64) -> Box<dyn Policy> {
        let mut p = config(init_seed)
            .build(12, &parse_device("cpu").unwrap(), 3)
            .unwrap();
        p.reset_optimizer(&OptimizerConfig::adamw(1e-2));
        p
    }

    /// Five rows of unequal response lengths (3, 2, 4, 1, 5 tokens) and per-token
    /// advantages of both signs: any split gives shards with different token counts, so
    /// a plain mean of per-shard token-mean losses would be wrong.
    fn rows() -> Vec<(&'static [u32], &'static [u32], Vec<f32>)> {
        vec![
            (&[1, 2], &[3, 4, 5], vec![1.0, 0.5, -0.2]),
            (&[1, 6, 2], &[7, 8], vec![-0.5, -0.7]),
            (&[2], &[9, 10, 11, 3], vec![0.25, 0.3, 0.1, -0.4]),
            (&[4, 4], &[5], vec![0.8]),
            (&[3], &[6, 2, 9, 1, 7], vec![-0.3, 0.6, -0.1, 0.9, 0.2]),
        ]
    }

    /// GRPO-style `ppo_clip + kl + entropy bonus` with three different aggregations.
    fn objective() -> Sum {
        Sum {
            terms: vec![
                Box::new(PpoClip::default()),
                Box::new(Kl {
                    coef: 0.5,
                    aggregate: Aggregate::SeqMeanTokenMean,
                    ..Kl::default()
                }),
                Box::new(Entropy {
                    coef: 0.05,
                    aggregate: Aggregate::SeqMeanTokenSumNorm,
                }),
            ],
            weights: Vec::new(),
        }
    }

    /// The batch with π_ref from another init and π_old from the policy's own init (so the
    /// second update has a ratio ≠ 1).
    fn batch() -> (HostPolicyBatch, PolicyBatch) {
        let host = HostPolicyBatch::new(&rows(), 0);
        let mut b = host.to_device(&train_device(&parse_device("cpu").unwrap()), 6);
        b.ref_logprobs = Some(frozen_logprobs(policy(7).inference().as_ref(), &host, &b));
        b.old_logprobs = Some(frozen_logprobs(policy(0).inference().as_ref(), &host, &b));
        (host, b)
    }

    fn logprobs(p: &dyn Policy, b: &PolicyBatch) -> Vec<f32> {
        to_vec(token_logprobs(p.forward(&b.input), b.targets.clone()))
    }

    fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    /// A replica keeps its own snapshot only on another device of the leader's backend:
    /// not on the leader's device, not on another backend.
    #[test]
    fn own_snapshots_only_on_other_devices_of_the_same_backend() {
        let (flex, ndarray) = (
            parse_device("cpu").unwrap(),
            parse_device("cpu-ndarray").unwrap(),
        );
        assert!(!own_snapshot(&flex, &flex));
        assert!(!own_snapshot(&flex, &ndarray));
        assert!(!own_snapshot(&ndarray, &flex));
        // two devices of one backend: flex has a single device, so two ndarray handles
        // stand in for `cuda:0` / `cuda:1` only if they differ; they do not
        assert!(!own_snapshot(&ndarray, &parse_device("ndarray").unwrap()));
    }

    /// The π_old / π_ref passes spread over workers give the log-probs of one model on the
    /// whole batch: its 5 rows over 1, 2, 3 and 7 copies of a model (two of the 7 without
    /// rows). Over a copy and a model with other weights, the second's rows (2..5 of 5)
    /// differ while the first's stay, so a row run by the wrong worker would show.
    #[test]
    fn logprobs_on_workers_are_the_whole_batch_pass() {
        let (host, b) = batch();
        let models: Vec<Box<dyn InferenceModel>> = (0..7).map(|_| policy(0).inference()).collect();
        let whole = to_vec(frozen_logprobs(models[0].as_ref(), &host, &b));
        for world in [1, 2, 3, 7] {
            let refs: Vec<&dyn InferenceModel> =
                models[..world].iter().map(|m| m.as_ref()).collect();
            let got = to_vec(logprobs_on_workers(&refs, &host, &b).unwrap());
            assert!(
                got.iter().all(|v| v.is_finite()),
                "{world} workers: {got:?}"
            );
            assert!(max_abs_diff(&got, &whole) < 1e-6, "{world} workers");
        }
        let other = policy(7).inference();
        let got =
            to_vec(logprobs_on_workers(&[models[0].as_ref(), other.as_ref()], &host, &b).unwrap());
        let row = |v: &[f32], r: usize| v[r * b.width..(r + 1) * b.width].to_vec();
        for r in 0..5 {
            let d = max_abs_diff(&row(&got, r), &row(&whole, r));
            // rows 0..2 on the copy, 2..5 on the other weights
            assert_eq!(d > 1e-3, r >= 2, "row {r}: {d}");
        }
        assert!(logprobs_on_workers(&[], &host, &b).is_err());
    }

    /// `rollouts: workers`: worker `w` samples problems `⌊w·5/W⌋..⌊(w+1)·5/W⌋` of 5 with
    /// its own model and the seed `derive(11, [w])`, and the groups come back in the
    /// problems' order: over 1, 2 (2 + 3) and 3 (1 + 2 + 2) workers, and 1 problem over 3
    /// (two workers sample nothing). The models come from different inits, so a share
    /// sampled by the wrong worker's model (or seed) gives other tokens.
    #[test]
    fn workers_sample_their_shares_in_order() {
        let tok = foil_data::CharTokenizer::new("0123456789").unwrap();
        let models = [
            policy(0).inference(),
            policy(7).inference(),
            policy(9).inference(),
        ];
        let problems: Vec<Problem> = (0..5)
            .map(|i| Problem {
                id: format!("p{i}"),
                prompt: format!("{i}{}", 9 - i),
                solution: String::new(),
                answer: String::new(),
                difficulty: 0,
            })
            .collect();
        let sampler = foil_samplers::Local {
            n: 2,
            max_tokens: 4,
            ..Default::default()
        };
        let tokens = |groups: &[Group]| -> Vec<(String, Vec<Vec<u32>>)> {
            groups
                .iter()
                .map(|g| {
                    let c = g.completions.iter().map(|c| c.tokens.clone()).collect();
                    (g.problem.id.clone(), c)
                })
                .collect()
        };
        for (world, n) in [(1, 5), (2, 5), (3, 5), (3, 1)] {
            let refs: Vec<&dyn InferenceModel> =
                models[..world].iter().map(|m| m.as_ref()).collect();
            let got = sample_on_workers(&sampler, &refs, &tok, &problems[..n], 11).unwrap();
            let mut want = Vec::new();
            for (w, model) in refs.iter().enumerate() {
                let share = &problems[shard_rows(n, world, w)];
                if !share.is_empty() {
                    let seed = rng::derive(11, &[w as u64]);
                    want.extend(sampler.sample(*model, &tok, share, seed).unwrap());
                }
            }
            assert_eq!(tokens(&got), tokens(&want), "{world} workers, {n} problems");
            let ids: Vec<String> = got.iter().map(|g| g.problem.id.clone()).collect();
            let order: Vec<String> = (0..n).map(|i| format!("p{i}")).collect();
            assert_eq!(ids, order);
        }
        // worker 1's share (p2..p4 of 2 + 3) sampled by worker 0's model differs
        let share = &problems[2..];
        let seed = rng::derive(11, &[1]);
        let by_own = sampler
            .sample(models[1].as_ref(), &tok, share, seed)
            .unwrap();
        let by_leader = sampler
            .sample(models[0].as_ref(), &tok, share, seed)
            .unwrap();
        assert_ne!(tokens(&by_own), tokens(&by_leader));
    }

    /// `devices: [cpu, cpu-ndarray]` puts the replica on ndarray, loaded with the leader's
    /// weights; a data-parallel update then gives the plain update's loss, and both workers
    /// the plain policy's new log-probs.
    #[test]
    fn replicas_are_built_on_their_listed_devices() {
        let obj = objective();
        let (host, b) = batch();
        let cpu = parse_device("cpu").unwrap();
        let dp: DataParallel =
            serde_json::from_str(r#"{"devices": ["cpu", "cpu-ndarray"]}"#).unwrap();
        // the leader as `policy(0)` builds it: config(0), vocabulary 12, seed 3, AdamW 1e-2
        let mut leader = policy(0);
        let optimizer = OptimizerConfig::adamw(1e-2);
        let mut w =
            Workers::replicating(leader.as_ref(), &config(0), 12, 3, &dp, &optimizer).unwrap();
        assert_eq!(w.replicas.len(), 1);
        let nd = parse_device("cpu-ndarray").unwrap();
        assert_eq!(inner_device(&w.replicas[0].device()), nd);
        assert_eq!(inner_device(&leader.device()), cpu);
        // the replica starts with the leader's weights, on the other device
        let before = logprobs(leader.as_ref(), &b);
        let b_nd = host.to_device(&train_device(&nd), 6);
        let d = max_abs_diff(&before, &logprobs(w.replicas[0].as_ref(), &b_nd));
        assert!(d < 1e-5, "replica vs leader before training: {d}");

        let mut plain = policy(0);
        let logits = plain.forward(&b.input);
        let out = PolicyOutput {
            entropy: Some(token_entropy(logits.clone())),
            logprobs: token_logprobs(logits, b.targets.clone()),
        };
        let loss = obj.loss(&b, &out).unwrap();
        let want = loss.value.clone().into_scalar();
        plain.step(loss.value, 1e-2).unwrap();
        let got = w
            .step_on(&mut leader, &obj, &host, &b, 1e-2)
            .unwrap()
            .ok()
            .unwrap();
        assert!(
            (got[0].1 - want).abs() < 1e-6,
            "loss {} vs {want}",
            got[0].1
        );
        let after = logprobs(plain.as_ref(), &b);
        assert!(
            max_abs_diff(&before, &after) > 1e-3,
            "the update moved nothing"
        );
        let d = max_abs_diff(&after, &logprobs(leader.as_ref(), &b));
        assert!(d < 1e-4, "leader vs plain after the update: {d}");
        let d = max_abs_diff(&after, &logprobs(w.replicas[0].as_ref(), &b_nd));
        assert!(d < 1e-4, "ndarray replica vs plain after the update: {d}");
    }

    /// Two updates with `workers` local workers against two plain updates: the same loss
    /// values, the same reduced gradient per parameter (1e-5), shard gradients that differ
    /// from each other before the reduce, and the same weights afterwards (1e-4), the
    /// replicas identical.
    fn check_split(workers: usize) {
        let obj = objective();
        let (host, b) = batch();
        // one policy, plain steps through a one-peer group (the identity all-reduce)
        let mut single = policy(0);
        let (mut one_peer, one_log) = recorders(1);
        let mut single_losses = Vec::new();
        for _ in 0..2 {
            let logits = single.forward(&b.input);
            let entropy = Some(token_entropy(logits.clone()));
            let logprobs = token_logprobs(logits, b.targets.clone());
            let loss = obj.loss(&b, &PolicyOutput { logprobs, entropy }).unwrap();
            single_losses.push(to_vec(loss.value.clone())[0]);
            single
                .step_synced(loss.value, 1e-2, one_peer[0].as_mut())
                .unwrap();
        }
        let reference: Vec<_> = one_log[0]
            .lock()
            .unwrap()
            .iter()
            .map(|(_, o)| o.clone())
            .collect();
        let params = reference.len() / 2;
        assert!(params > 4, "{params} gradient tensors");

        let mut leader = policy(0);
        let (peers, logs) = recorders(workers);
        let mut w = Workers {
            dp: DataParallel {
                workers,
                ..DataParallel::default()
            },
            replicas: (1..workers).map(|_| policy(0)).collect(),
            peers,
        };
        for (update, want) in single_losses.iter().enumerate() {
            let metrics = w
                .step_on(&mut leader, &obj, &host, &b, 1e-2)
                .unwrap()
                .unwrap_or_else(|nf| panic!("non-finite loss {}", nf.value));
            assert_eq!(metrics[0].0, "loss");
            let d = (metrics[0].1 - want).abs();
            assert!(d < 1e-6, "update {update}: loss {} vs {want}", metrics[0].1);
        }
        // per update: 2 gathers (log-probs, entropies), then one call per parameter
        let per_update = 2 + params;
        let logs: Vec<Vec<_>> = logs.iter().map(|l| l.lock().unwrap().clone()).collect();
        for log in &logs {
            assert_eq!(log.len(), 2 * per_update);
        }
        for update in 0..2 {
            let calls = update * per_update + 2..(update + 1) * per_update;
            for (k, call) in calls.clone().enumerate() {
                let want = &reference[update * params + k];
                for log in &logs {
                    let d = max_abs_diff(&log[call].1, want);
                    assert!(d < 1e-5, "update {update}, parameter {k}: |Δ| = {d}");
                }
            }
            // the workers' own gradients differ from each other (and the reduce matters)
            let spread = calls
                .map(|c| max_abs_diff(&logs[0][c].0, &logs[workers - 1][c].0))
                .fold(0.0, f32::max);
            assert!(spread > 1e-3, "shard gradients barely differ: {spread}");
        }
        let want = logprobs(single.as_ref(), &b);
        let got = logprobs(leader.as_ref(), &b);
        let before = logprobs(policy(0).as_ref(), &b);
        assert!(
            max_abs_diff(&want, &before) > 1e-3,
            "the updates moved nothing"
        );
        let d = max_abs_diff(&got, &want);
        assert!(d < 1e-4, "weights after two updates differ: {d}");
        for r in &w.replicas {
            assert_eq!(logprobs(r.as_ref(), &b), got, "a replica drifted");
        }
    }

    #[test]
    fn two_workers_on_unequal_halves_give_the_whole_batch_gradient() {
        check_split(2); // rows 0..2 (5 tokens) and 2..5 (10 tokens)
    }

    #[test]
    fn three_workers_give_the_whole_batch_gradient() {
        check_split(3); // rows 0..1, 1..3, 3..5
    }

    #[test]
    fn workers_without_rows_contribute_nothing() {
        check_split(7); // five workers hold a row each, two hold none
    }

    /// Seconds per optimizer update on a GRPO-sized batch (tiny_gpt d64 × 2 layers, 128
    /// rows of 8–12 prompt + 4–16 response tokens, `ppo_clip + kl`): the plain one-policy
    /// step vs `Workers` with 1 and 2 thread workers, alternating, with the load average.
    /// Not a check, a measurement:
    /// `cargo test --workspace --lib time_updates -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn time_updates_one_vs_two_workers() {
        let build = || {
            let mut p = foil_models::TinyGpt {
                d_model: 64,
                layers: 2,
                heads: 4,
                context: 48,
                mlp_ratio: 4,
                init_seed: 0,
                precision: Default::default(),
            }
            .build(24, &parse_device("cpu").unwrap(), 1)
            .unwrap();
            p.reset_optimizer(&OptimizerConfig::adamw(1e-4));
            p
        };
        let mut r = foil_core::rng::rng(1, &[2]);
        use rand::Rng;
        let data: Vec<(Vec<u32>, Vec<u32>, Vec<f32>)> = (0..128)
            .map(|_| {
                let p = (0..r.random_range(8..=12))
                    .map(|_| r.random_range(1..24))
                    .collect();
                let len = r.random_range(4..=16);
                let y = (0..len).map(|_| r.random_range(1..24)).collect();
                (p, y, vec![r.random_range(-1.0..1.0); len])
            })
            .collect();
        let rows: Vec<(&[u32], &[u32], Vec<f32>)> = data
            .iter()
            .map(|(p, y, a)| (p.as_slice(), y.as_slice(), a.clone()))
            .collect();
        let host = HostPolicyBatch::new(&rows, 0);
        let mut b = host.to_device(&train_device(&parse_device("cpu").unwrap()), 16);
        b.ref_logprobs = Some(frozen_logprobs(build().inference().as_ref(), &host, &b));
        let obj = Sum {
            terms: vec![
                Box::new(PpoClip::default()),
                Box::new(Kl {
                    coef: 0.01,
                    ..Kl::default()
                }),
            ],
            weights: Vec::new(),
        };
        let load = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        const N: usize = 10;
        for round in 0..2 {
            let mut plain = build();
            let t = std::time::Instant::now();
            for _ in 0..N {
                let lp = token_logprobs(plain.forward(&b.input), b.targets.clone());
                let loss = obj
                    .loss(
                        &b,
                        &PolicyOutput {
                            logprobs: lp,
                            entropy: None,
                        },
                    )
                    .unwrap();
                plain.step(loss.value, 1e-4).unwrap();
            }
            let s = t.elapsed().as_secs_f64() / N as f64;
            println!(
                "round {round}: plain step: {s:.3} s/update, load {}",
                load().trim()
            );
            for workers in [1, 2] {
                let mut leader = build();
                let mut w = Workers {
                    dp: DataParallel {
                        workers,
                        ..DataParallel::default()
                    },
                    replicas: (1..workers).map(|_| build()).collect(),
                    peers: DataParallel {
                        workers,
                        ..DataParallel::default()
                    }
                    .peers(&vec![leader.device(); workers])
                    .unwrap(),
                };
                let t = std::time::Instant::now();
                for _ in 0..N {
                    w.step_on(&mut leader, &obj, &host, &b, 1e-4)
                        .unwrap()
                        .unwrap_or_else(|_| panic!("non-finite"));
                }
                let s = t.elapsed().as_secs_f64() / N as f64;
                println!(
                    "round {round}: {workers} worker(s): {s:.3} s/update, load {}",
                    load().trim()
                );
            }
        }
    }

    #[test]
    fn shards_are_consecutive_and_cover_every_row() {
        assert_eq!(shard_rows(5, 2, 0), 0..2);
        assert_eq!(shard_rows(5, 2, 1), 2..5);
        assert_eq!(shard_rows(1, 3, 0), 0..0);
        assert_eq!(shard_rows(1, 3, 2), 0..1);
        for (n, world) in [(7, 3), (16, 4), (2, 5)] {
            let covered: Vec<usize> = (0..world).flat_map(|r| shard_rows(n, world, r)).collect();
            assert_eq!(covered, (0..n).collect::<Vec<_>>());
        }
    }
}
