//! foil's AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019):
//! burn's formula, burn's optimizer state, one fused pass per tensor on the CPU.
//!
//! ```text
//! g ← g · min(1, c / (‖g‖₂ + tiny))     per tensor, when clipping at norm c (tiny: the
//!                                         dtype's smallest positive value, as burn's)
//! m ← β₁·m + (1 − β₁)·g,   v ← β₂·v + (1 − β₂)·g²
//! θ ← θ·(1 − η·λ) − η · (m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε)
//! ```
//!
//! [`FusedAdamW`] is a burn [`SimpleOptimizer`] whose state is burn's own [`AdamWState`],
//! so its checkpoints (`optimizer.bin`) are the ones burn's `AdamW` writes and reads. On a
//! flex (CPU) device with f32 tensors the step runs as `foil_kernels::adamw`: the tensors'
//! buffers are taken out of burn (no copy when nothing else holds them), updated in place
//! and handed back. Anywhere else (CUDA, ndarray, bf16) it runs the same formula as tensor
//! ops, op for op as burn's `AdamW` + `GradientClipping::Norm` do.
//!
//! Why: burn's AdamW is ~15 tensor ops per parameter tensor, each allocating a result: for
//! the 1 M parameters of the GRPO bench's Qwen2 that was ~4 ms of a ~36 ms step
//! (`docs/benchmarks.md`, session 12).

use burn::DispatchDevice;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamWState, AdaptiveMomentumState, LearningRate, SimpleOptimizer};
use burn::tensor::{DType, Tensor, TensorData};
use foil_core::backend::B as FB;
use foil_kernels::adamw::{AdamwStep, adamw};

/// A model with its AdamW state, as the policies hold them.
pub type Adam<M> = OptimizerAdaptor<FusedAdamW, M, FB>;

/// AdamW's settings; see the module docs for the formula.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FusedAdamW {
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// Per-tensor gradient norm clipping (burn's `GradientClipping::Norm`).
    pub clip_norm: Option<f32>,
}

impl Default for FusedAdamW {
    /// burn's `AdamWConfig` defaults: β = (0.9, 0.999), ε = 1e-5, λ = 1e-4, no clipping.
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-5,
            weight_decay: 1e-4,
            clip_norm: None,
        }
    }
}

impl FusedAdamW {
    /// The optimizer over `M`'s parameters (no state yet).
    pub fn init<M: burn::module::AutodiffModule<FB>>(self) -> Adam<M> {
        OptimizerAdaptor::from(self)
    }

    fn constants(&self, lr: LearningRate, time: usize) -> AdamwStep {
        AdamwStep {
            lr: lr as f32,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            weight_decay: self.weight_decay,
            time: time as i32,
            clip_norm: self.clip_norm,
        }
    }

    /// The step as tensor ops, in burn's order (any backend, any float dtype).
    fn step_ops<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<FB, D>,
        grad: Tensor<FB, D>,
        state: Option<AdamWState<FB, D>>,
    ) -> (Tensor<FB, D>, AdamWState<FB, D>) {
        let grad = match self.clip_norm {
            Some(c) => {
                // burn's tiny: the smallest positive value of the gradient's dtype
                let tiny = grad
                    .dtype()
                    .finfo()
                    .unwrap_or(burn::tensor::FloatDType::F32.finfo())
                    .min_positive;
                let norm = grad.clone().square().sum().sqrt();
                let coef = norm.add_scalar(tiny).recip().mul_scalar(c);
                grad.mul(coef.clamp_max(1.0).unsqueeze())
            }
            None => grad,
        };
        let (f1, f2) = (1.0 - self.beta1, 1.0 - self.beta2);
        let momentum = match state {
            Some(s) => {
                let s = s.momentum;
                AdaptiveMomentumState::new(
                    s.time + 1,
                    s.moment_1
                        .mul_scalar(self.beta1)
                        .add(grad.clone().mul_scalar(f1)),
                    s.moment_2
                        .mul_scalar(self.beta2)
                        .add(grad.square().mul_scalar(f2)),
                )
            }
            None => AdaptiveMomentumState::new(
                1,
                grad.clone().mul_scalar(f1),
                grad.square().mul_scalar(f2),
            ),
        };
        let t = momentum.time as i32;
        let m_hat = momentum
            .moment_1
            .clone()
            .div_scalar(1f32 - self.beta1.powi(t));
        let v_hat = momentum
            .moment_2
            .clone()
            .div_scalar(1f32 - self.beta2.powi(t));
        let delta = m_hat.div(v_hat.sqrt().add_scalar(self.eps));
        let decay = lr * f64::from(self.weight_decay);
        let kept = if decay == 0.0 {
            tensor
        } else {
            tensor.mul_scalar(1.0 - decay)
        };
        (kept - delta.mul_scalar(lr), AdamWState::new(momentum))
    }
}

