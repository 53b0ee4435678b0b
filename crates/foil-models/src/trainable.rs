//! What every trainable policy of this crate does the same way: one AdamW step, the
//! optimizer a stage asks for, checkpoints of weights + optimizer state, the additive
//! attention mask (causal + padding) and attention itself.

use std::path::Path;

use anyhow::Context;
use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::nn::Linear;
use burn::optim::{GradientsParams, Optimizer};
use burn::record::{BinFileRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use foil_core::backend::{B as FB, Device, inner_device};
use foil_core::grad_sync::GradientSync;
use foil_core::policy::OptimizerConfig;

pub use crate::adamw::{Adam, FusedAdamW};

const WEIGHTS: &str = "model";
const OPTIMIZER: &str = "optimizer";

/// AdamW ([`FusedAdamW`]: burn's formula and state, fused on the CPU) for a stage's
/// optimizer settings (clipping is burn's per-parameter norm; ε is burn's default, 1e-5).
pub fn adamw<M: AutodiffModule<FB>>(config: &OptimizerConfig) -> Adam<M> {
    let OptimizerConfig::Adamw {
        beta1,
        beta2,
        weight_decay,
        grad_clip,
        ..
    } = config;
    FusedAdamW {
        beta1: *beta1,
        beta2: *beta2,
        weight_decay: *weight_decay,
        clip_norm: *grad_clip,
        ..Default::default()
    }
    .init()
}

/// Back-propagates `loss` and applies one optimizer step to `model`.
pub fn step<M: AutodiffModule<FB>>(
    model: M,
    optim: &mut Adam<M>,
    loss: Tensor<FB, 1>,
    lr: f64,
) -> M {
    let grads = gradients(&model, loss);
    optim.step(lr, model, grads)
}

/// burn's gradients of `model`'s parameters: `loss.backward()` through the autodiff graph.
pub fn gradients<M: AutodiffModule<FB>>(model: &M, loss: Tensor<FB, 1>) -> GradientsParams {
    GradientsParams::from_grads::<FB, _>(loss.backward(), model)
}

/// Data-parallel half of a step: replaces each of this replica's gradients `grads` (of its
/// own loss) by its mean over the replicas through `sync` (then the caller applies the
/// optimizer step with the result, as [`step`] does).
///
/// Parameters are visited in the module's fixed field order, identical on every replica
/// built from the same config. Each trainable parameter's gradient is removed, flattened to
/// 1-D, all-reduced, reshaped and registered back; a trainable parameter without a gradient
/// on this shard (its loss does not reach it, e.g. an unused token embedding row keeps one,
/// but a whole unused tensor does not) contributes zeros, so every replica reduces the same
/// tensors. Parameters that take no gradients (LoRA base weights, `no_grad`) are skipped on
/// every replica alike.
pub fn synced_grads<M: AutodiffModule<FB>>(
    model: &M,
    grads: GradientsParams,
    sync: &mut dyn GradientSync,
) -> anyhow::Result<GradientsParams> {
    struct Reduce<'a> {
        grads: GradientsParams,
        sync: &'a mut dyn GradientSync,
        error: Option<anyhow::Error>,
    }
    impl ModuleVisitor<FB> for Reduce<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<FB, D>>) {
            if self.error.is_some() {
                return;
            }
            let value = param.val();
            if !value.is_require_grad() {
                return;
            }
            let dims = value.dims();
            let n = dims.iter().product::<usize>();
            let grad = match self.grads.remove::<FB, D>(param.id) {
                Some(g) => g.reshape([n]),
                None => Tensor::<FB, 1>::zeros([n], &inner_device(&value.device())),
            };
            match self.sync.all_reduce_mean(grad) {
                Ok(mean) => self.grads.register::<FB, D>(param.id, mean.reshape(dims)),
                Err(e) => {
                    self.error = Some(e.context(format!(
                        "all-reducing the gradient of a parameter of shape {dims:?}"
                    )))
                }
            }
        }
    }
    let mut visitor = Reduce {
        grads,
        sync,
        error: None,
    };
    model.visit(&mut visitor);
    match visitor.error {
        Some(e) => Err(e),
        None => Ok(visitor.grads),
    }
}

