//! An entropy bonus: minimising this loss maximises the policy's per-token entropy
//! `H_t = −Σ_v π_θ(v | …) log π_θ(v | …)` on response positions, which keeps exploration
//! alive (Williams & Peng 1991; the entropy term of PPO, Schulman et al. 2017, and A3C,
//! Mnih et al. 2016).
//!
//! ```text
//! loss = −coef · aggregate(H)
//! ```

use anyhow::{Context, ensure};
use foil_core::batch::PolicyBatch;
use foil_core::{Loss, Objective, PolicyOutput};
use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, aggregate, masked_mean, scalar};

/// `−coef · H`: a bonus for high-entropy policies.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Entropy {
    /// Weight of the bonus.
    pub coef: f32,
    /// How token entropies become one scalar.
    pub aggregate: Aggregate,
}

impl Default for Entropy {
    fn default() -> Self {
        Self {
            coef: 0.001,
            aggregate: Aggregate::TokenMean,
        }
    }
}

#[typetag::serde(name = "entropy")]
impl Objective for Entropy {
    fn loss(&self, batch: &PolicyBatch, out: &PolicyOutput) -> anyhow::Result<Loss> {
        let h = out
            .entropy
            .clone()
            .context("entropy: the policy output has no per-token entropy")?;
        ensure!(
            h.dims() == batch.mask.dims(),
            "entropy: entropy is {:?}, the batch mask {:?}",
            h.dims(),
            batch.mask.dims()
        );
        let mean = masked_mean(h.clone(), &batch.mask);
        let value = aggregate(h, batch, self.aggregate).mul_scalar(-self.coef);
        let metrics = vec![
            ("entropy/mean".to_string(), mean),
            ("entropy/loss".to_string(), scalar(value.clone())),
        ];
        Ok(Loss { value, metrics })
    }

    fn needs_entropy(&self) -> bool {
        true
    }
}

foil_core::register_part!(
    Objective,
    "entropy",
    Entropy,
    "entropy bonus −coef·H on response tokens (maximises policy entropy)"
);

#[cfg(test)]
mod tests {
    use burn::tensor::Tensor;
    use foil_core::backend::B;
    use foil_core::batch::token_entropy;

    use super::*;
    use crate::testutil::{batch, check_grad_nd, close, dev, t2};

    #[test]
    fn loss_is_minus_coef_times_the_mean_entropy() {
        let d = dev();
        let b = batch(&[[1., 1., 0.]], &[[0.; 3]], None, None, 3);
        let out = PolicyOutput {
            logprobs: t2(&[[0.; 3]], &d),
            entropy: Some(t2(&[[0.5, 1.0, 2.0]], &d)),
        };
        let l = Entropy {
            coef: 0.1,
            ..Entropy::default()
        }
        .loss(&b, &out)
        .unwrap();
        // −0.1 · (0.5 + 1.0) / 2 = −0.075; the masked 2.0 is ignored
        close(scalar(l.value), -0.075);
        close(l.metrics[0].1, 0.75);
    }

    #[test]
    fn missing_entropy_is_an_error() {
        let b = batch(&[[1.0]], &[[0.0]], None, None, 1);
        let out = PolicyOutput {
            logprobs: t2(&[[0.0]], &dev()),
            entropy: None,
        };
        assert!(Entropy::default().loss(&b, &out).is_err());
    }

    #[test]
    fn gradient_through_token_entropy_matches_finite_differences() {
        // logits [2 rows, T = 3, V = 3] → entropy [2, 2]
        let logits = vec![
            0.2, -0.5, 1.0, /**/ 0.0, 0.3, -0.2, /**/ 1.5, 0.1, -1.0, //
            -0.7, 0.4, 0.9, /**/ 2.0, -1.0, 0.5, /**/ 0.0, 0.0, 0.0,
        ];
        let b = batch(&[[1., 1.], [0., 1.]], &[[0.; 2]; 2], None, None, 2);
        let d = dev();
        let p = Entropy {
            coef: 0.5,
            aggregate: Aggregate::SeqMeanTokenMean,
        };
        let g = check_grad_nd(logits, [2, 3, 3], |x: Tensor<B, 3>| {
            let out = PolicyOutput {
                logprobs: Tensor::<B, 2>::zeros([2, 2], &d),
                entropy: Some(token_entropy(x)),
            };
            p.loss(&b, &out).unwrap().value
        });
        // the last column of each row (no target) and the masked (row 1, col 0) carry none
        let silent = g[6..9].iter().chain(&g[9..12]).chain(&g[15..18]);
        assert!(silent.copied().all(|v| v == 0.0), "{g:?}");
    }
}
