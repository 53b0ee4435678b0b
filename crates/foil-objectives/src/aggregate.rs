//! How a per-token loss `ℓ[n, W]` becomes one scalar, over the response tokens only
//! (`m = batch.mask`, 1 on response-target columns):
//!
//! | mode | formula |
//! |---|---|
//! | `token_mean` (default) | `Σ_{i,t} ℓ·m / Σ_{i,t} m` — every response token weighs the same (DAPO, Yu et al. 2025) |
//! | `seq_mean_token_mean` | `1/N' Σ_i (Σ_t ℓ·m / Σ_t m)` — each sequence weighs the same (GRPO, Shao et al. 2024) |
//! | `seq_mean_token_sum` | `1/N' Σ_i Σ_t ℓ·m` — sequence sums, averaged |
//! | `seq_mean_token_sum_norm` | `Σ_{i,t} ℓ·m / (n · max_response_tokens)` — Dr.GRPO's constant normaliser (Liu et al. 2025, "Understanding R1-Zero-Like Training") |
//!
//! `N'` is the number of rows with at least one response token: a row whose mask is
//! empty contributes nothing to the numerator and is not counted in the denominator
//! (it carries no gradient, so counting it would only shrink the others' weight).
//! `seq_mean_token_sum_norm` instead divides by the constant `n · max_response_tokens`,
//! empty rows included, which is the point of that normaliser. Every denominator is
//! clamped to at least 1, so an all-empty mask gives 0 rather than NaN.

use burn::tensor::{Bool, Tensor};
use foil_core::backend::B;
use foil_core::batch::{PolicyBatch, to_vec};
use serde::{Deserialize, Serialize};

/// Aggregation of a per-token loss into a scalar; see the module docs for the formulas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    /// `Σ ℓ·m / Σ m`.
    #[default]
    TokenMean,
    /// Mean over non-empty rows of each row's token mean.
    SeqMeanTokenMean,
    /// Mean over non-empty rows of each row's token sum.
    SeqMeanTokenSum,
    /// `Σ ℓ·m / (n · max_response_tokens)` (Dr.GRPO).
    SeqMeanTokenSumNorm,
}

/// Reduces the per-token `loss` (`[n, W]`) over `batch.mask` to a `[1]` tensor.
pub fn aggregate(loss: Tensor<B, 2>, batch: &PolicyBatch, how: Aggregate) -> Tensor<B, 1> {
    let mask = batch.mask.clone();
    let masked = loss * mask.clone();
    match how {
        Aggregate::TokenMean => masked.sum() / mask.sum().clamp_min(1.0),
        Aggregate::SeqMeanTokenMean => {
            let counts = mask.sum_dim(1); // [n, 1]
            let rows = non_empty_rows(counts.clone());
            let row_means = masked.sum_dim(1) / counts.clamp_min(1.0);
            row_means.sum() / rows
        }
        Aggregate::SeqMeanTokenSum => masked.sum() / non_empty_rows(mask.sum_dim(1)),
        Aggregate::SeqMeanTokenSumNorm => {
            let denom = (batch.n * batch.max_response_tokens).max(1);
            masked.sum().div_scalar(denom as f32)
        }
    }
}

/// `max(1, #rows with a response token)` from the per-row mask counts `[n, 1]`. Counts are
/// whole numbers, so `min(count, 1)` is the indicator of a non-empty row.
fn non_empty_rows(counts: Tensor<B, 2>) -> Tensor<B, 1> {
    counts.clamp_max(1.0).sum().clamp_min(1.0)
}

/// `1.0` where `cond` holds, else `0.0`, on `like`'s device (no gradient).
///
/// Not `cond.float()`: on burn's `Dispatch` backend a bool tensor has no autodiff wrapper,
/// so `Bool::float()` lands on the inner device and cannot be combined with tensors of the
/// autodiff device.
pub(crate) fn indicator(cond: Tensor<B, 2, Bool>, like: &Tensor<B, 2>) -> Tensor<B, 2> {
    like.zeros_like().mask_fill(cond, 1.0)
}

/// `Σ x·m / Σ m` read back as an `f32` (no gradient): the token mean used in metrics.
pub(crate) fn masked_mean(x: Tensor<B, 2>, mask: &Tensor<B, 2>) -> f32 {
    let x = x.detach();
    let v = (x * mask.clone()).sum() / mask.clone().sum().clamp_min(1.0);
    scalar(v)
}

/// Reads a one-element tensor back as an `f32` (detached).
pub(crate) fn scalar(t: Tensor<B, 1>) -> f32 {
    to_vec(t.detach()).first().copied().unwrap_or(f32::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{batch, close, dev, t2};

    const LOSS: [[f32; 3]; 2] = [[1., 2., 3.], [4., 5., 6.]];

    fn agg(mask: [[f32; 3]; 2], how: Aggregate) -> f32 {
        let d = dev();
        let b = batch(&mask, &[[0.; 3]; 2], None, None, 4);
        scalar(aggregate(t2(&LOSS, &d), &b, how))
    }

    #[test]
    fn every_mode_on_a_ragged_mask() {
        // row 0 keeps {1, 2} (sum 3, 2 tokens), row 1 keeps {4, 5, 6} (sum 15, 3 tokens)
        let m = [[1., 1., 0.], [1., 1., 1.]];
        // (3 + 15) / 5 = 3.6
        close(agg(m, Aggregate::TokenMean), 3.6);
        // (3/2 + 15/3) / 2 = (1.5 + 5) / 2 = 3.25
        close(agg(m, Aggregate::SeqMeanTokenMean), 3.25);
        // (3 + 15) / 2 = 9
        close(agg(m, Aggregate::SeqMeanTokenSum), 9.0);
        // (3 + 15) / (n · max_response_tokens) = 18 / (2 · 4) = 2.25
        close(agg(m, Aggregate::SeqMeanTokenSumNorm), 2.25);
    }

    #[test]
    fn empty_rows_are_not_counted_by_the_sequence_means() {
        // row 0 keeps {1, 2}; row 1 is empty
        let m = [[1., 1., 0.], [0., 0., 0.]];
        close(agg(m, Aggregate::TokenMean), 1.5); // 3 / 2
        close(agg(m, Aggregate::SeqMeanTokenMean), 1.5); // (3/2) / 1 row
        close(agg(m, Aggregate::SeqMeanTokenSum), 3.0); // 3 / 1 row
        close(agg(m, Aggregate::SeqMeanTokenSumNorm), 0.375); // 3 / (2 · 4), constant
    }

    #[test]
    fn an_all_empty_mask_gives_zero_not_nan() {
        let m = [[0.; 3]; 2];
        for how in [
            Aggregate::TokenMean,
            Aggregate::SeqMeanTokenMean,
            Aggregate::SeqMeanTokenSum,
            Aggregate::SeqMeanTokenSumNorm,
        ] {
            close(agg(m, how), 0.0);
        }
    }

    #[test]
    fn modes_use_snake_case_names() {
        let a: Aggregate = serde_saphyr::from_str("seq_mean_token_sum_norm").unwrap();
        assert_eq!(a, Aggregate::SeqMeanTokenSumNorm);
        assert_eq!(Aggregate::default(), Aggregate::TokenMean);
    }
}
