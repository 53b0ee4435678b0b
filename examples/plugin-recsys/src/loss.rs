//! The (clipped) inverse-propensity pointwise loss of Rel-MF (Saito et al. 2020;
//! `../shared/docs/methods.md` §19, [code] `PointwiseRecommender.create_losses`):
//!
//! ```text
//! L = Σ_b [ w_b (1 − ŷ_b)² + (1 − w_b) ŷ_b² ] / Σ_b [ Y_b + (1 − Y_b) ]  +  λ (‖U‖² + ‖V‖²) / 2
//! w_b = Y_b / s_b,   s_b = clip(θ̂_{i_b}, M, 1)
//! ```
//!
//! over a minibatch `b` (the denominator is its size). Because `E[Y/θ] = γ`, the first
//! term is an unbiased estimate of the ideal loss `γ(1 − ŷ)² + (1 − γ)ŷ²` when `s = θ`
//! [paper]; the code uses squared local losses (its comment says cross-entropy) and
//! `w = 1` in the negative term's weight `w·(1 − Y/s)` for Rel-MF [code]. Naive MF is the
//! same loss with `s = 1`: the click is the label and every unclicked pair a negative.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

/// Which label the pointwise loss uses.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Estimator {
    /// `w = Y`: unclicked = negative (biased towards popular items).
    Naive,
    /// `w = Y / θ̂` (no clipping, `M = 0`).
    Ips,
    /// `w = Y / clip(θ̂, M, 1)`.
    #[default]
    ClippedIps,
}

impl Estimator {
    /// The propensity floor `M` this estimator applies (`None`: naive, no propensity).
    pub fn floor(self, clip: f64) -> Option<f64> {
        match self {
            Estimator::Naive => None,
            Estimator::Ips => Some(0.0),
            Estimator::ClippedIps => Some(clip),
        }
    }
}

/// Per-pair weights `w = Y / s` (0 for an unclicked pair whatever `s` is, so an item
/// with no clicks, `s = 0`, never divides).
pub fn weights(clicked: &[bool], s: &[f64]) -> Vec<f32> {
    clicked
        .iter()
        .zip(s)
        .map(|(&y, &s)| if y { (1.0 / s) as f32 } else { 0.0 })
        .collect()
}

/// The data term `Σ [w(1 − ŷ)² + (1 − w)ŷ²] / n`, `[1]`.
pub fn pointwise<B: Backend>(pred: Tensor<B, 1>, w: Tensor<B, 1>) -> Tensor<B, 1> {
    let n = pred.dims()[0].max(1) as f64;
    let pos = w.clone() * (pred.clone().neg() + 1.0).powi_scalar(2);
    let neg = (w.neg() + 1.0) * pred.powi_scalar(2);
    (pos + neg).sum().div_scalar(n)
}

/// The penalty `λ (‖U‖² + ‖V‖²) / 2` from the squared norm.
pub fn l2_penalty<B: Backend>(squared_norm: Tensor<B, 1>, lambda: f64) -> Tensor<B, 1> {
    squared_norm.mul_scalar(lambda / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;
    use foil_core::backend::{B, parse_device};

    fn value(pred: &[f32], w: &[f32]) -> f32 {
        let d = parse_device("cpu").unwrap();
        let t = |v: &[f32]| Tensor::<B, 1>::from_data(TensorData::new(v.to_vec(), [v.len()]), &d);
        pointwise(t(pred), t(w))
            .into_data()
            .to_vec::<f32>()
            .unwrap()[0]
    }

    #[test]
    fn two_by_two_by_hand() {
        // users × items = 2 × 2, row-major pairs (0,0) (0,1) (1,0) (1,1)
        // Y = [[1, 0], [0, 1]], ŷ = [[0.8, 0.3], [0.5, 0.6]], item propensities s = [0.5, 1]
        let clicked = [true, false, false, true];
        let s = [0.5, 1.0, 0.5, 1.0];
        let pred = [0.8, 0.3, 0.5, 0.6];
        let w = weights(&clicked, &s);
        assert_eq!(w, vec![2.0, 0.0, 0.0, 1.0]);
        // IPS: (0,0) 2·0.2² + (1 − 2)·0.8² = 0.08 − 0.64 = −0.56
        //      (0,1) 0 + 1·0.3² = 0.09;  (1,0) 0.5² = 0.25;  (1,1) 1·0.4² + 0 = 0.16
        //      sum −0.06, / 4 pairs = −0.015
        assert!((value(&pred, &w) - (-0.015)).abs() < 1e-6);
        // naive (s = 1): (0,0) 0.2² = 0.04, then 0.09, 0.25, 0.16 → 0.54 / 4 = 0.135
        let naive = weights(&clicked, &[1.0; 4]);
        assert!((value(&pred, &naive) - 0.135).abs() < 1e-6);
    }

    #[test]
    fn clipping_bounds_the_weight_and_unclicked_zero_propensity_is_safe() {
        // θ̂ = 0.01 clipped at M = 0.1 → s = 0.1, w = 10 instead of 100
        let s = crate::propensity::clip(&[0.01, 0.0], 0.1);
        assert_eq!(weights(&[true, false], &s), vec![10.0, 0.0]);
        // unclipped (M = 0): w = 100; an unclicked pair of an item with no clicks (s = 0) → 0
        let s = crate::propensity::clip(&[0.01, 0.0], 0.0);
        let w = weights(&[true, false], &s);
        assert!((w[0] - 100.0).abs() < 1e-3 && w[1] == 0.0);
        // one clicked pair, ŷ = 0.5, w = 10: 10·0.25 + (1 − 10)·0.25 = 0.25
        assert!((value(&[0.5], &[10.0]) - 0.25).abs() < 1e-6);
    }

    #[test]
    fn penalty_is_half_lambda_times_the_squared_norm() {
        let d = parse_device("cpu").unwrap();
        let n = Tensor::<B, 1>::from_data(TensorData::new(vec![11.25f32], [1]), &d);
        // 1e-2 · 11.25 / 2 = 0.05625
        let p: Vec<f32> = l2_penalty(n, 1e-2).into_data().to_vec().unwrap();
        assert!((p[0] - 0.05625).abs() < 1e-7);
        assert_eq!(Estimator::Naive.floor(0.1), None);
        assert_eq!(Estimator::Ips.floor(0.1), Some(0.0));
        assert_eq!(Estimator::ClippedIps.floor(0.1), Some(0.1));
    }
}
