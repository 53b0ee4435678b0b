//! The clipped surrogate policy-gradient loss of PPO (Schulman et al. 2017, "Proximal
//! Policy Optimization Algorithms"), with DAPO's asymmetric "clip-higher" range (Yu et al.
//! 2025) and optional dual clip (Ye et al. 2020, "Mastering Complex Control in MOBA Games
//! with Deep Reinforcement Learning").
//!
//! Per response token, with `ρ_t = exp(log π_θ − log π_old)` and advantage `A_t`:
//!
//! ```text
//! ℓ_t = −min(ρ_t A_t, clip(ρ_t, 1 − eps_low, 1 + eps_high) A_t)
//! dual clip (A_t < 0):  ℓ_t = min(ℓ_t, −c A_t)
//! loss = aggregate(ℓ)
//! ```
//!
//! Without `old_logprobs` the ratio is taken against `log π_θ` detached (`ρ = 1`, the
//! on-policy case), which leaves the plain policy gradient `−A_t ∇ log π_θ`. The log-ratio
//! is zeroed outside the response mask, so padding columns can never overflow `exp`.

use anyhow::ensure;
use foil_core::batch::PolicyBatch;
use foil_core::{Loss, Objective, PolicyOutput};
use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, aggregate, indicator, masked_mean, scalar};

/// PPO's clipped surrogate with clip-higher and dual clip.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PpoClip {
    /// Lower clip range: the ratio is clipped at `1 − eps_low`.
    pub eps_low: f32,
    /// Upper clip range: the ratio is clipped at `1 + eps_high` (DAPO uses 0.28).
    pub eps_high: f32,
    /// Dual-clip constant `c > 1`: caps the loss of a negative-advantage token at `−c A`.
    pub dual_clip: Option<f32>,
    /// How token losses become one scalar.
    pub aggregate: Aggregate,
}

impl Default for PpoClip {
    fn default() -> Self {
        Self {
            eps_low: 0.2,
            eps_high: 0.2,
            dual_clip: None,
            aggregate: Aggregate::TokenMean,
        }
    }
}

#[typetag::serde(name = "ppo_clip")]
impl Objective for PpoClip {
    fn loss(&self, batch: &PolicyBatch, out: &PolicyOutput) -> anyhow::Result<Loss> {
        ensure!(
            self.eps_low >= 0.0 && self.eps_low < 1.0 && self.eps_high >= 0.0,
            "ppo_clip: need 0 ≤ eps_low < 1 and eps_high ≥ 0, got eps_low = {}, eps_high = {}",
            self.eps_low,
            self.eps_high
        );
        if let Some(c) = self.dual_clip {
            ensure!(c > 1.0, "ppo_clip: dual_clip must be > 1, got {c}");
        }
        let logp = out.logprobs.clone();
        let old = match &batch.old_logprobs {
            Some(old) => old.clone(),
            None => logp.clone().detach(),
        };
        let mask = &batch.mask;
        let adv = batch.advantages.clone();
        let ratio = ((logp - old) * mask.clone()).exp();
        let unclipped = ratio.clone() * adv.clone();
        let clipped = ratio.clone().clamp(1.0 - self.eps_low, 1.0 + self.eps_high) * adv.clone();
        let clip_active = indicator(unclipped.clone().greater(clipped.clone()), mask);
        let mut token_loss = unclipped.min_pair(clipped).neg();
        let mut dual_frac = None;
        if let Some(c) = self.dual_clip {
            let negative = adv.clone().lower_elem(0.0);
            let bound = adv.mul_scalar(-c);
            let capped = indicator(token_loss.clone().greater(bound.clone()), mask)
                * indicator(negative.clone(), mask);
            dual_frac = Some(masked_mean(capped, mask));
            token_loss = token_loss
                .clone()
                .mask_where(negative, token_loss.min_pair(bound));
        }
        let value = aggregate(token_loss, batch, self.aggregate);
        let mut metrics = vec![
            ("ppo_clip/loss".to_string(), scalar(value.clone())),
            (
                "ppo_clip/clip_frac".to_string(),
                masked_mean(clip_active, mask),
            ),
            ("ppo_clip/ratio_mean".to_string(), masked_mean(ratio, mask)),
        ];
        if let Some(f) = dual_frac {
            metrics.push(("ppo_clip/dual_clip_frac".to_string(), f));
        }
        Ok(Loss { value, metrics })
    }

    fn needs_old_logprobs(&self) -> bool {
        true
    }
}

