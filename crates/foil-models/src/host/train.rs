//! The CPU training path: a policy's forward pass and its backward pass computed on the
//! host (`foil_kernels::backprop`), joined to burn's autodiff at the logits.
//!
//! `Policy::forward` runs the model on the host, keeps what the backward pass needs (a
//! trace) and returns the logits as an autodiff leaf. Log-probabilities, the objective and
//! `loss.backward()` stay burn's; `Policy::step` then reads the leaf's gradient
//! `∂loss/∂logits`, back-propagates it through the trace on the host and hands the
//! parameter gradients to burn's AdamW, as `GradientsParams` (added to any gradient the
//! loss reached through burn itself).
//!
//! Why: under autodiff, burn's flex backend runs a transformer as hundreds of separate
//! element-wise ops per step, single-threaded, with strided copies for every head split
//! (`docs/benchmarks.md`, sessions 6–8). Here each layer is a few GEMMs on both cores and
//! one pass per norm, activation and attention head.
//!
//! Used on CPU devices unless `FOIL_BURN_TRAIN` is set to something other than `0`;
//! tested against burn's gradients (`tiny_gpt::tests`, `hf::policy::tests`).

use std::sync::Mutex;

use burn::module::Param;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::TensorData;
use foil_core::backend::{B as FB, Device, inner_device};
use foil_core::batch::to_vec;

/// Whether a policy on `device` trains through the host path: CPU devices, unless
/// `FOIL_BURN_TRAIN` is set to something other than `0`.
pub fn use_host_train(device: &Device) -> bool {
    !foil_core::backend::is_gpu(device)
        && std::env::var("FOIL_BURN_TRAIN").map_or(true, |v| v == "0" || v.is_empty())
}

/// `f(rows)` for the batch's rows split into contiguous groups, one per rayon thread (at
/// most one per row), run side by side with each group's products kept on its own thread
/// (`foil_kernels::backprop::on_one_thread`); the results in row order.
///
/// Why: two threads splitting every product of a pass synchronise several hundred times
/// per step; two row groups synchronise twice (train step of the baseline GPT 525–553 →
/// 497–502 ms, `docs/benchmarks.md`, session 8). A row's pass does not depend on the
/// other rows, so the outputs are the same.
pub fn per_row_group<R: Send>(
    rows: usize,
    f: impl Fn(std::ops::Range<usize>) -> R + Sync,
) -> Vec<R> {
    use rayon::prelude::*;
    let parts = rayon::current_num_threads().clamp(1, rows.max(1));
    let run = |g: usize| {
        let r = rows * g / parts..rows * (g + 1) / parts;
        foil_kernels::backprop::on_one_thread(|| f(r))
    };
    if parts == 1 {
        vec![run(0)]
    } else {
        (0..parts).into_par_iter().map(run).collect()
    }
}

/// [`per_row_group`] over a `[rows, t]` batch: `f(group's rows, its tokens, positions and
/// real-token flags)`.
pub fn per_row_group_of<R: Send>(
    tokens: &[i64],
    positions: &[i64],
    valid: &[bool],
    rows: usize,
    f: impl Fn(std::ops::Range<usize>, &[i64], &[i64], &[bool]) -> R + Sync,
) -> Vec<R> {
    let t = tokens.len() / rows.max(1);
    per_row_group(rows, |r| {
        let cols = r.start * t..r.end * t;
        f(
            r,
            &tokens[cols.clone()],
            &positions[cols.clone()],
            &valid[cols],
        )
    })
}