/// Whether the step on `device` (a parameter's inner device) runs fused: flex, the CPU
/// backend whose buffers can be taken out and handed back without a copy.
fn fuses_on(device: &DispatchDevice) -> bool {
    matches!(device, DispatchDevice::Flex(_))
}

impl SimpleOptimizer<FB> for FusedAdamW {
    type State<const D: usize> = AdamWState<FB, D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<FB, D>,
        grad: Tensor<FB, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<FB, D>, Option<Self::State<D>>) {
        // foil never asks for AMSGrad; its state could only come from a foreign checkpoint,
        // and continuing without it would silently change the optimizer
        assert!(
            state
                .as_ref()
                .is_none_or(|s| s.momentum.max_moment_2.is_none()),
            "optimizer state with an AMSGrad maximum (max_moment_2): foil's AdamW has no AMSGrad"
        );
        let device = tensor.device();
        let f32s = |t: &Tensor<FB, D>| t.dtype() == DType::F32;
        let fused = fuses_on(&device)
            && f32s(&tensor)
            && f32s(&grad)
            && state
                .as_ref()
                .is_none_or(|s| f32s(&s.momentum.moment_1) && f32s(&s.momentum.moment_2));
        if !fused {
            let (tensor, state) = self.step_ops(lr, tensor, grad, state);
            return (tensor, Some(state));
        }
        // the buffers out of burn: no copy when nothing else holds them
        let shape = tensor.shape();
        let (time, mut m, mut v) = match state {
            Some(s) => (
                s.momentum.time + 1,
                s.momentum.moment_1.into_data(),
                s.momentum.moment_2.into_data(),
            ),
            None => {
                let zeros = || TensorData::new(vec![0f32; shape.num_elements()], shape.clone());
                (1, zeros(), zeros())
            }
        };
        let (mut p, g) = (tensor.into_data(), grad.into_data());
        let back = |d: TensorData| Tensor::<FB, D>::from_data(d, &device);
        // a buffer that cannot be viewed as f32s (misaligned) takes the tensor-op path
        let viewable = |d: &TensorData| d.as_slice::<f32>().is_ok();
        if ![&p, &g, &m, &v].into_iter().all(viewable) {
            let state = (time > 1)
                .then(|| AdamWState::new(AdaptiveMomentumState::new(time - 1, back(m), back(v))));
            let (tensor, state) = self.step_ops(lr, back(p), back(g), state);
            return (tensor, Some(state));
        }
        #[cfg(test)]
        tests::FUSED_STEPS.with(|n| n.set(n.get() + 1));
        adamw(
            p.as_mut_slice::<f32>().expect("checked above"),
            g.as_slice::<f32>().expect("checked above"),
            m.as_mut_slice::<f32>().expect("checked above"),
            v.as_mut_slice::<f32>().expect("checked above"),
            &self.constants(lr, time),
        );
        let momentum = AdaptiveMomentumState::new(time, back(m), back(v));
        (back(p), Some(AdamWState::new(momentum)))
    }

    fn to_device<const D: usize>(
        mut state: Self::State<D>,
        device: &DispatchDevice,
    ) -> Self::State<D> {
        state.momentum = state.momentum.to_device(device);
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::{Module, Param};

    thread_local! {
        /// Steps this thread ran through the fused kernel.
        pub(super) static FUSED_STEPS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }
    use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
    use foil_core::backend::parse_device;

    #[derive(Module, Debug)]
    struct Two<B: burn::tensor::backend::Backend> {
        a: Param<Tensor<B, 2>>,
        b: Param<Tensor<B, 1>>,
    }

    fn two(device: &DispatchDevice) -> Two<FB> {
        let a: Vec<f32> = (0..6 * 40).map(|i| ((i as f32) * 0.37).sin()).collect();
        let b: Vec<f32> = (0..40).map(|i| ((i as f32) * 0.11).cos() * 2.0).collect();
        Two {
            a: Param::from_tensor(Tensor::from_data(TensorData::new(a, [6, 40]), device)),
            b: Param::from_tensor(Tensor::from_data(TensorData::new(b, [40]), device)),
        }
    }

    /// A loss whose gradients differ per step and per element: Σ (a·s)² + Σ sin-weighted b.
    fn grads(model: &Two<FB>, step: usize, device: &DispatchDevice) -> GradientsParams {
        let w: Vec<f32> = (0..40).map(|i| ((i + step) as f32 * 0.7).sin()).collect();
        let w = Tensor::<FB, 1>::from_data(TensorData::new(w, [40]), device);
        let loss = model
            .a
            .val()
            .mul_scalar(1.0 + step as f32)
            .powi_scalar(2)
            .sum()
            + (model.b.val() * w).sum().mul_scalar(3.0);
        GradientsParams::from_grads::<FB, _>(loss.backward(), model)
    }

    fn flat(m: &Two<FB>) -> Vec<f32> {
        let mut v = foil_core::batch::to_vec(m.a.val().reshape([240]));
        v.extend(foil_core::batch::to_vec(m.b.val()));
        v
    }

    /// Three steps of foil's AdamW and burn's, side by side, with weight decay and a clip
    /// norm that binds (the gradients' norms are 10–60): the same parameters to 1e-6.
    fn matches_burn(device: &str) {
        let device = foil_core::backend::train_device(&parse_device(device).unwrap());
        let (mut ours, mut theirs) = (two(&device), two(&device));
        let mut o = FusedAdamW {
            weight_decay: 0.05,
            clip_norm: Some(1.0),
            ..Default::default()
        }
        .init::<Two<FB>>();
        let mut b = AdamWConfig::new()
            .with_weight_decay(0.05)
            .with_grad_clipping(Some(burn::grad_clipping::GradientClippingConfig::Norm(1.0)))
            .init::<FB, Two<FB>>();
        for step in 0..3 {
            let g = grads(&ours, step, &device);
            ours = o.step(0.01, ours, g);
            let g = grads(&theirs, step, &device);
            theirs = b.step(0.01, theirs, g);
            let (x, y) = (flat(&ours), flat(&theirs));
            let moved = x
                .iter()
                .zip(flat(&two(&device)))
                .any(|(a, b)| (a - b).abs() > 1e-3);
            assert!(moved, "step {step}: the parameters moved");
            for (i, (p, q)) in x.iter().zip(&y).enumerate() {
                assert!(
                    (p - q).abs() < 1e-6,
                    "step {step}, value {i}: {p} vs burn's {q}"
                );
            }
        }
    }

    #[test]
    fn fused_step_on_flex_matches_burns_adamw() {
        let before = FUSED_STEPS.with(|n| n.get());
        matches_burn("cpu");
        // two parameter tensors × three steps, all through the kernel
        assert_eq!(FUSED_STEPS.with(|n| n.get()) - before, 6);
    }

    #[test]
    fn tensor_op_step_on_ndarray_matches_burns_adamw() {
        let before = FUSED_STEPS.with(|n| n.get());
        matches_burn("cpu-ndarray");
        assert_eq!(
            FUSED_STEPS.with(|n| n.get()),
            before,
            "no fused step off flex"
        );
    }

    #[test]
    #[should_panic(expected = "foil's AdamW has no AMSGrad")]
    fn amsgrad_state_is_refused() {
        let device = parse_device("cpu").unwrap();
        let t = || Tensor::<FB, 1>::from_data(TensorData::new(vec![1f32; 4], [4]), &device);
        let mut momentum = AdaptiveMomentumState::new(1, t(), t());
        momentum.max_moment_2 = Some(t());
        FusedAdamW::default().step(0.1, t(), t(), Some(AdamWState::new(momentum)));
    }

    /// Checkpoint files cross both ways: burn's AdamW, run alone for two steps, writes its
    /// state; foil's loads it (and burn's loads foil's, written after foil's own two
    /// steps), and the third steps of all four agree, while a third step from a fresh state
    /// does not (so the state was read, not restarted).
    #[test]
    fn state_record_is_burns() {
        use burn::record::{BinFileRecorder, FullPrecisionSettings, Recorder};
        let device = foil_core::backend::train_device(&parse_device("cpu").unwrap());
        let inner = foil_core::backend::inner_device(&device);
        let start = two(&device);
        // same parameter ids in every copy: records are keyed by them
        let (mut ours, mut theirs) = (start.clone(), start.clone());
        let mut o = FusedAdamW::default().init::<Two<FB>>();
        let mut b = AdamWConfig::new().init::<FB, Two<FB>>();
        for step in 0..2 {
            let g = grads(&ours, step, &device);
            ours = o.step(0.01, ours, g);
            let g = grads(&theirs, step, &device);
            theirs = b.step(0.01, theirs, g);
        }
        let rec = BinFileRecorder::<FullPrecisionSettings>::new();
        let dir = tempfile::tempdir().unwrap();
        let (ours_file, burns_file) = (dir.path().join("ours"), dir.path().join("burns"));
        Recorder::<FB>::record(&rec, o.to_record(), ours_file.clone()).unwrap();
        Recorder::<FB>::record(&rec, b.to_record(), burns_file.clone()).unwrap();
        let mut ours_from_burn = FusedAdamW::default()
            .init::<Two<FB>>()
            .load_record(Recorder::<FB>::load(&rec, burns_file, &inner).unwrap());
        let mut burn_from_ours = AdamWConfig::new()
            .init::<FB, Two<FB>>()
            .load_record(Recorder::<FB>::load(&rec, ours_file, &inner).unwrap());
        let third = |opt: &mut dyn FnMut(Two<FB>, GradientsParams) -> Two<FB>, m: &Two<FB>| {
            let g = grads(m, 2, &device);
            flat(&opt(m.clone(), g))
        };
        let want = third(&mut |m, g| b.step(0.01, m, g), &theirs);
        let runs = [
            (
                "foil's, continued",
                third(&mut |m, g| o.step(0.01, m, g), &ours),
            ),
            (
                "foil's from burn's file",
                third(&mut |m, g| ours_from_burn.step(0.01, m, g), &theirs),
            ),
            (
                "burn's from foil's file",
                third(&mut |m, g| burn_from_ours.step(0.01, m, g), &ours),
            ),
        ];
        for (what, got) in &runs {
            for (i, (p, q)) in got.iter().zip(&want).enumerate() {
                assert!((p - q).abs() < 1e-6, "{what}, value {i}: {p} vs {q}");
            }
        }
        let mut fresh = FusedAdamW::default().init::<Two<FB>>();
        let restarted = third(&mut |m, g| fresh.step(0.01, m, g), &ours);
        assert!(
            restarted
                .iter()
                .zip(&want)
                .any(|(p, q)| (p - q).abs() > 1e-4),
            "a fresh state steps differently"
        );
    }
}
