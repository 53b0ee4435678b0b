//! A weighted sum of objectives, e.g. GRPO's `ppo_clip + kl` (Shao et al. 2024,
//! "DeepSeekMath") or PPO's `clip + entropy bonus` (Schulman et al. 2017):
//!
//! ```text
//! loss = Σ_i w_i · L_i        (w_i = 1 when `weights` is empty)
//! ```
//!
//! It needs reference log-probs, entropy or old log-probs when any term does, and its
//! metrics are the terms' metrics, in order, under their own names.

use anyhow::{Context, ensure};
use foil_core::batch::PolicyBatch;
use foil_core::{Loss, Objective, PolicyOutput};
use serde::{Deserialize, Serialize};

/// `Σ w_i L_i` over nested objectives. Not `Clone`: its terms are trait objects.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sum {
    /// The objectives to add.
    pub terms: Vec<Box<dyn Objective>>,
    /// One weight per term; empty means every weight is 1.
    pub weights: Vec<f32>,
}

impl Sum {
    /// The weight of term `i`.
    fn weight(&self, i: usize) -> f32 {
        self.weights.get(i).copied().unwrap_or(1.0)
    }
}

#[typetag::serde(name = "sum")]
impl Objective for Sum {
    fn loss(&self, batch: &PolicyBatch, out: &PolicyOutput) -> anyhow::Result<Loss> {
        ensure!(!self.terms.is_empty(), "sum: `terms` is empty");
        ensure!(
            self.weights.is_empty() || self.weights.len() == self.terms.len(),
            "sum: {} weights for {} terms (give one per term, or none for all 1.0)",
            self.weights.len(),
            self.terms.len()
        );
        let mut value = None;
        let mut metrics = Vec::new();
        for (i, term) in self.terms.iter().enumerate() {
            let l = term
                .loss(batch, out)
                .with_context(|| format!("sum: term {i}"))?;
            let weighted = l.value.mul_scalar(self.weight(i));
            value = Some(match value {
                None => weighted,
                Some(v) => v + weighted,
            });
            metrics.extend(l.metrics);
        }
        let value = value.expect("terms is not empty");
        Ok(Loss { value, metrics })
    }

    fn needs_reference(&self) -> bool {
        self.terms.iter().any(|t| t.needs_reference())
    }

    fn needs_entropy(&self) -> bool {
        self.terms.iter().any(|t| t.needs_entropy())
    }

    fn needs_old_logprobs(&self) -> bool {
        self.terms.iter().any(|t| t.needs_old_logprobs())
    }

    fn state(&self) -> Option<serde_json::Value> {
        let states: Vec<_> = self.terms.iter().map(|t| t.state()).collect();
        states
            .iter()
            .any(Option::is_some)
            .then(|| serde_json::json!(states))
    }

    fn restore(&self, state: &serde_json::Value) -> anyhow::Result<()> {
        let states = state
            .as_array()
            .context("sum: the checkpointed state is not a list")?;
        ensure!(
            states.len() == self.terms.len(),
            "sum: the checkpoint holds state for {} terms, the recipe has {}",
            states.len(),
            self.terms.len()
        );
        for (i, (t, s)) in self.terms.iter().zip(states).enumerate() {
            if !s.is_null() {
                t.restore(s).with_context(|| format!("sum: term {i}"))?;
            }
        }
        Ok(())
    }
}

foil_core::register_part!(
    Objective,
    "sum",
    Sum,
    "weighted sum Σ w_i L_i of objectives (e.g. ppo_clip + kl as in GRPO)"
);

#[cfg(test)]
mod tests {
    use burn::tensor::{Int, Tensor, TensorData};
    use foil_core::backend::B;
    use foil_core::batch::{to_vec, token_entropy, token_logprobs};

    use super::*;
    use crate::aggregate::{Aggregate, scalar};
    use crate::entropy::Entropy;
    use crate::kl::Kl;
    use crate::nll::Nll;
    use crate::ppo_clip::PpoClip;
    use crate::testutil::{batch, check_grad_nd, close, dev, t2};

    fn parse(yaml: &str) -> Result<Box<dyn Objective>, serde_saphyr::Error> {
        serde_saphyr::from_str::<Box<dyn Objective>>(yaml)
    }

    #[test]
    fn deserialises_from_yaml() {
        let o = parse(
            "type: sum\nterms:\n  - {type: ppo_clip, eps_high: 0.28}\n  - {type: kl, coef: 0.1}\n",
        )
        .unwrap();
        let s = format!("{o:?}");
        assert!(
            s.contains("eps_high: 0.28") && s.contains("coef: 0.1"),
            "{s}"
        );
        assert!(o.needs_reference());
        assert!(o.needs_old_logprobs());
        assert!(!o.needs_entropy());
    }