/// The backward passes of a forward pass run in row groups ([`per_row_group_of`]):
/// `backward(group, its rows of d_logits, gradients)` for every group side by side, each on
/// its own thread, the first into `grads` and the others into `zeros()`, which
/// `add(grads, part)` then folds into `grads` in group order. `logits_len(group)` is the
/// length of the group's rows of `d_logits`.
pub fn backward_per_group<T, G, P>(
    groups: &[T],
    logits_len: impl Fn(&T) -> usize,
    d_logits: &[f32],
    grads: &mut G,
    zeros: impl Fn() -> P,
    backward: impl Fn(&T, &[f32], &mut G) + Sync,
    mut add: impl FnMut(&mut G, P),
) where
    T: Sync,
    G: Send + ?Sized,
    P: std::borrow::BorrowMut<G> + Send,
{
    use rayon::prelude::*;
    let mut extra: Vec<P> = groups.iter().skip(1).map(|_| zeros()).collect();
    let mut at = 0;
    let mut jobs = Vec::with_capacity(groups.len());
    let targets = std::iter::once(&mut *grads).chain(extra.iter_mut().map(|p| p.borrow_mut()));
    for (group, g) in groups.iter().zip(targets) {
        let len = logits_len(group);
        jobs.push((group, &d_logits[at..at + len], g));
        at += len;
    }
    jobs.into_par_iter()
        .for_each(|(group, d, g)| foil_kernels::backprop::on_one_thread(|| backward(group, d, g)));
    for part in extra {
        add(grads, part);
    }
}

/// Values per rayon task of [`add_tensors`].
const ADD_BLOCK: usize = 1 << 14;

/// `grads[i] += parts[i]` for every tensor, in blocks of 16 Ki values on rayon's threads
/// (each value is one addition, as in a sequential loop: the same sums). The sum of two
/// row groups' gradients (1 M values for the GRPO bench's Qwen2) took 0.7 ms on one
/// thread.
pub fn add_tensors(grads: &mut [Vec<f32>], parts: &[Vec<f32>]) {
    use rayon::prelude::*;
    let blocks: Vec<(&mut [f32], &[f32])> = grads
        .iter_mut()
        .zip(parts)
        .flat_map(|(g, p)| g.chunks_mut(ADD_BLOCK).zip(p.chunks(ADD_BLOCK)))
        .collect();
    blocks
        .into_par_iter()
        .for_each(|(g, p)| g.iter_mut().zip(p).for_each(|(a, b)| *a += b));
}

/// Zeroed buffers of these lengths (from the pool), filled on rayon's threads.
pub fn zeroed_tensors(lens: &[usize]) -> Vec<Vec<f32>> {
    use rayon::prelude::*;
    lens.par_iter()
        .map(|&n| foil_kernels::pool::zeroed(n))
        .collect()
}

/// The row groups' outputs, one after another, in one buffer (from the pool; the parts
/// go back to it).
pub fn concat(parts: Vec<Vec<f32>>) -> Vec<f32> {
    if parts.len() == 1 {
        return parts.into_iter().next().expect("one part");
    }
    let mut all = foil_kernels::pool::take(parts.iter().map(Vec::len).sum());
    let mut at = 0;
    for p in parts {
        all[at..at + p.len()].copy_from_slice(&p);
        at += p.len();
        foil_kernels::pool::give(p);
    }
    all
}

/// A batch's token ids, positions and real-token flags, row-major `[rows, t]`, read back
/// from its tensors.
pub struct HostInput {
    pub tokens: Vec<i64>,
    pub positions: Vec<i64>,
    pub valid: Vec<bool>,
    pub rows: usize,
    pub t: usize,
}

impl HostInput {
    pub fn new(input: &foil_core::batch::SeqInput) -> Self {
        let [rows, t] = input.tokens.dims();
        Self {
            tokens: super::ids(input.tokens.clone()),
            positions: super::ids(input.positions.clone()),
            valid: super::ids(input.key_valid.clone().int())
                .iter()
                .map(|&v| v != 0)
                .collect(),
            rows,
            t,
        }
    }
}

