//! `dads_kl`: Difficulty-Adaptive Divergence Shaping, the positive-side half of APO
//! (Asymmetric Policy Optimization, the View-R1 paper, arXiv 2506.21655;
//! `../shared/docs/methods.md` §10, formulas [code] from View-R1's
//! `openrlhf/trainer/ray/ppo_actor.py`, `calculate_kl_weight`).
//!
//! A KL penalty whose weight is lowered on the positives of hard prompts, so that what a
//! policy just learned to solve may move further from the reference:
//!
//! ```text
//! acc_g = #correct / n in the row's group,       D = 1 − acc_g   (difficulty)
//! κ_i   = 1 − exp(−e · (1 − D))    if A_i > 0 and 0 < D < 1
//!       = 1                        otherwise (negatives, and all-correct / all-wrong groups)
//! loss  = coef · aggregate_i( κ_i · KL_t )      KL_t per token (k3 by default)
//! ```
//!
//! Examples (`e = 2.71828`): `acc 1/8 → κ = 1 − e^(−0.3398) = 0.288`; `1/2 → 0.743`;
//! `7/8 → 0.907`. View-R1 averages `κ_i · mean_t KL` over sequences
//! (`seq_mean_token_mean`, the default here) with `coef = init_kl_coef = 1e-3`.
//!
//! The row's group accuracy comes from [`PolicyBatch::group_accuracy`], which the `rl`
//! stage fills; the sign of `A_i` is read from the batch's advantages.

use anyhow::{Context, ensure};
use burn::tensor::{Tensor, TensorData};
use foil_core::batch::{PolicyBatch, to_vec};
use foil_core::{Loss, Objective, PolicyOutput};
use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, aggregate, masked_mean, scalar};
use crate::kl::KlEstimator;

/// `coef · aggregate(κ_i · KL_t)` with APO's difficulty-adaptive row weights `κ_i`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DadsKl {
    /// Weight of the penalty (β; View-R1's `init_kl_coef`).
    pub coef: f32,
    /// Per-token estimator.
    pub estimator: KlEstimator,
    /// How token estimates become one scalar.
    pub aggregate: Aggregate,
}

impl Default for DadsKl {
    fn default() -> Self {
        Self {
            coef: 1e-3,
            estimator: KlEstimator::K3,
            aggregate: Aggregate::SeqMeanTokenMean,
        }
    }
}

/// DADS weight of a row: `1 − exp(−e · acc)` for a positive of a group that is neither
/// all-correct nor all-wrong, else 1.
pub fn dads_weight(group_accuracy: f32, positive: bool) -> f32 {
    let d = 1.0 - group_accuracy;
    if positive && d > 0.0 && d < 1.0 {
        1.0 - (-std::f32::consts::E * (1.0 - d)).exp()
    } else {
        1.0
    }
}

impl DadsKl {
    /// `κ_i` of every row of `batch`.
    pub fn weights(&self, batch: &PolicyBatch) -> anyhow::Result<Vec<f32>> {
        ensure!(
            batch.group_accuracy.len() == batch.n,
            "dads_kl: the batch carries {} group accuracies for {} rows; DADS weights need \
             the groups an `rl` stage samples",
            batch.group_accuracy.len(),
            batch.n
        );
        let adv = to_vec(batch.advantages.clone() * batch.mask.clone());
        let w = batch.width;
        Ok((0..batch.n)
            .map(|i| {
                let sum: f32 = adv[i * w..(i + 1) * w].iter().sum();
                dads_weight(batch.group_accuracy[i], sum > 0.0)
            })
            .collect())
    }
}

#[typetag::serde(name = "dads_kl")]
impl Objective for DadsKl {
    fn loss(&self, batch: &PolicyBatch, out: &PolicyOutput) -> anyhow::Result<Loss> {
        let reference = batch
            .ref_logprobs
            .clone()
            .context("dads_kl: the batch has no reference log-probs (ref_logprobs)")?;
        ensure!(
            reference.dims() == out.logprobs.dims(),
            "dads_kl: reference log-probs are {:?}, policy log-probs {:?}",
            reference.dims(),
            out.logprobs.dims()
        );
        let kappa = self.weights(batch)?;
        let mean_kappa = kappa.iter().sum::<f32>() / kappa.len().max(1) as f32;
        let device = out.logprobs.device();
        let rows = Tensor::<foil_core::backend::B, 2>::from_data(
            TensorData::new(kappa, [batch.n, 1]),
            &device,
        );
        let delta = (reference - out.logprobs.clone()) * batch.mask.clone();
        let k = self.estimator.estimate(delta);
        let mean = masked_mean(k.clone(), &batch.mask);
        let value = aggregate(k * rows, batch, self.aggregate).mul_scalar(self.coef);
        let metrics = vec![
            ("kl/mean".to_string(), mean),
            ("dads/mean_weight".to_string(), mean_kappa),
            ("kl/loss".to_string(), scalar(value.clone())),
        ];
        Ok(Loss { value, metrics })
    }