    #[test]
    fn every_objective_is_registered_with_its_defaults() {
        let names = foil_core::registry::names_of("Objective");
        for n in [
            "entropy",
            "kl",
            "nll",
            "ppo_clip",
            "sum",
            "gspo",
            "adaptive_kl",
            "kl_in_reward",
            "entropy_mask",
        ] {
            assert!(names.contains(&n), "{n} missing from {names:?}");
        }
        let listing = foil_core::registry::listing();
        assert!(listing.contains("eps_high: 0.2"), "{listing}");
        assert!(listing.contains("estimator: k3"), "{listing}");
    }

    #[test]
    fn rejects_unknown_fields() {
        assert!(parse("type: sum\nterms: []\nweight: [1.0]\n").is_err());
        assert!(parse("type: sum\nterms:\n  - {type: kl, cof: 0.1}\n").is_err());
        assert!(parse("type: ppo_clip\nepsilon: 0.2\n").is_err());
        assert!(parse("type: kl\nestimator: k4\n").is_err());
    }

    #[test]
    fn weighted_sum_of_the_terms() {
        // nll = mean(1, 2) = 1.5; kl k1 = mean(logp − ref) = mean(−1 − 0, −2 − (−1)) = −1
        // 2 · 1.5 + 0.5 · (−1) = 2.5
        let b = batch(&[[1., 1.]], &[[0.; 2]], None, Some(&[[0.0, -1.0]]), 2);
        let out = PolicyOutput {
            logprobs: t2(&[[-1.0, -2.0]], &dev()),
            entropy: None,
        };
        let s: Box<dyn Objective> = parse(
            "type: sum\nterms:\n  - {type: nll}\n  - {type: kl, coef: 1.0, estimator: k1}\nweights: [2.0, 0.5]\n",
        )
        .unwrap();
        let l = s.loss(&b, &out).unwrap();
        close(scalar(l.value), 2.5);
        let names: Vec<&str> = l.metrics.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["nll/mean", "nll/loss", "kl/mean", "kl/loss"]);
    }

    #[test]
    fn weights_must_match_terms() {
        let b = batch(&[[1.]], &[[0.]], None, None, 1);
        let out = PolicyOutput {
            logprobs: t2(&[[-1.0]], &dev()),
            entropy: None,
        };
        let s = Sum {
            terms: vec![Box::new(Nll::default()), Box::new(Nll::default())],
            weights: vec![1.0],
        };
        assert!(s.loss(&b, &out).is_err());
        assert!(Sum::default().loss(&b, &out).is_err());
    }

    #[test]
    fn gradient_through_logits_matches_finite_differences() {
        // logits [2 rows, T = 4, V = 3]; targets = tokens[:, 1:] → [2, 3]
        let logits = vec![
            0.2, -0.5, 1.0, /**/ 0.0, 0.3, -0.2, /**/ 1.5, 0.1, -1.0, /**/ 0.4, 0.4,
            0.1, //
            -0.7, 0.4, 0.9, /**/ 2.0, -1.0, 0.5, /**/ 0.0, 0.1, 0.0, /**/ -0.3, 0.6,
            0.2,
        ];
        let shape = [2, 4, 3];
        let d = dev();
        let targets: Tensor<B, 2, Int> =
            Tensor::from_data(TensorData::new(vec![2i64, 0, 1, 1, 2, 0], [2, 3]), &d);
        let logp_of = |x: Tensor<B, 3>| token_logprobs(x, targets.clone());
        // old log-probs: the current ones shifted by ±0.05, so every ratio is within
        // e^±0.05 ⊂ (0.8, 1.2) and stays there under the h = 1e-3 perturbations
        let current = to_vec(logp_of(Tensor::from_data(
            TensorData::new(logits.clone(), shape),
            &d,
        )));
        let shifts = [0.05, -0.05, 0.03, -0.02, 0.04, -0.01];
        let old: Vec<f32> = current.iter().zip(shifts).map(|(c, s)| c - s).collect();
        let old = [[old[0], old[1], old[2]], [old[3], old[4], old[5]]];
        let b = batch(
            &[[0., 1., 1.], [1., 1., 1.]],
            &[[0.0, 1.3, -0.4], [-0.8, 0.6, 2.0]],
            Some(&old),
            Some(&[[-1.0, -0.7, -2.0], [-1.5, -0.3, -1.2]]),
            3,
        );
        let sum = Sum {
            terms: vec![
                Box::new(PpoClip::default()),
                Box::new(Kl {
                    coef: 0.1,
                    ..Kl::default()
                }),
                Box::new(Entropy {
                    coef: 0.01,
                    aggregate: Aggregate::SeqMeanTokenMean,
                }),
                Box::new(Nll {
                    coef: 0.3,
                    aggregate: Aggregate::SeqMeanTokenSumNorm,
                }),
            ],
            weights: vec![1.0, 2.0, 1.0, 0.5],
        };
        assert!(sum.needs_entropy() && sum.needs_reference() && sum.needs_old_logprobs());
        check_grad_nd(logits, shape, |x: Tensor<B, 3>| {
            let out = PolicyOutput {
                logprobs: logp_of(x.clone()),
                entropy: Some(token_entropy(x)),
            };
            sum.loss(&b, &out).unwrap().value
        });
    }
}