/// One trainable parameter of a burn module, read into a host copy and given its host
/// gradient back.
pub enum ParamRef<'a> {
    Vector(&'a Param<Tensor<FB, 1>>),
    Matrix(&'a Param<Tensor<FB, 2>>),
}

impl ParamRef<'_> {
    /// The parameter's values, row-major.
    pub fn read(&self) -> Vec<f32> {
        match self {
            Self::Vector(p) => to_vec(p.val()),
            Self::Matrix(p) => to_vec(p.val()),
        }
    }

    /// The parameter's dtype (f32, or bf16 for `hf`'s `dtype: bf16`).
    pub fn dtype(&self) -> burn::tensor::DType {
        match self {
            Self::Vector(p) => p.val().dtype(),
            Self::Matrix(p) => p.val().dtype(),
        }
    }

    /// Whether the parameter takes gradients (frozen ones, e.g. base weights under LoRA,
    /// do not).
    pub fn trainable(&self) -> bool {
        match self {
            Self::Vector(p) => p.val().is_require_grad(),
            Self::Matrix(p) => p.val().is_require_grad(),
        }
    }

    /// The gradient `grads` holds for this parameter, row-major.
    pub fn grad(&self, grads: &GradientsParams) -> Option<Vec<f32>> {
        match self {
            Self::Vector(p) => grads.get::<FB, 1>(p.id).map(to_vec),
            Self::Matrix(p) => grads.get::<FB, 2>(p.id).map(to_vec),
        }
    }

    /// Registers `grad` (same shape, row-major) as this parameter's gradient, added to the
    /// one `grads` already holds for it.
    pub fn register(&self, grad: Vec<f32>, grads: &mut GradientsParams) {
        fn add<const D: usize>(
            p: &Param<Tensor<FB, D>>,
            grad: Vec<f32>,
            grads: &mut GradientsParams,
        ) {
            let device = inner_device(&p.val().device());
            let mut g = Tensor::<FB, D>::from_data(TensorData::new(grad, p.dims()), &device);
            if let Some(burn) = grads.remove::<FB, D>(p.id) {
                g = g + burn;
            }
            grads.register::<FB, D>(p.id, g);
        }
        match self {
            Self::Vector(p) => add(p, grad, grads),
            Self::Matrix(p) => add(p, grad, grads),
        }
    }
}

/// What a host forward pass handed to the autodiff graph, as a leaf.
enum Leaf {
    /// The logits `[rows, t, vocab]`.
    Logits(Tensor<FB, 3>),
    /// The log-probabilities of `targets` (`[rows, t − 1]`) under the logits, which the
    /// backward pass reads again.
    LogProbs {
        leaf: Tensor<FB, 2>,
        logits: Vec<f32>,
        targets: Vec<usize>,
        t: usize,
    },
}

/// A host forward pass waiting for its gradient.
struct Traced<T> {
    leaf: Leaf,
    trace: T,
}

/// The host forward passes of a policy since its last step, waiting for their gradients.
///
/// Each keeps its trace (every activation of the pass) until the next `Policy::step` or
/// `load`, whether or not a loss reads it: a caller that runs `Policy::forward` for
/// evaluation should use `Policy::inference()` instead, which keeps nothing.
pub struct Pending<T> {
    passes: Mutex<Vec<Traced<T>>>,
}

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Self {
            passes: Mutex::new(Vec::new()),
        }
    }
}

impl<T> Pending<T> {
    fn push(&self, leaf: Leaf, trace: T) {
        self.passes
            .lock()
            .expect("no pass panicked while holding the list")
            .push(Traced { leaf, trace });
    }

    /// Keeps `trace` and returns `logits` (`dims`) as an autodiff leaf on `device`.
    pub fn record(
        &self,
        logits: Vec<f32>,
        dims: [usize; 3],
        device: &Device,
        trace: T,
    ) -> Tensor<FB, 3> {
        let leaf = Tensor::<FB, 3>::from_data(TensorData::new(logits, dims), device).require_grad();
        self.push(Leaf::Logits(leaf.clone()), trace);
        leaf
    }

