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

/// A host forward pass whose logits are a leaf of the autodiff graph.
struct Traced<T> {
    leaf: Tensor<FB, 3>,
    trace: T,
}

/// The host forward passes of a policy since its last step, waiting for their gradients.
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
    /// Keeps `trace` and returns `logits` (`dims`) as an autodiff leaf on `device`.
    pub fn record(
        &self,
        logits: Vec<f32>,
        dims: [usize; 3],
        device: &Device,
        trace: T,
    ) -> Tensor<FB, 3> {
        let leaf = Tensor::<FB, 3>::from_data(TensorData::new(logits, dims), device).require_grad();
        self.passes
            .lock()
            .expect("no pass panicked while holding the list")
            .push(Traced {
                leaf: leaf.clone(),
                trace,
            });
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
            if let Some(g) = pass.leaf.grad(&raw) {
                backward(&pass.trace, &to_vec(g));
            }
        }
        GradientsParams::from_grads::<FB, _>(raw, model)
    }
}
