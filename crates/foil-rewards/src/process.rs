//! Per-step loss of a process reward model (PRM).
//!
//! ```text
//! s_ij = score read at the last token of step j of response i (the separator that ends it)
//! L    = Σ_ij m_ij · BCE(s_ij, y_ij) / Σ_ij m_ij        y_ij ∈ [0, 1] step label, m_ij = 1 for
//!                                                       labelled steps, 0 for padding
//! ```
//!
//! Lightman et al. (2023, "Let's Verify Step by Step", arXiv 2305.20050) train a PRM to
//! predict each step's label at the step's last token and score a solution by the product
//! or minimum of its step probabilities [paper]; the labels here come from a verifier's
//! `step_rewards` (the exact `steps` checker or the noisy `process_reward`), thresholded at
//! 0.5 by the stage [recon]. Steps are the pieces of the response split on the separator
//! before the answer marker, as `foil-verifiers::steps` counts them.

use burn::tensor::Tensor;
use foil_core::backend::B;

use crate::pointwise::bce_with_logits;

/// Masked mean BCE over step scores `[n, S]`.
pub fn process_loss(
    scores: Tensor<B, 2>,
    labels: Tensor<B, 2>,
    mask: Tensor<B, 2>,
) -> Tensor<B, 1> {
    bce_with_logits(scores, labels, mask)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;
    use foil_core::backend::parse_device;
    use foil_core::batch::to_vec;

    fn t(v: &[f32]) -> Tensor<B, 2> {
        Tensor::from_data(
            TensorData::new(v.to_vec(), [2, 2]),
            &parse_device("cpu").unwrap(),
        )
    }

    #[test]
    fn padding_steps_do_not_count() {
        // row 0: steps (s=0, y=1) → ln 2 = 0.693147 and (s=2, y=1) → 0.126928
        // row 1: step (s=2, y=0) → 2.126928, then padding (s=−50, y=1, m=0) which would
        //        cost 50 if it counted
        // mean over the 3 real steps = (0.693147 + 0.126928 + 2.126928) / 3 = 0.982334
        let l = process_loss(
            t(&[0.0, 2.0, 2.0, -50.0]),
            t(&[1.0, 1.0, 0.0, 1.0]),
            t(&[1.0, 1.0, 1.0, 0.0]),
        );
        assert!((to_vec(l)[0] - 0.982334).abs() < 1e-5);
    }
}