    /// Keeps `trace` and returns `log softmax(logits)[targets]` for the first `t − 1`
    /// columns of every row (`logits` `[rows·t, vocab]`, `targets` `[rows, t − 1]`) as an
    /// autodiff leaf `[rows, t − 1]` on `device`: `Policy::token_logprobs` without the
    /// logits ever reaching burn.
    pub fn record_logprobs(
        &self,
        logits: Vec<f32>,
        t: usize,
        targets: &[i64],
        device: &Device,
        trace: T,
    ) -> Tensor<FB, 2> {
        let rows = targets.len() / (t - 1).max(1);
        let targets: Vec<usize> = targets.iter().map(|&x| x as usize).collect();
        let lp = foil_kernels::backprop::token_logprobs(&logits, &targets, rows, t);
        let leaf =
            Tensor::<FB, 2>::from_data(TensorData::new(lp, [rows, t - 1]), device).require_grad();
        let kept = Leaf::LogProbs {
            leaf: leaf.clone(),
            logits,
            targets,
            t,
        };
        self.push(kept, trace);
        leaf
    }

    /// Whether no pass waits for a step.
    pub fn passes_is_empty(&self) -> bool {
        self.passes.lock().expect("list not poisoned").is_empty()
    }

    /// Forgets every pending pass (after a step, or when the weights are replaced).
    pub fn clear(&self) {
        self.passes.lock().expect("list not poisoned").clear();
    }

    /// Back-propagates `loss`: burn's gradients of `model`'s parameters, plus, through
    /// `backward(trace, ∂loss/∂logits)`, those of every pending host pass the loss depends
    /// on. Clears the pending passes.
    pub fn gradients<M: burn::module::AutodiffModule<FB>>(
        &self,
        model: &M,
        loss: Tensor<FB, 1>,
        mut backward: impl FnMut(&T, &[f32]),
    ) -> GradientsParams {
        let raw = loss.backward();
        let passes = std::mem::take(&mut *self.passes.lock().expect("list not poisoned"));
        for pass in &passes {
            match &pass.leaf {
                Leaf::Logits(leaf) => {
                    if let Some(g) = leaf.grad(&raw) {
                        backward(&pass.trace, &to_vec(g));
                    }
                }
                Leaf::LogProbs {
                    leaf,
                    logits,
                    targets,
                    t,
                } => {
                    if let Some(g) = leaf.grad(&raw) {
                        let d_logits = foil_kernels::backprop::token_logprobs_backward(
                            logits,
                            targets,
                            &to_vec(g),
                            *t,
                        );
                        backward(&pass.trace, &d_logits);
                        foil_kernels::pool::give(d_logits);
                    }
                }
            }
        }
        for pass in passes {
            if let Leaf::LogProbs { logits, .. } = pass.leaf {
                foil_kernels::pool::give(logits);
            }
        }
        GradientsParams::from_grads::<FB, _>(raw, model)
    }
}