foil_core::register_part!(
    Objective,
    "ppo_clip",
    PpoClip,
    "PPO clipped surrogate (Schulman et al. 2017), clip-higher (DAPO) and dual clip (Ye et al. 2020)"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{batch, check_grad, close, dev, t2};

    /// The loss of one token with ratio `rho` and advantage `a`.
    fn one(cfg: &PpoClip, rho: f32, a: f32) -> f32 {
        let b = batch(&[[1.0]], &[[a]], Some(&[[0.0]]), None, 1);
        let out = PolicyOutput {
            logprobs: t2(&[[rho.ln()]], &dev()),
            entropy: None,
        };
        scalar(cfg.loss(&b, &out).unwrap().value)
    }

    fn get(metrics: &[(String, f32)], name: &str) -> f32 {
        metrics.iter().find(|(k, _)| k == name).unwrap().1
    }

    #[test]
    fn clip_range_for_positive_and_negative_advantages() {
        let p = PpoClip::default(); // [0.8, 1.2]
        // A > 0: inside → −ρA; above → −1.2 A; below → −ρA (min keeps the unclipped)
        close(one(&p, 1.1, 1.0), -1.1);
        close(one(&p, 1.5, 1.0), -1.2);
        close(one(&p, 0.5, 1.0), -0.5);
        close(one(&p, 1.5, 2.0), -2.4); // −min(3.0, 2.4)
        // A < 0: ℓ = |A| max(ρ, clip ρ): below → 0.8 |A|; above → ρ |A|; inside → ρ |A|
        close(one(&p, 0.5, -1.0), 0.8);
        close(one(&p, 1.5, -1.0), 1.5);
        close(one(&p, 0.9, -2.0), 1.8);
    }

    #[test]
    fn clip_higher_is_asymmetric() {
        let p = PpoClip {
            eps_high: 0.28,
            ..PpoClip::default()
        };
        close(one(&p, 1.5, 1.0), -1.28); // −min(1.5, 1.28)
        close(one(&p, 0.5, -1.0), 0.8); // lower bound still 0.8
    }

    #[test]
    fn dual_clip_bounds_negative_advantages_only() {
        let p = PpoClip {
            dual_clip: Some(3.0),
            ..PpoClip::default()
        };
        close(one(&PpoClip::default(), 5.0, -1.0), 5.0); // unbounded without dual clip
        close(one(&p, 5.0, -1.0), 3.0); // min(5, 3·1)
        close(one(&p, 5.0, -0.5), 1.5); // min(2.5, 3·0.5)
        close(one(&p, 2.0, -1.0), 2.0); // under the bound
        close(one(&p, 5.0, 2.0), -2.4); // A > 0 untouched: −min(10, 2.4)
    }

    #[test]
    fn clip_fraction_counts_masked_tokens_only() {
        let d = dev();
        // tokens (ρ, A): (1.1, 2) inside, (1.5, 1) clipped | (0.5, −1) clipped,
        // (1.5, −1) inside; the third column (3.0, 1) would clip but is masked out
        let rho = [[1.1f32, 1.5, 3.0], [0.5, 1.5, 3.0]];
        let logp = rho.map(|r| r.map(f32::ln));
        let b = batch(
            &[[1., 1., 0.], [1., 1., 0.]],
            &[[2., 1., 1.], [-1., -1., 1.]],
            Some(&[[0.; 3]; 2]),
            None,
            3,
        );
        let out = PolicyOutput {
            logprobs: t2(&logp, &d),
            entropy: None,
        };
        let loss = PpoClip::default().loss(&b, &out).unwrap();
        // (−2.2 − 1.2 + 0.8 + 1.5) / 4 = −1.1 / 4 = −0.275
        close(scalar(loss.value), -0.275);
        close(get(&loss.metrics, "ppo_clip/clip_frac"), 0.5); // 2 of 4
        close(get(&loss.metrics, "ppo_clip/ratio_mean"), 1.15); // (1.1+1.5+0.5+1.5)/4
    }

    #[test]
    fn without_old_logprobs_the_ratio_is_one() {
        let d = dev();
        let b = batch(&[[1., 1., 0.]], &[[1., -2., 5.]], None, None, 3);
        let logp = t2(&[[-0.3f32, -1.2, -0.7]], &d).require_grad();
        let out = PolicyOutput {
            logprobs: logp.clone(),
            entropy: None,
        };
        let loss = PpoClip::default().loss(&b, &out).unwrap().value;
        // −(1·1 + (−2)·1) / 2 = 0.5
        close(scalar(loss.clone()), 0.5);
        // ∂/∂logp = −A ρ / Σm = [−0.5, 1.0, 0]
        let g = foil_core::batch::to_vec(logp.grad(&loss.backward()).unwrap());
        close(g[0], -0.5);
        close(g[1], 1.0);
        close(g[2], 0.0);
    }

    fn grad_check(p: &PpoClip, logp: &[[f32; 3]; 2]) {
        let b = batch(
            &[[1., 1., 1.], [0., 1., 1.]],
            &[[1.5, -0.7, 0.3], [2.0, -1.2, 0.9]],
            Some(&[[-1.0, -0.5, -2.0], [-0.3, -1.5, -0.8]]),
            None,
            4,
        );
        check_grad(logp, |x| {
            let out = PolicyOutput {
                logprobs: x,
                entropy: None,
            };
            p.loss(&b, &out).unwrap().value
        });
    }

    #[test]
    fn gradient_matches_finite_differences_inside_the_clip_range() {
        // every ratio within exp(±0.15) ⊂ (0.8, 1.2)
        let logp = [[-0.9, -0.6, -1.85], [-0.4, -1.4, -0.95]];
        for aggregate in [Aggregate::TokenMean, Aggregate::SeqMeanTokenMean] {
            grad_check(
                &PpoClip {
                    aggregate,
                    ..PpoClip::default()
                },
                &logp,
            );
        }
    }

    #[test]
    fn gradient_matches_finite_differences_with_clipped_and_dual_clipped_tokens() {
        // log-ratios (logp − old): 0.5 (A = 1.5, ρ = 1.65 clipped at 1.2),
        // 1.5 (A = −0.7, ρ|A| = 4.48·0.7 = 3.14 > 3·0.7: dual-clipped), 0.1 (inside),
        // masked, −0.5 (A = −1.2, ρ = 0.61 clipped at 0.8), 0.05 (inside)
        let logp = [[-0.5, 1.0, -1.9], [0.0, -2.0, -0.75]];
        grad_check(
            &PpoClip {
                dual_clip: Some(3.0),
                ..PpoClip::default()
            },
            &logp,
        );
    }

    #[test]
    fn rejects_a_dual_clip_at_most_one() {
        let p = PpoClip {
            dual_clip: Some(1.0),
            ..PpoClip::default()
        };
        let b = batch(&[[1.0]], &[[1.0]], None, None, 1);
        let out = PolicyOutput {
            logprobs: t2(&[[0.0]], &dev()),
            entropy: None,
        };
        assert!(p.loss(&b, &out).is_err());
    }
}
