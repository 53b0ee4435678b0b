//! Pointwise classification loss for outcome reward models on labelled samples.
//!
//! ```text
//! L = (1/N) Σ_i −[ y_i log σ(s_i) + (1 − y_i) log(1 − σ(s_i)) ]      y_i ∈ [0, 1]
//! ```
//!
//! Binary cross-entropy on the score read at the last token, i.e. an outcome-supervised
//! verifier (Cobbe et al. 2021, "Training Verifiers to Solve Math Word Problems", arXiv
//! 2110.14168 [paper]; Cooper's VerifyRM pre-training, arXiv 2508.05613, methods.md §13
//! [secondary]). Computed as `−y·logσ(s) − (1−y)·logσ(−s)`, which is finite for any score.

use burn::tensor::Tensor;
use burn::tensor::activation::log_sigmoid;
use foil_core::backend::B;

/// Mean binary cross-entropy with logits; `mask` (1/0, same shape) selects the entries.
/// Returns `Σ mask·BCE / max(Σ mask, 1)`.
pub fn bce_with_logits<const D: usize>(
    scores: Tensor<B, D>,
    labels: Tensor<B, D>,
    mask: Tensor<B, D>,
) -> Tensor<B, 1> {
    let pos = log_sigmoid(scores.clone()).mul(labels.clone());
    let neg = log_sigmoid(scores.neg()).mul(labels.neg().add_scalar(1.0));
    let per = (pos + neg).neg().mul(mask.clone());
    let count = mask.sum().clamp_min(1.0);
    per.sum().div(count)
}

/// `loss: {type: pointwise}`: BCE on one score per labelled response.
pub fn pointwise_loss(scores: Tensor<B, 1>, labels: Tensor<B, 1>) -> Tensor<B, 1> {
    let mask = labels.ones_like();
    bce_with_logits(scores, labels, mask)
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
        // s=0, y=1: −log σ(0) = ln 2 = 0.693147
        // s=2, y=0: −log(1 − σ(2)) = −log σ(−2) = ln(1 + e^2) = 2.126928
        // s=2, y=1: −log σ(2) = 0.126928
        // mean = (0.693147 + 2.126928 + 0.126928) / 3 = 0.982334
        let l = pointwise_loss(t(&[0.0, 2.0, 2.0]), t(&[1.0, 0.0, 1.0]));
        assert!((to_vec(l)[0] - 0.982334).abs() < 1e-5);
    }

    #[test]
    fn soft_labels_and_extreme_scores_stay_finite() {
        // y = 0.5, s = 0: 0.5·ln2 + 0.5·ln2 = 0.693147; s = 100, y = 0: ≈ 100
        let l = pointwise_loss(t(&[0.0, 100.0]), t(&[0.5, 0.0]));
        let v = to_vec(l)[0];
        assert!(
            (v - (std::f32::consts::LN_2 + 100.0) / 2.0).abs() < 1e-3,
            "{v}"
        );
    }
}