/// One data-parallel optimizer step of the model in `slot` with this replica's gradients
/// `grads`: [`synced_grads`], then the same AdamW step as [`step`]. On an error the model
/// stays in `slot`, unchanged.
pub fn step_synced<M: AutodiffModule<FB>>(
    slot: &mut Option<M>,
    optim: &mut Adam<M>,
    grads: GradientsParams,
    lr: f64,
    sync: &mut dyn GradientSync,
) -> anyhow::Result<()> {
    let model = slot.take().context("no model present")?;
    match synced_grads(&model, grads, sync) {
        Ok(grads) => {
            *slot = Some(optim.step(lr, model, grads));
            Ok(())
        }
        Err(e) => {
            *slot = Some(model);
            Err(e)
        }
    }
}

/// Writes `model`'s weights and the optimizer state into `dir`.
pub fn save<M: AutodiffModule<FB>>(
    model: &M,
    optim: &Adam<M>,
    dir: &Path,
    what: &str,
) -> anyhow::Result<()> {
    let rec = BinFileRecorder::<FullPrecisionSettings>::new();
    Recorder::<FB>::record(&rec, model.clone().into_record(), dir.join(WEIGHTS))
        .with_context(|| format!("saving {what} weights"))?;
    Recorder::<FB>::record(&rec, optim.to_record(), dir.join(OPTIMIZER))
        .context("saving optimizer state")?;
    Ok(())
}

/// Reads what [`save`] wrote into `model` and `optim` (weights on the training device,
/// optimizer moments on the inner device).
pub fn load<M: AutodiffModule<FB>>(
    model: M,
    optim: Adam<M>,
    dir: &Path,
    device: &Device,
    what: &str,
) -> anyhow::Result<(M, Adam<M>)> {
    let rec = BinFileRecorder::<FullPrecisionSettings>::new();
    let weights = Recorder::<FB>::load(&rec, dir.join(WEIGHTS), device)
        .with_context(|| format!("loading {what} weights from {}", dir.display()))?;
    let state = Recorder::<FB>::load(&rec, dir.join(OPTIMIZER), &inner_device(device))
        .with_context(|| format!("loading optimizer state from {}", dir.display()))?;
    Ok((model.load_record(weights), optim.load_record(state)))
}

/// `0` for real keys, `−1e9` for padding: `valid` (1/0) `[n, t]` → `[n, 1, 1, t]`.
pub fn key_bias<B: Backend>(valid: Tensor<B, 2>) -> Tensor<B, 4> {
    let [n, t] = valid.dims();
    (valid - 1.0).mul_scalar(1e9).reshape([n, 1, 1, t])
}

/// `f` applied to `x` with its leading axes folded into rows: `[.., d_in]` →
/// `[rows, d_in]` → `f` → `[.., d_out]`. Reshapes of a contiguous tensor are free.
///
/// Why: burn's `linear` multiplies a 3-D input by the weight broadcast to
/// `[1, d_in, d_out]`, which flex runs as one small GEMM per batch row (for a decode step,
/// 16 GEMMs with a single row each), and whose weight gradient it computes as a batched
/// `xᵀ·g` `[n, d_in, d_out]` summed over `n` afterwards: `n` weight-sized temporaries
/// per layer per step. Folded, each is one `[rows, d_in] × [d_in, d_out]` GEMM forward and
/// one `[d_in, rows] × [rows, d_out]` for the weight gradient. Same numbers to rounding
/// (test `tests::row_folded_linear_matches_the_broadcast_one`).
pub fn fold_rows<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    f: impl FnOnce(Tensor<B, 2>) -> Tensor<B, 2>,
) -> Tensor<B, D> {
    let mut dims = x.dims();
    let rows = dims[..D - 1].iter().product();
    let y = f(x.reshape([rows, dims[D - 1]]));
    dims[D - 1] = y.dims()[1];
    y.reshape(dims)
}

/// `layer(x)` over the last axis of `x` as one 2-D GEMM ([`fold_rows`]).
pub fn linear_rows<B: Backend, const D: usize>(layer: &Linear<B>, x: Tensor<B, D>) -> Tensor<B, D> {
    fold_rows(x, |x| layer.forward(x))
}

/// Whether burn's ops on `device` run as compiled kernels through its fusion stream (the GPU
/// backends: CUDA, and Vulkan with `--features vulkan`) rather than on a CPU backend (flex,
/// ndarray). Some ops are cheaper one way on one and another way on the other: see
/// [`attend`] and `hf::rope::Rotation::apply`.
pub fn compiles_kernels<B: Backend>(device: &B::Device) -> bool {
    (device as &dyn std::any::Any)
        .downcast_ref::<foil_core::backend::Device>()
        .is_some_and(foil_core::backend::is_gpu)
}

