//! Negative log-likelihood of the response tokens: the supervised fine-tuning loss, or a
//! likelihood term mixed into RL (e.g. the NLL term of Pang et al. 2024, "Iterative
//! Reasoning Preference Optimization").
//!
//! ```text
//! loss = coef · aggregate(−log π_θ(y_t | …))
//! ```

use foil_core::batch::PolicyBatch;
use foil_core::{Loss, Objective, PolicyOutput};
use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, aggregate, masked_mean, scalar};

/// `coef · (−log π_θ)` on the response tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Nll {
    /// Weight of the term.
    pub coef: f32,
    /// How token losses become one scalar.
    pub aggregate: Aggregate,
}

impl Default for Nll {
    fn default() -> Self {
        Self {
            coef: 1.0,
            aggregate: Aggregate::TokenMean,
        }
    }
}

#[typetag::serde(name = "nll")]
impl Objective for Nll {
    fn loss(&self, batch: &PolicyBatch, out: &PolicyOutput) -> anyhow::Result<Loss> {
        let nll = out.logprobs.clone().neg();
        let mean = masked_mean(nll.clone(), &batch.mask);
        let value = aggregate(nll, batch, self.aggregate).mul_scalar(self.coef);
        let metrics = vec![
            ("nll/mean".to_string(), mean),
            ("nll/loss".to_string(), scalar(value.clone())),
        ];
        Ok(Loss { value, metrics })
    }
}

foil_core::register_part!(
    Objective,
    "nll",
    Nll,
    "negative log-likelihood of the response tokens (SFT / likelihood term)"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{batch, check_grad, close, dev, t2};

    #[test]
    fn token_mean_of_minus_logp() {
        let b = batch(&[[1., 1., 0.], [0., 1., 1.]], &[[0.; 3]; 2], None, None, 3);
        let out = PolicyOutput {
            logprobs: t2(&[[-1.0, -2.0, -9.0], [-9.0, -0.5, -1.5]], &dev()),
            entropy: None,
        };
        let nll = Nll {
            coef: 2.0,
            ..Nll::default()
        };
        let l = nll.loss(&b, &out).unwrap();
        // mean(1, 2, 0.5, 1.5) = 5 / 4 = 1.25; × 2 = 2.5
        close(scalar(l.value), 2.5);
        close(l.metrics[0].1, 1.25);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let b = batch(&[[1., 1., 0.], [1., 1., 1.]], &[[0.; 3]; 2], None, None, 5);
        let logp = [[-0.4, -1.3, -0.1], [-0.9, -0.6, -1.1]];
        for aggregate in [
            Aggregate::TokenMean,
            Aggregate::SeqMeanTokenMean,
            Aggregate::SeqMeanTokenSum,
            Aggregate::SeqMeanTokenSumNorm,
        ] {
            let nll = Nll {
                coef: 1.0,
                aggregate,
            };
            let g = check_grad(&logp, |x| {
                let out = PolicyOutput {
                    logprobs: x,
                    entropy: None,
                };
                nll.loss(&b, &out).unwrap().value
            });
            if aggregate == Aggregate::SeqMeanTokenSumNorm {
                // −1 / (n · max_response_tokens) = −1 / 10 on every response token
                close(g[0], -0.1);
                close(g[2], 0.0);
            }
        }
    }
}
