//! LoRA adapters (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models").
//!
//! ```text
//! y = x W + b + (α / r) · (x A) B        A: [d_in, r] (Kaiming-uniform), B: [r, d_out] = 0
//! ```
//!
//! The base `W, b` are frozen; only `A` and `B` train, so the adapted model starts equal
//! to the base. The reference policy of a KL term is the same module with the adapters
//! removed ([`LoraLinear::without_adapter`]), which shares the base tensors and so costs
//! no extra weights. [`LoraLinear::merged`] folds `(α/r)·A B` into `W` for export.

use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use crate::trainable::fold_rows;
use serde::{Deserialize, Serialize};

/// Recipe settings: `lora: {rank: 8, alpha: 16, targets: [q_proj, v_proj]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraConfig {
    /// Rank `r` of the update.
    pub rank: usize,
    /// Scale numerator `α` (the update is multiplied by `α / r`).
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// Projections that get an adapter: any of q_proj, k_proj, v_proj, o_proj,
    /// gate_proj, up_proj, down_proj.
    #[serde(default = "default_targets")]
    pub targets: Vec<String>,
}

fn default_alpha() -> f64 {
    16.0
}

fn default_targets() -> Vec<String> {
    vec!["q_proj".into(), "v_proj".into()]
}

/// The projection names LoRA may target.
pub const LORA_TARGETS: [&str; 7] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

impl LoraConfig {
    /// Checks rank and target names (with the nearest valid name for a typo).
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.rank > 0, "lora.rank must be at least 1");
        for t in &self.targets {
            if !LORA_TARGETS.contains(&t.as_str()) {
                let near = LORA_TARGETS
                    .iter()
                    .max_by(|a, b| {
                        strsim::jaro_winkler(a, t).total_cmp(&strsim::jaro_winkler(b, t))
                    })
                    .expect("non-empty");
                anyhow::bail!(
                    "lora.targets: `{t}` is not a projection (did you mean `{near}`? valid: {})",
                    LORA_TARGETS.join(", ")
                );
            }
        }
        Ok(())
    }

    pub fn targets(&self, name: &str) -> bool {
        self.targets.iter().any(|t| t == name)
    }
}

/// A linear layer with an optional low-rank adapter.
#[derive(Module, Debug)]
pub struct LoraLinear<B: Backend> {
    pub base: Linear<B>,
    pub lora_a: Option<Param<Tensor<B, 2>>>,
    pub lora_b: Option<Param<Tensor<B, 2>>>,
    #[module(skip)]
    pub scale: f32,
}

impl<B: Backend> LoraLinear<B> {
    pub fn plain(base: Linear<B>) -> Self {
        Self {
            base,
            lora_a: None,
            lora_b: None,
            scale: 0.0,
        }
    }

    /// `x W + b (+ (α/r)·x A B)` over the last axis, as 2-D GEMMs (`trainable::fold_rows`).
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        fold_rows(x, |x| {
            let y = self.base.forward(x.clone());
            match (&self.lora_a, &self.lora_b) {
                (Some(a), Some(b)) => y + x.matmul(a.val()).matmul(b.val()).mul_scalar(self.scale),
                _ => y,
            }
        })
    }

    /// Freezes the base and adds a fresh adapter of rank `r` (`B = 0`, so the output is
    /// unchanged until training moves it).
    pub fn with_adapter(self, rank: usize, alpha: f64, device: &B::Device) -> Self {
        let [d_in, d_out] = self.base.weight.dims();
        // peft's default: kaiming_uniform_(a=√5) on A, i.e. U(−1/√d_in, 1/√d_in)
        let a = Initializer::KaimingUniform {
            gain: 1.0 / 3f64.sqrt(),
            fan_out_only: false,
        }
        .init_with([d_in, rank], Some(d_in), Some(rank), device);
        let b = Initializer::Zeros.init([rank, d_out], device);
        Self {
            base: self.base.no_grad(),
            lora_a: Some(a),
            lora_b: Some(b),
            scale: (alpha / rank as f64) as f32,
        }
    }

    /// The same layer without its adapter (tensors shared, nothing copied).
    pub fn without_adapter(&self) -> Self {
        Self::plain(self.base.clone())
    }

    /// A plain layer whose weight includes the adapter: `W + (α/r)·A B`.
    pub fn merged(&self) -> Linear<B> {
        match (&self.lora_a, &self.lora_b) {
            (Some(a), Some(b)) => {
                let w = self.base.weight.val() + a.val().matmul(b.val()).mul_scalar(self.scale);
                Linear {
                    weight: Param::from_tensor(w),
                    bias: self.base.bias.clone(),
                }
            }
            _ => self.base.clone(),
        }
    }

    pub fn has_adapter(&self) -> bool {
        self.lora_a.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;
    use foil_core::backend::{B, Device};

    fn linear(w: Vec<f32>, d_in: usize, d_out: usize, device: &Device) -> Linear<B> {
        Linear {
            weight: Param::from_tensor(Tensor::from_data(
                TensorData::new(w, [d_in, d_out]),
                device,
            )),
            bias: None,
        }
    }

    #[test]
    fn adapter_output_by_hand() {
        // W = [[1, 0], [0, 1]], A = [[1], [2]], B = [[3, 4]], α/r = 2/1:
        // x = [1, 1] → x W = [1, 1]; (x A) B = 3·[3, 4] = [9, 12]; y = [1 + 18, 1 + 24]
        let device = Device::default();
        let mut l = LoraLinear::plain(linear(vec![1.0, 0.0, 0.0, 1.0], 2, 2, &device));
        l.lora_a = Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(vec![1.0f32, 2.0], [2, 1]),
            &device,
        )));
        l.lora_b = Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(vec![3.0f32, 4.0], [1, 2]),
            &device,
        )));
        l.scale = 2.0;
        let x = Tensor::<B, 2>::from_data(TensorData::new(vec![1.0f32, 1.0], [1, 2]), &device);
        let y = foil_core::batch::to_vec(l.forward(x.clone()));
        assert_eq!(y, vec![19.0, 25.0]);
        // merged weight gives the same output
        let y2 = foil_core::batch::to_vec(l.merged().forward(x.clone()));
        assert_eq!(y2, vec![19.0, 25.0]);
        // without the adapter: the base alone
        assert_eq!(
            foil_core::batch::to_vec(l.without_adapter().forward(x)),
            vec![1.0, 1.0]
        );
    }

    #[test]
    fn a_fresh_adapter_changes_nothing() {
        // on the autodiff device, so that "requires grad" means something
        let device = foil_core::backend::train_device(&Device::default());
        let base = linear(vec![0.5, -1.0, 2.0, 0.25, 1.5, -0.5], 3, 2, &device);
        let l = foil_core::backend::with_seed(&device, 3, || {
            foil_core::backend::materialize(LoraLinear::plain(base).with_adapter(2, 16.0, &device))
        });
        assert_eq!(l.scale, 8.0);
        let x = Tensor::<B, 2>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0], [1, 3]), &device);
        // x W = [0.5 + 4 + 4.5, −1 + 0.5 − 1.5] = [9, −2]
        assert_eq!(foil_core::batch::to_vec(l.forward(x)), vec![9.0, -2.0]);
        assert!(!l.base.weight.is_require_grad());
        assert!(l.lora_a.as_ref().unwrap().is_require_grad());
    }

    #[test]
    fn misspelt_target_suggests_the_nearest() {
        let c = LoraConfig {
            rank: 4,
            alpha: 8.0,
            targets: vec!["q_prj".into()],
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("did you mean `q_proj`"), "{e}");
    }
}