    fn needs_reference(&self) -> bool {
        true
    }
}

foil_core::register_part!(
    Objective,
    "dads_kl",
    DadsKl,
    "APO's DADS: KL penalty weighted 1 − exp(−e·acc) on the positives of hard groups (View-R1, 2025)"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{batch, check_grad, close, dev, t2};

    #[test]
    fn weights_match_the_worked_examples() {
        // 1 − exp(−e/8) = 1 − exp(−0.339785) = 1 − 0.711923 = 0.288077
        close(dads_weight(1.0 / 8.0, true), 0.288077);
        // 1 − exp(−e/2) = 1 − exp(−1.359141) = 1 − 0.256881 = 0.743119
        close(dads_weight(0.5, true), 0.743119);
        // 1 − exp(−7e/8) = 1 − exp(−2.378497) = 1 − 0.092690 = 0.907310
        close(dads_weight(7.0 / 8.0, true), 0.907310);
        // negatives, all-correct and all-wrong groups keep the full penalty
        close(dads_weight(0.5, false), 1.0);
        close(dads_weight(1.0, true), 1.0);
        close(dads_weight(0.0, true), 1.0);
    }

    fn rows(advantages: [[f32; 2]; 2], acc: [f32; 2]) -> PolicyBatch {
        let mut b = batch(
            &[[1., 1.], [1., 0.]],
            &advantages,
            None,
            Some(&[[-1.0, -2.0], [-0.5, 0.0]]),
            2,
        );
        b.group_accuracy = acc.to_vec();
        b
    }

    #[test]
    fn loss_weights_each_row_by_its_kappa() {
        // row 0: positive of a group with accuracy 1/2 → κ = 0.743119
        // row 1: negative → κ = 1
        let b = rows([[1.0, 1.0], [-1.0, 0.0]], [0.5, 0.5]);
        let logp = [[-1.5, -2.0], [-0.5, -7.0]];
        let out = PolicyOutput {
            logprobs: t2(&logp, &dev()),
            entropy: None,
        };
        let l = DadsKl {
            coef: 2.0,
            ..DadsKl::default()
        }
        .loss(&b, &out)
        .unwrap();
        // row 0: δ = ref − logp = (0.5, 0): k3 = e^0.5 − 0.5 − 1 = 0.148721, 0
        //        token mean 0.0743606, × κ 0.743119 = 0.0552588
        // row 1: δ = (0): k3 = 0 (the pad column is masked) → 0
        // seq mean over 2 rows = 0.0276294, × coef 2 = 0.0552588
        close(scalar(l.value), 0.0552588);
        // mean κ = (0.743119 + 1) / 2 = 0.871559
        close(l.metrics[1].1, 0.871559);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let b = rows([[1.0, 1.0], [-1.0, 0.0]], [0.25, 0.25]);
        let kl = DadsKl::default();
        let logp = [[-0.7, -1.9], [-0.2, -3.0]];
        let g = check_grad(&logp, |x| {
            kl.loss(
                &b,
                &PolicyOutput {
                    logprobs: x,
                    entropy: None,
                },
            )
            .unwrap()
            .value
        });
        // the padding column gets no gradient
        assert_eq!(g[3], 0.0);
    }

    #[test]
    fn without_group_accuracies_it_is_a_clear_error() {
        let mut b = rows([[1.0, 1.0], [-1.0, 0.0]], [0.5, 0.5]);
        b.group_accuracy.clear();
        let out = PolicyOutput {
            logprobs: t2(&[[0.0; 2]; 2], &dev()),
            entropy: None,
        };
        let e = DadsKl::default().loss(&b, &out).unwrap_err().to_string();
        assert!(e.contains("group accuracies"), "{e}");
    }
}