/// What the host-versus-burn gradient tests of `tiny_gpt` and `hf` share.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use foil_core::batch::{SeqBatch, token_logprobs};
    use foil_core::policy::Policy;

    /// `−Σ wᵢ·log π / divisor` over left-padded `rows`, with `wᵢ = weight(i)` for the
    /// predictions made at real columns of real tokens and 0 elsewhere: a left-padding
    /// column sees no real key, and what either path computes there is not a prediction
    /// (burn's attends uniformly to every key, the host path to the keys up to it).
    /// `fused`: through `Policy::token_logprobs` instead of burn's log-softmax over
    /// `Policy::forward`'s logits.
    pub(crate) fn weighted_nll(
        policy: &dyn Policy,
        rows: &[(&[u32], &[u32])],
        fused: bool,
        weight: impl Fn(usize) -> f32,
        divisor: f32,
    ) -> Tensor<FB, 1> {
        let device = policy.device();
        let (seqs, _) = SeqBatch::prompt_response(rows, 0);
        let input = seqs.to_input(&device);
        let targets = input.tokens.clone().slice([0..seqs.n, 1..seqs.t]);
        let lp = if fused {
            policy.token_logprobs(&input, targets)
        } else {
            token_logprobs(policy.forward(&input), targets)
        };
        let w: Vec<f32> = (0..seqs.n * (seqs.t - 1))
            .map(|i| {
                let column = i + i / (seqs.t - 1);
                if seqs.valid[column] && seqs.valid[column + 1] {
                    weight(i)
                } else {
                    0.0
                }
            })
            .collect();
        let w = Tensor::<FB, 2>::from_data(TensorData::new(w, [seqs.n, seqs.t - 1]), &device);
        (lp * w).sum().neg().div_scalar(divisor)
    }

    /// Asserts that the gradients `got` (host path) and `want` (burn) agree parameter by
    /// parameter (`host` and `burn` list the same parameters of two identical models):
    /// the same ones have a gradient, each non-zero and within 1e-4 of its tensor's
    /// largest entry. Returns how many parameters had one.
    pub(crate) fn assert_same_gradients(
        host: &[ParamRef],
        got: &GradientsParams,
        burn: &[ParamRef],
        want: &GradientsParams,
        what: &str,
    ) -> usize {
        assert_eq!(host.len(), burn.len());
        let mut trained = 0;
        for (i, (h, b)) in host.iter().zip(burn).enumerate() {
            assert_eq!(h.trainable(), b.trainable(), "{what}: parameter {i}");
            let (g, w) = (h.grad(got), b.grad(want));
            assert_eq!(g.is_some(), w.is_some(), "{what}: parameter {i}");
            let (Some(g), Some(w)) = (g, w) else { continue };
            trained += 1;
            let scale = w.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert!(scale > 0.0, "{what}: parameter {i} has a zero gradient");
            for (j, (a, b)) in g.iter().zip(&w).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-4 * scale + 1e-7,
                    "{what}: parameter {i}[{j}]: {a} vs {b} (scale {scale})"
                );
            }
        }
        trained
    }

    /// The largest |Δ| between two policies' logits on the same rows, over the largest
    /// |logit| of `a`.
    pub(crate) fn relative_logit_gap(a: &dyn Policy, b: &dyn Policy) -> f32 {
        let input = SeqBatch::left_padded(&[vec![1, 2, 3, 4], vec![5, 6]], 0).to_input(&a.device());
        let (x, y) = (to_vec(a.forward(&input)), to_vec(b.forward(&input)));
        assert_eq!(x.len(), y.len());
        let gap = x
            .iter()
            .zip(&y)
            .map(|(u, v)| (u - v).abs())
            .fold(0.0, f32::max);
        gap / x.iter().fold(0.0f32, |m, u| m.max(u.abs()))
    }

    /// Cosine similarity of the gradients `a` and `b` of each parameter that has a
    /// non-zero one in either (`a_refs`, `b_refs` list the same parameters of two models).
    pub(crate) fn gradient_cosines(
        a_refs: &[ParamRef],
        a: &GradientsParams,
        b_refs: &[ParamRef],
        b: &GradientsParams,
    ) -> Vec<f32> {
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        a_refs
            .iter()
            .zip(b_refs)
            .filter_map(|(p, q)| Some((p.grad(a)?, q.grad(b)?)))
            .filter(|(g, h)| g.iter().chain(h).any(|&x| x != 0.0))
            .map(|(g, h)| {
                let dot: f32 = g.iter().zip(&h).map(|(x, y)| x * y).sum();
                dot / (norm(&g) * norm(&h)).max(1e-30)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The blocked parallel sum adds every value once, across block edges, ragged tails
    /// and empty (frozen) tensors; zeroed tensors have the asked lengths.
    #[test]
    fn tensors_add_elementwise_across_blocks() {
        let lens = [0, 3, ADD_BLOCK + 5, 2 * ADD_BLOCK];
        let make = |k: f32| -> Vec<Vec<f32>> {
            lens.iter()
                .map(|&n| (0..n).map(|i| (i as f32 * k).sin()).collect())
                .collect()
        };
        let (mut grads, parts) = (make(0.3), make(0.7));
        let want: Vec<Vec<f32>> = grads
            .iter()
            .zip(&parts)
            .map(|(g, p)| g.iter().zip(p).map(|(a, b)| a + b).collect())
            .collect();
        add_tensors(&mut grads, &parts);
        assert_eq!(grads, want);
        let zeros = zeroed_tensors(&lens);
        assert_eq!(zeros.iter().map(Vec::len).collect::<Vec<_>>(), lens);
        assert!(zeros.iter().flatten().all(|&v| v == 0.0));
    }
}