/// `softmax(q kᵀ / √d_h + bias) v` over `[n, h, t, d_h]` heads, with `bias` the additive
/// causal + padding mask `[n, 1, t_q, t_k]` (broadcast over heads and, for grouped heads,
/// over query rows).
///
/// On the CPU backends it goes through burn's `attention` op: without autodiff (rollouts,
/// evaluation, frozen log-probs) flex runs it as one fused kernel per batch and head, with
/// no score tensors materialised; under autodiff burn computes the same formula from
/// separate ops and derives the backward (its `attention_fallback`, with NaN guards for
/// fully masked rows that the −1e9 additive mask never needs). The two agree to 1e-4 on
/// logits (test `tiny_gpt::tests::fused_inference_attention_matches_the_trained_forward`).
///
/// On the GPU backends ([`compiles_kernels`]) it is written out as tensor ops: burn-cubecl's
/// `attention` runs its flash kernel only without an additive mask, and otherwise that
/// same fallback as 13 unfused kernels outside the fusion stream (matmul, scale, mask add,
/// max, compare, mask fill, subtract, exp, sum, compare, mask fill, divide, matmul), where
/// the ops below fuse into 6 (two matmuls, the scale and mask fused into the first, two
/// reductions and two element-wise passes). Counted with cubecl's kernel log on Mesa's
/// lavapipe (`docs/benchmarks.md`, session 14).
pub fn attend<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    bias: Tensor<B, 4>,
) -> Tensor<B, 4> {
    // the mask is built in f32; bf16 passes (`crate::precision`) add it in their dtype
    // (callers cast it once per forward, which makes this a no-op)
    let bias = bias.cast(q.dtype());
    if compiles_kernels::<B>(&q.device()) {
        return attend_ops(q, k, v, bias);
    }
    burn::tensor::module::attention(
        q,
        k,
        v,
        None,
        Some(bias),
        burn::tensor::ops::AttentionModuleOptions {
            scale: None,
            softcap: None,
            is_causal: false,
        },
    )
}

/// [`attend`] as plain tensor ops, which burn's fusion can fuse on a GPU backend.
fn attend_ops<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    bias: Tensor<B, 4>,
) -> Tensor<B, 4> {
    let scale = 1.0 / (q.dims()[3] as f64).sqrt();
    let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(scale) + bias;
    burn::tensor::activation::softmax(scores, 3).matmul(v)
}

