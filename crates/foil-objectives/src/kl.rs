//! A KL penalty towards the frozen reference policy, estimated per sampled token (Schulman
//! 2020, "Approximating KL Divergence", <http://joschu.net/blog/kl-approx.html>).
//!
//! With `δ_t = log π_ref − log π_θ` on the sampled token:
//!
//! ```text
//! k1 = −δ                 (unbiased for KL(π_θ‖π_ref), high variance, can be negative)
//! k2 = δ² / 2             (biased, low variance)
//! k3 = exp(δ) − δ − 1     (unbiased, low variance, always ≥ 0; GRPO's choice)
//! loss = coef · aggregate(k)
//! ```
//!
//! `δ` is zeroed outside the response mask, so padding columns cannot overflow `exp`.

use anyhow::{Context, ensure};
use burn::tensor::Tensor;
use foil_core::backend::B;
use foil_core::batch::PolicyBatch;
use foil_core::{Loss, Objective, PolicyOutput};
use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, aggregate, masked_mean, scalar};

/// Which per-token estimator of `KL(π_θ‖π_ref)` to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KlEstimator {
    /// `log π_θ − log π_ref`.
    K1,
    /// `(log π_ref − log π_θ)² / 2`.
    K2,
    /// `exp(δ) − δ − 1`.
    #[default]
    K3,
}

impl KlEstimator {
    /// The per-token estimate from `δ = log π_ref − log π_θ`.
    pub fn estimate(self, delta: Tensor<B, 2>) -> Tensor<B, 2> {
        match self {
            KlEstimator::K1 => delta.neg(),
            KlEstimator::K2 => delta.square().mul_scalar(0.5),
            KlEstimator::K3 => (delta.clone().exp() - delta).sub_scalar(1.0),
        }
    }
}

/// `coef · KL(π_θ‖π_ref)`, estimated on the sampled tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Kl {
    /// Weight of the penalty (β).
    pub coef: f32,
    /// Per-token estimator.
    pub estimator: KlEstimator,
    /// How token estimates become one scalar.
    pub aggregate: Aggregate,
}

impl Default for Kl {
    fn default() -> Self {
        Self {
            coef: 0.001,
            estimator: KlEstimator::K3,
            aggregate: Aggregate::TokenMean,
        }
    }
}

#[typetag::serde(name = "kl")]
impl Objective for Kl {
    fn loss(&self, batch: &PolicyBatch, out: &PolicyOutput) -> anyhow::Result<Loss> {
        let reference = batch
            .ref_logprobs
            .clone()
            .context("kl: the batch has no reference log-probs (ref_logprobs)")?;
        ensure!(
            reference.dims() == out.logprobs.dims(),
            "kl: reference log-probs are {:?}, policy log-probs {:?}",
            reference.dims(),
            out.logprobs.dims()
        );
        let delta = (reference - out.logprobs.clone()) * batch.mask.clone();
        let k = self.estimator.estimate(delta);
        let mean = masked_mean(k.clone(), &batch.mask);
        let value = aggregate(k, batch, self.aggregate).mul_scalar(self.coef);
        let metrics = vec![
            ("kl/mean".to_string(), mean),
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
    "kl",
    Kl,
    "KL penalty to the reference policy, k1/k2/k3 estimators (Schulman 2020)"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{batch, check_grad, close, dev, t2};

    fn kl_of(estimator: KlEstimator, logp: f32, reference: f32, coef: f32) -> Loss {
        let b = batch(&[[1.0]], &[[0.0]], None, Some(&[[reference]]), 1);
        let out = PolicyOutput {
            logprobs: t2(&[[logp]], &dev()),
            entropy: None,
        };
        let kl = Kl {
            coef,
            estimator,
            ..Kl::default()
        };
        kl.loss(&b, &out).unwrap()
    }

    fn value(estimator: KlEstimator, logp: f32, reference: f32) -> f32 {
        scalar(kl_of(estimator, logp, reference, 1.0).value)
    }

    const LN2: f32 = std::f32::consts::LN_2;

    #[test]
    fn estimators_at_delta_ln2() {
        // δ = ref − logp = 0 − (−ln 2) = ln 2 = 0.693147
        close(value(KlEstimator::K1, -LN2, 0.0), -LN2); // −δ = −0.693147
        close(value(KlEstimator::K2, -LN2, 0.0), 0.240_227); // 0.480453 / 2
        close(value(KlEstimator::K3, -LN2, 0.0), 0.306_853); // 2 − 0.693147 − 1
    }

    #[test]
    fn estimators_at_delta_minus_ln2() {
        // δ = −ln 2
        close(value(KlEstimator::K1, 0.0, -LN2), LN2); // −δ = 0.693147
        close(value(KlEstimator::K2, 0.0, -LN2), 0.240_227);
        close(value(KlEstimator::K3, 0.0, -LN2), 0.193_147); // 0.5 + 0.693147 − 1
    }

    #[test]
    fn coef_scales_the_loss_but_not_the_logged_mean() {
        let l = kl_of(KlEstimator::K3, -LN2, 0.0, 0.1);
        close(scalar(l.value), 0.030_685_3);
        let mean = l.metrics.iter().find(|(k, _)| k == "kl/mean").unwrap().1;
        close(mean, 0.306_853);
    }

    #[test]
    fn missing_reference_is_an_error() {
        let b = batch(&[[1.0]], &[[0.0]], None, None, 1);
        let out = PolicyOutput {
            logprobs: t2(&[[0.0]], &dev()),
            entropy: None,
        };
        let err = Kl::default().loss(&b, &out).unwrap_err().to_string();
        assert!(err.contains("ref_logprobs"), "{err}");
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let b = batch(
            &[[1., 1., 0.], [1., 1., 1.]],
            &[[0.; 3]; 2],
            None,
            Some(&[[-1.0, -0.2, -3.0], [-0.5, -2.5, -1.1]]),
            3,
        );
        let logp = [[-0.4, -1.3, -0.1], [-0.9, -0.6, -1.1]];
        for estimator in [KlEstimator::K1, KlEstimator::K2, KlEstimator::K3] {
            for aggregate in [Aggregate::TokenMean, Aggregate::SeqMeanTokenSum] {
                let kl = Kl {
                    coef: 0.5,
                    estimator,
                    aggregate,
                };
                check_grad(&logp, |x| {
                    let out = PolicyOutput {
                        logprobs: x,
                        entropy: None,
                    };
                    kl.loss(&b, &out).unwrap().value
                });
            }
        }
    }
}
