//! What every trainable policy of this crate does the same way: one AdamW step, the
//! optimizer a stage asks for, checkpoints of weights + optimizer state, and the additive
//! attention mask (causal + padding).

use std::path::Path;

use anyhow::Context;
use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, GradientsParams, Optimizer};
use burn::record::{BinFileRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use foil_core::backend::{B as FB, Device, inner_device};
use foil_core::policy::OptimizerConfig;

/// A model with its AdamW state, as the policies hold them.
pub type Adam<M> = OptimizerAdaptor<AdamW, M, FB>;

const WEIGHTS: &str = "model";
const OPTIMIZER: &str = "optimizer";

/// burn's AdamW for a stage's optimizer settings (clipping is burn's per-parameter norm).
pub fn adamw<M: AutodiffModule<FB>>(config: &OptimizerConfig) -> Adam<M> {
    let OptimizerConfig::Adamw {
        beta1,
        beta2,
        weight_decay,
        grad_clip,
        ..
    } = config;
    let mut c = AdamWConfig::new()
        .with_beta_1(*beta1)
        .with_beta_2(*beta2)
        .with_weight_decay(*weight_decay);
    if let Some(g) = grad_clip {
        c = c.with_grad_clipping(Some(burn::grad_clipping::GradientClippingConfig::Norm(*g)));
    }
    c.init()
}

/// Back-propagates `loss` and applies one optimizer step to `model`.
pub fn step<M: AutodiffModule<FB>>(
    model: M,
    optim: &mut Adam<M>,
    loss: Tensor<FB, 1>,
    lr: f64,
) -> M {
    let grads = GradientsParams::from_grads::<FB, _>(loss.backward(), &model);
    optim.step(lr, model, grads)
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