/// Additive mask for `t` queries over `t` keys: `0` where `j ≤ i` and key `j` is real,
/// `−1e9` elsewhere, `[n, 1, t, t]`, from the key bias of [`key_bias`].
pub fn causal_bias<B: Backend>(key_bias: Tensor<B, 4>, device: &B::Device) -> Tensor<B, 4> {
    let t = key_bias.dims()[3];
    let causal: Vec<f32> = (0..t * t)
        .map(|ij| if ij % t > ij / t { -1e9 } else { 0.0 })
        .collect();
    Tensor::<B, 2>::from_data(TensorData::new(causal, [t, t]), device).reshape([1, 1, t, t])
        + key_bias
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiny_gpt::{TinyGpt, TinyGptModel};
    use burn::module::{Module, ParamId};
    use foil_core::backend::{materialize, parse_device, train_device, with_seed};
    use foil_core::batch::{SeqBatch, to_vec, token_logprobs};
    use foil_core::grad_sync::ThreadAllReduce;

    /// Folding the rows changes how flex schedules the GEMMs, not what they compute: the
    /// output and both gradients equal burn's broadcast `linear` to float rounding, and a
    /// weight given a different entry would not.
    #[test]
    fn row_folded_linear_matches_the_broadcast_one() {
        use burn::nn::LinearConfig;
        let device = train_device(&parse_device("cpu").unwrap());
        let layer: Linear<FB> = with_seed(&device, 3, || {
            materialize(LinearConfig::new(6, 5).init(&device))
        });
        let xs: Vec<f32> = (0..2 * 3 * 6)
            .map(|i| ((i * 7 % 11) as f32 - 5.0) / 4.0)
            .collect();
        let x = || {
            Tensor::<FB, 3>::from_data(TensorData::new(xs.clone(), [2, 3, 6]), &device)
                .require_grad()
        };
        // a weighted sum so every output element has its own gradient
        let w: Vec<f32> = (0..2 * 3 * 5).map(|i| (i % 4) as f32 - 1.5).collect();
        let weights = Tensor::<FB, 3>::from_data(TensorData::new(w, [2, 3, 5]), &device);
        let run = |y: Tensor<FB, 3>, x: &Tensor<FB, 3>| {
            let out = to_vec(y.clone());
            let grads = (y * weights.clone()).sum().backward();
            let gx = to_vec(x.grad(&grads).unwrap());
            let gw = to_vec(layer.weight.val().grad(&grads).unwrap());
            let gb = to_vec(layer.bias.as_ref().unwrap().val().grad(&grads).unwrap());
            (out, gx, gw, gb)
        };
        let (x1, x2) = (x(), x());
        let broadcast = run(layer.forward(x1.clone()), &x1);
        let folded = run(linear_rows(&layer, x2.clone()), &x2);
        let close = |a: &[f32], b: &[f32]| {
            assert_eq!(a.len(), b.len());
            a.iter().zip(b).all(|(a, b)| (a - b).abs() < 1e-5)
        };
        assert!(close(&broadcast.0, &folded.0), "outputs differ");
        assert!(close(&broadcast.1, &folded.1), "input gradients differ");
        assert!(close(&broadcast.2, &folded.2), "weight gradients differ");
        assert!(close(&broadcast.3, &folded.3), "bias gradients differ");
        // the weight gradient is Σ_rows xᵀ·g: 6 rows contribute, so it is not a copy of one
        assert!(broadcast.2.iter().any(|v| v.abs() > 1e-3));
        assert_eq!(folded.0.len(), 2 * 3 * 5);
    }

    /// The GPU backends' attention (plain ops) computes what burn's `attention` op does on
    /// flex: 2 rows, 2 heads, 3 queries over 5 keys, a causal + padding mask of −1e9 (row
    /// 1's first key is padding), and a mask broadcast over query rows as grouped decode
    /// steps use it. On the CPU, `attend` itself takes burn's op.
    #[test]
    fn attention_as_plain_ops_matches_burns_attention() {
        use burn::tensor::Distribution;
        let device = foil_core::backend::parse_device("cpu").unwrap();
        assert!(!compiles_kernels::<FB>(&device));
        assert!(!compiles_kernels::<FB>(&foil_core::backend::train_device(
            &device
        )));
        let random = |shape: [usize; 4], seed: u64| {
            foil_core::backend::with_seed(&device, seed, || {
                Tensor::<FB, 4>::random(shape, Distribution::Normal(0.0, 1.0), &device)
            })
        };
        let (q, k, v) = (
            random([2, 2, 3, 8], 1),
            random([2, 2, 5, 8], 2),
            random([2, 2, 5, 8], 3),
        );
        // distinct keys and values, so that swapping them would show
        assert_ne!(to_vec(k.clone()), to_vec(v.clone()));
        // query i sees keys 0..=i + 2; row 1 also never sees key 0
        let mask: Vec<f32> = (0..2 * 3 * 5)
            .map(|x| {
                let (row, i, j) = (x / 15, x / 5 % 3, x % 5);
                if j > i + 2 || (row == 1 && j == 0) {
                    -1e9
                } else {
                    0.0
                }
            })
            .collect();
        let full = Tensor::<FB, 4>::from_data(TensorData::new(mask, [2, 1, 3, 5]), &device);
        let last_row = full.clone().slice([0..2, 0..1, 2..3, 0..5]);
        for bias in [full, last_row] {
            let want = burn::tensor::module::attention(
                q.clone(),
                k.clone(),
                v.clone(),
                None,
                Some(bias.clone()),
                burn::tensor::ops::AttentionModuleOptions {
                    scale: None,
                    softcap: None,
                    is_causal: false,
                },
            );
            let got = attend_ops(q.clone(), k.clone(), v.clone(), bias.clone());
            let (got, want) = (to_vec(got), to_vec(want));
            assert_eq!(got.len(), 2 * 2 * 3 * 8);
            for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                assert!((a - b).abs() < 1e-5, "{i}: {a} vs {b}");
            }
            assert_eq!(to_vec(attend(q.clone(), k.clone(), v.clone(), bias)), want);
        }
    }

    /// Every float parameter's id, in visiting order.
    fn param_ids(model: &TinyGptModel<FB>) -> Vec<ParamId> {
        struct Ids(Vec<ParamId>);
        impl ModuleVisitor<FB> for Ids {
            fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<FB, D>>) {
                self.0.push(p.id);
            }
        }
        let mut ids = Ids(Vec::new());
        model.visit(&mut ids);
        ids.0
    }

    /// Per-token mean NLL of `rows` (all the same length, no padding): every row has
    /// `len − 1` loss tokens.
    fn nll(model: &TinyGptModel<FB>, rows: &[Vec<u32>], device: &Device) -> Tensor<FB, 1> {
        let (seqs, _) = SeqBatch::prompt_response(
            &rows
                .iter()
                .map(|r| (&r[..1], &r[1..]))
                .collect::<Vec<(&[u32], &[u32])>>(),
            0,
        );
        let input = seqs.to_input(device);
        let targets = input.tokens.clone().slice([0..seqs.n, 1..seqs.t]);
        let logits = model.forward(input.tokens, input.positions, input.key_valid);
        token_logprobs(logits, targets).mean().neg()
    }

    /// Every parameter's gradient, flattened, in visiting order.
    fn all_grads(g: &GradientsParams, model: &TinyGptModel<FB>) -> Vec<Vec<f32>> {
        struct Collect<'a>(&'a GradientsParams, Vec<Vec<f32>>);
        impl ModuleVisitor<FB> for Collect<'_> {
            fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<FB, D>>) {
                let g = self
                    .0
                    .get::<FB, D>(p.id)
                    .expect("every parameter has a gradient");
                self.1.push(to_vec(g));
            }
        }
        let mut c = Collect(g, Vec::new());
        model.visit(&mut c);
        c.1
    }

    #[test]
    fn two_synced_shards_give_the_full_batch_gradient() {
        // Four rows of 5 tokens (1 prompt + 4 response), no padding: each row has 4 loss
        // tokens. The loss is the per-token mean NLL, so
        //   L(full) = (1/16) Σ_16 tokens = ½·[(1/8) Σ_shard0 + (1/8) Σ_shard1]
        //           = ½·(L(shard0) + L(shard1)),
        // and by linearity ∇L(full) = ½·(∇L(shard0) + ∇L(shard1)): exactly what the mean
        // all-reduce of two peers gives. Tolerance 1e-5 absolute + 1e-3 relative: the
        // two sides sum the same float terms in a different order (f32 rounding only).
        let device = train_device(&parse_device("cpu").unwrap());
        let cfg = TinyGpt {
            d_model: 16,
            layers: 1,
            heads: 2,
            context: 8,
            mlp_ratio: 2,
            init_seed: 0,
            precision: Default::default(),
        };
        let model = with_seed(&device, 7, || materialize(cfg.init_model::<FB>(9, &device)));
        let rows: Vec<Vec<u32>> = vec![
            vec![1, 2, 3, 4, 5],
            vec![2, 4, 6, 8, 1],
            vec![3, 3, 7, 7, 2],
            vec![8, 6, 4, 2, 0],
        ];
        let ids = param_ids(&model);
        let full =
            GradientsParams::from_grads::<FB, _>(nll(&model, &rows, &device).backward(), &model);
        let full = all_grads(&full, &model);

        let shard_raw: Vec<Vec<Vec<f32>>> = rows
            .chunks(2)
            .map(|shard| {
                let loss = nll(&model, shard, &device);
                all_grads(
                    &GradientsParams::from_grads::<FB, _>(loss.backward(), &model),
                    &model,
                )
            })
            .collect();
        let peers = ThreadAllReduce::group(2).unwrap();
        let synced: Vec<Vec<Vec<f32>>> = std::thread::scope(|s| {
            let handles: Vec<_> = peers
                .into_iter()
                .zip(rows.chunks(2))
                .map(|(mut peer, shard)| {
                    let (model, device) = (model.clone(), device.clone());
                    s.spawn(move || {
                        let loss = nll(&model, shard, &device);
                        all_grads(
                            &synced_grads(&model, gradients(&model, loss), &mut peer).unwrap(),
                            &model,
                        )
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });

        let max_diff = |a: &[Vec<f32>], b: &[Vec<f32>]| {
            a.iter()
                .flatten()
                .zip(b.iter().flatten())
                .map(|(x, y)| (x - y).abs() / (1e-5 + 1e-3 * x.abs().max(y.abs())))
                .fold(0.0f32, f32::max)
        };
        assert_eq!(synced[0].len(), ids.len());
        // both peers hold the same reduced gradient, and it is the full batch's
        assert_eq!(max_diff(&synced[0], &synced[1]), 0.0);
        let d = max_diff(&synced[0], &full);
        assert!(d <= 1.0, "synced vs full-batch gradient: {d} tolerances");
        // the shards' own gradients are not the full one (so the check above can fail)
        for (i, raw) in shard_raw.iter().enumerate() {
            let d = max_diff(raw, &full);
            assert!(
                d > 10.0,
                "shard {i} alone is already the full gradient ({d})"
            );
        }
    }
}
