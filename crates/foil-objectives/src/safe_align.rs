//! `safe_align`: likelihood on good ("blue") responses plus bounded gradient ascent on bad
//! ("red") ones — SAFE-ALIGN's Strategy B (Bhardwaj & Poria 2023, "Red-Teaming Large
//! Language Models using Chain of Utterances for Safety-Alignment", arXiv 2308.09662;
//! `../shared/docs/methods.md` §17).
//!
//! ```text
//! blue tokens: A_t > 0,   red tokens: A_t < 0     (tokens with A_t = 0 are ignored)
//! L_blue = mean over blue tokens of −log π_θ(y_t)
//! L_red  = mean over red tokens of min(−log π_θ(y_t), τ)
//! loss   = λ₁ · L_blue − λ₂ · L_red                  λ₁ = 1, λ₂ = 0.1, τ = 1.0
//! ```
//!
//! The clip makes the ascent bounded: a red token whose NLL already exceeds τ contributes
//! a constant and so no gradient, which keeps the unlikelihood term from driving the
//! model to degenerate outputs. The formula and constants are [secondary] (a summary of
//! the paper; the released training code is plain SFT and the ascent loss was not found
//! in it). `tau: null` turns the clip off (the unbounded ascent the paper warns about).
//!
//! Which responses are blue and which red comes from the sign of the batch's advantages,
//! so the same objective serves self-samples judged by a verifier (`advantage:
//! {type: w_reinforce, lambda: 1.0}` gives +1 to correct and −1 to incorrect ones) and
//! any estimator whose sign means good/bad.

use burn::tensor::Tensor;
use foil_core::backend::B;
use foil_core::batch::PolicyBatch;
use foil_core::{Loss, Objective, PolicyOutput};
use serde::{Deserialize, Serialize};

use crate::aggregate::{indicator, scalar};

/// `λ₁ · NLL(blue) − λ₂ · min(NLL(red), τ)`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SafeAlign {
    /// λ₁, weight of the likelihood on blue tokens.
    pub blue_weight: f32,
    /// λ₂, weight of the ascent on red tokens.
    pub red_weight: f32,
    /// τ: red tokens whose NLL exceeds it get no more ascent (`null`: no bound).
    pub tau: Option<f32>,
}

impl Default for SafeAlign {
    fn default() -> Self {
        Self {
            blue_weight: 1.0,
            red_weight: 0.1,
            tau: Some(1.0),
        }
    }
}

/// `Σ x·m / max(1, Σ m)`.
fn mean_over(x: Tensor<B, 2>, m: Tensor<B, 2>) -> Tensor<B, 1> {
    (x * m.clone()).sum() / m.sum().clamp_min(1.0)
}

#[typetag::serde(name = "safe_align")]
impl Objective for SafeAlign {
    fn loss(&self, batch: &PolicyBatch, out: &PolicyOutput) -> anyhow::Result<Loss> {
        if let Some(t) = self.tau {
            anyhow::ensure!(t > 0.0, "safe_align: tau must be > 0, got {t}");
        }
        let adv = batch.advantages.clone();
        let blue = indicator(adv.clone().greater_elem(0.0), &adv) * batch.mask.clone();
        let red = indicator(adv.clone().lower_elem(0.0), &adv) * batch.mask.clone();
        let nll = out.logprobs.clone().neg();
        let blue_nll = mean_over(nll.clone(), blue.clone());
        let red_nll = match self.tau {
            Some(t) => nll.clone().clamp_max(t),
            None => nll.clone(),
        };
        let red_term = mean_over(red_nll, red.clone());
        let value = blue_nll.clone().mul_scalar(self.blue_weight)
            - red_term.clone().mul_scalar(self.red_weight);
        let red_raw = mean_over(nll.detach(), red.clone());
        let metrics = vec![
            ("safe_align/blue_nll".to_string(), scalar(blue_nll)),
            ("safe_align/red_nll".to_string(), scalar(red_raw)),
            ("safe_align/red_clipped".to_string(), scalar(red_term)),
            ("safe_align/blue_tokens".to_string(), scalar(blue.sum())),
            ("safe_align/red_tokens".to_string(), scalar(red.sum())),
        ];
        Ok(Loss { value, metrics })
    }
}

foil_core::register_part!(
    Objective,
    "safe_align",
    SafeAlign,
    "SAFE-ALIGN: NLL on good responses − λ₂·min(NLL, τ) on bad ones (Bhardwaj & Poria 2023)"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{batch, check_grad, close, dev, t2};

    // row 0 blue (A = +1) with tokens NLL 0.5, 1.5; row 1 red (A = −1) with NLL 0.4, 2.0;
    // row 2 has A = 0 (ignored) — its third column is padding in the others
    fn setup() -> (PolicyBatch, [[f32; 2]; 3]) {
        let b = batch(
            &[[1., 1.], [1., 1.], [1., 0.]],
            &[[1., 1.], [-1., -1.], [0., 0.]],
            None,
            None,
            2,
        );
        (b, [[-0.5, -1.5], [-0.4, -2.0], [-3.0, -9.0]])
    }

    #[test]
    fn blue_likelihood_minus_clipped_red_likelihood() {
        let (b, logp) = setup();
        let out = PolicyOutput {
            logprobs: t2(&logp, &dev()),
            entropy: None,
        };
        let l = SafeAlign::default().loss(&b, &out).unwrap();
        // L_blue = (0.5 + 1.5)/2 = 1.0
        // L_red  = (min(0.4, 1) + min(2.0, 1))/2 = (0.4 + 1.0)/2 = 0.7
        // loss   = 1·1.0 − 0.1·0.7 = 0.93
        close(scalar(l.value), 0.93);
        close(l.metrics[1].1, 1.2); // unclipped red NLL (0.4 + 2.0)/2
        // without the bound: 1.0 − 0.1·1.2 = 0.88
        let l = SafeAlign {
            tau: None,
            ..SafeAlign::default()
        }
        .loss(&b, &out)
        .unwrap();
        close(scalar(l.value), 0.88);
    }

    #[test]
    fn red_tokens_past_tau_get_no_gradient() {
        let (b, logp) = setup();
        let obj = SafeAlign::default();
        // logp layout (row-major): [b0, b1, r0, r1, z0, z1]
        let g = check_grad(&logp, |x| {
            obj.loss(
                &b,
                &PolicyOutput {
                    logprobs: x,
                    entropy: None,
                },
            )
            .unwrap()
            .value
        });
        // blue: d(−mean logp)/d logp = −1/2 each
        close(g[0], -0.5);
        close(g[1], -0.5);
        // red token with NLL 0.4 < τ: −λ₂·d(−logp/2)/d logp = +0.1/2 = 0.05 (ascent lowers logp)
        close(g[2], 0.05);
        // red token with NLL 2.0 > τ: clipped, no gradient
        close(g[3], 0.0);
        // A = 0 rows are ignored
        close(g[4], 0.0);
        close(g[5], 0.0);
    }

    #[test]
    fn bad_tau_is_an_error() {
        let (b, logp) = setup();
        let out = PolicyOutput {
            logprobs: t2(&logp, &dev()),
            entropy: None,
        };
        let e = SafeAlign {
            tau: Some(0.0),
            ..SafeAlign::default()
        }
        .loss(&b, &out)
        .unwrap_err()
        .to_string();
        assert!(e.contains("tau must be > 0"), "{e}");
    }
}
