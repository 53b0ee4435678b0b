//! Bradley–Terry pairwise loss for outcome reward models.
//!
//! ```text
//! L = (1/N) Σ_i −log σ(r(x_i, y⁺_i) − r(x_i, y⁻_i) − margin)
//!     + center · | (1/N) Σ_i (r(x_i, y⁺_i) + r(x_i, y⁻_i)) |
//! ```
//!
//! The first term is the reward-model loss of Christiano et al. (2017, "Deep reinforcement
//! learning from human preferences", arXiv 1706.03741) and Ouyang et al. (2022, InstructGPT,
//! arXiv 2203.02155, eq. 1) [paper]. `margin` is the optional margin of Llama 2 (Touvron et
//! al. 2023, arXiv 2307.09288, eq. 2) [paper]; 0 by default. `center` is ARMAP's centring
//! term (Chen et al. 2025, arXiv 2502.12130, `RM/RLHF/models/reward_model.py::compute_loss`:
//! `BCE(σ(r₁ − r₀), choice) + 1e-3·|mean(r₁ + r₀)|`, methods.md §18) [code]; 0 by default,
//! 1e-3 reproduces ARMAP. Bradley–Terry only fixes score differences, so without it the
//! scores may drift as a whole.

use burn::tensor::Tensor;
use burn::tensor::activation::log_sigmoid;
use foil_core::backend::B;
use serde::{Deserialize, Serialize};

/// Loss settings: `loss: {type: bradley_terry, margin: 0.0, center: 0.0}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BradleyTerry {
    /// Subtracted from the score difference inside the sigmoid.
    pub margin: f32,
    /// Coefficient of `|mean(r⁺ + r⁻)|` (ARMAP: 1e-3).
    pub center: f32,
}

impl BradleyTerry {
    /// `chosen`, `rejected`: scores `[N]` of the preferred and dispreferred responses.
    pub fn loss(&self, chosen: Tensor<B, 1>, rejected: Tensor<B, 1>) -> Tensor<B, 1> {
        let diff = chosen.clone() - rejected.clone();
        let nll = log_sigmoid(diff.sub_scalar(self.margin)).neg().mean();
        if self.center == 0.0 {
            return nll;
        }
        nll + (chosen + rejected).mean().abs().mul_scalar(self.center)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;
    use foil_core::backend::parse_device;
    use foil_core::batch::to_vec;

    fn t(v: &[f32]) -> Tensor<B, 1> {
        Tensor::from_data(
            TensorData::new(v.to_vec(), [v.len()]),
            &parse_device("cpu").unwrap(),
        )
    }

    #[test]
    fn matches_hand_computed_values() {
        // pair 1: r⁺ − r⁻ = 1 − 1 = 0   → −log σ(0) = ln 2 = 0.693147
        // pair 2: r⁺ − r⁻ = 2 − 0 = 2   → −log σ(2) = ln(1 + e^−2) = ln 1.135335 = 0.126928
        // mean = (0.693147 + 0.126928) / 2 = 0.410038
        let l = BradleyTerry::default().loss(t(&[1.0, 2.0]), t(&[1.0, 0.0]));
        assert!((to_vec(l)[0] - 0.410038).abs() < 1e-5);
    }

    #[test]
    fn margin_and_center_add_what_the_formula_says() {
        // margin 1: pair r⁺=2, r⁻=0 → −log σ(2 − 1) = ln(1 + e^−1) = 0.313262
        // center 0.5: |mean(2 + 0)| = 2 → + 0.5 · 2 = 1.0; total 1.313262
        let bt = BradleyTerry {
            margin: 1.0,
            center: 0.5,
        };
        let l = bt.loss(t(&[2.0]), t(&[0.0]));
        assert!((to_vec(l)[0] - 1.313262).abs() < 1e-5);
        // a wrongly ordered pair costs more: r⁺=0, r⁻=2 → −log σ(−2) = 2.126928
        let l = BradleyTerry::default().loss(t(&[0.0]), t(&[2.0]));
        assert!((to_vec(l)[0] - 2.126928).abs() < 1e-5);
    }
}
