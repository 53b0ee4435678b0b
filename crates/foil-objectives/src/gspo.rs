//! `gspo`: Group Sequence Policy Optimization (Zheng et al. 2025, "Group Sequence Policy
//! Optimization", arXiv 2507.18071; verl `compute_policy_loss_gspo`): the clipped surrogate
//! of PPO with **one importance ratio per sequence**, the length-normalised likelihood
//! ratio, instead of one per token.
//!
//! For completion `y_i` with response tokens `t = 1..|y_i|` and sequence advantage `A_i`:
//!
//! ```text
//! s_i  = exp( (1/|y_i|) Σ_t (log π_θ(y_i,t | …) − log π_old(y_i,t | …)) )
//! ℓ_i  = −min( s_i A_i, clip(s_i, 1 − eps_low, 1 + eps_high) A_i )
//! loss = (1/N') Σ_i ℓ_i                 (aggregate: seq_mean_token_mean, the default)
//! ```
//!
//! It is computed in the paper's GSPO-token form (§4.3), which takes per-token advantages:
//! `s_{i,t} = sg[s_i] · π_θ(y_i,t) / sg[π_θ(y_i,t)]` has the value `s_i` on every token and
//! the gradient `s_i ∇ log π_θ(y_i,t)`; with a sequence-level advantage (every token of
//! `y_i` sharing `A_i`, what the group estimators produce) its loss and gradient equal
//! GSPO's exactly. The log-ratio is clamped at 10 before `exp` (as verl does), and
//! `eps_low` / `eps_high` default to the paper's 3e-4 / 4e-4 — sequence ratios stay much
//! closer to 1 than token ratios. Without `old_logprobs`, `π_old = sg[π_θ]` (`s_i = 1`).

use anyhow::ensure;
use foil_core::batch::{PolicyBatch, to_vec};
use foil_core::{Loss, Objective, PolicyOutput};
use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, aggregate, indicator, masked_mean, scalar};

/// GSPO's sequence-level clipped surrogate.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Gspo {
    /// Lower clip range: `s_i` is clipped at `1 − eps_low`.
    pub eps_low: f32,
    /// Upper clip range: `s_i` is clipped at `1 + eps_high`.
    pub eps_high: f32,
    /// How token losses become one scalar (`seq_mean_token_mean` is the paper's `1/G Σ_i`).
    pub aggregate: Aggregate,
}

impl Default for Gspo {
    fn default() -> Self {
        Self {
            eps_low: 3e-4,
            eps_high: 4e-4,
            aggregate: Aggregate::SeqMeanTokenMean,
        }
    }
}

#[typetag::serde(name = "gspo")]
impl Objective for Gspo {
    fn loss(&self, batch: &PolicyBatch, out: &PolicyOutput) -> anyhow::Result<Loss> {
        ensure!(
            self.eps_low >= 0.0 && self.eps_low < 1.0 && self.eps_high >= 0.0,
            "gspo: need 0 ≤ eps_low < 1 and eps_high ≥ 0, got eps_low = {}, eps_high = {}",
            self.eps_low,
            self.eps_high
        );
        let logp = out.logprobs.clone();
        let old = match &batch.old_logprobs {
            Some(old) => old.clone(),
            None => logp.clone().detach(),
        };
        let mask = &batch.mask;
        // log s_i: the mean token log-ratio over the response, [n, 1]
        let counts = mask.clone().sum_dim(1).clamp_min(1.0);
        let log_s = ((logp.clone() - old) * mask.clone()).sum_dim(1) / counts;
        // GSPO-token: value log s_i on every token, gradient ∇ log π_θ(y_t)
        let log_ratio = (logp.clone() - logp.detach() + log_s.clone().detach()).clamp_max(10.0);
        let ratio = log_ratio.exp();
        let adv = batch.advantages.clone();
        let unclipped = ratio.clone() * adv.clone();
        let clipped = ratio.clamp(1.0 - self.eps_low, 1.0 + self.eps_high) * adv;
        let clip_active = indicator(unclipped.clone().greater(clipped.clone()), mask);
        let token_loss = unclipped.min_pair(clipped).neg();
        let value = aggregate(token_loss, batch, self.aggregate);
        // mean s_i over the rows with a response token
        let s: Vec<f32> = to_vec(log_s.detach())
            .iter()
            .zip(&batch.response_lengths)
            .filter(|&(_, &l)| l > 0)
            .map(|(x, _)| x.min(10.0).exp())
            .collect();
        let ratio_mean = s.iter().sum::<f32>() / s.len().max(1) as f32;
        let metrics = vec![
            ("gspo/loss".to_string(), scalar(value.clone())),
            ("gspo/clip_frac".to_string(), masked_mean(clip_active, mask)),
            ("gspo/ratio_mean".to_string(), ratio_mean),
        ];
        Ok(Loss { value, metrics })
    }

    fn needs_old_logprobs(&self) -> bool {
        true
    }
}

foil_core::register_part!(
    Objective,
    "gspo",
    Gspo,
    "GSPO: PPO clip on one length-normalised ratio per sequence, eps 3e-4/4e-4 (Zheng et al. 2025)"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ppo_clip::PpoClip;
    use crate::testutil::{batch, check_grad, close, dev, t2};

    fn get(metrics: &[(String, f32)], name: &str) -> f32 {
        metrics.iter().find(|(k, _)| k == name).unwrap().1
    }

    // row 0: 2 response tokens, log-ratios 0.1, 0.3 (the third column is masked, ratio e^5)
    //        → log s_0 = 0.2, s_0 = e^0.2 = 1.221403; A_0 = +1
    // row 1: 3 response tokens, log-ratios 0.001, 0.002, 0.003
    //        → log s_1 = 0.002, s_1 = e^0.002 = 1.002002; A_1 = −2
    const OLD: [[f32; 3]; 2] = [[-1.0, -2.0, -0.5], [-0.4, -1.2, -0.9]];
    const LOGP: [[f32; 3]; 2] = [[-0.9, -1.7, 4.5], [-0.399, -1.198, -0.897]];
    const MASK: [[f32; 3]; 2] = [[1., 1., 0.], [1., 1., 1.]];
    const ADV: [[f32; 3]; 2] = [[1., 1., 1.], [-2., -2., -2.]];

    fn run(p: &Gspo, logp: &[[f32; 3]; 2]) -> Loss {
        let b = batch(&MASK, &ADV, Some(&OLD), None, 3);
        let out = PolicyOutput {
            logprobs: t2(logp, &dev()),
            entropy: None,
        };
        p.loss(&b, &out).unwrap()
    }

    #[test]
    fn one_clipped_ratio_per_sequence_by_hand() {
        // default clip range [0.9997, 1.0004]:
        // row 0: A > 0, s_0 = 1.221403 > 1.0004 → ℓ_0 = −min(1.221403, 1.0004) = −1.0004
        // row 1: A < 0, s_1 = 1.002002 → ℓ_1 = −min(−2.004004, −2.0008) = 2.004004
        // seq_mean_token_mean: (−1.0004 + 2.004004)/2 = 0.501802
        let l = run(&Gspo::default(), &LOGP);
        close(scalar(l.value), 0.501_802);
        // clipped tokens: row 0's two of five response tokens → 0.4
        close(get(&l.metrics, "gspo/clip_frac"), 0.4);
        // (1.221403 + 1.002002)/2 = 1.111702
        assert!((get(&l.metrics, "gspo/ratio_mean") - 1.111_702).abs() < 1e-4);
        // token_mean weighs rows by length: (2·(−1.0004) + 3·2.004004)/5 = 0.802242
        let tm = Gspo {
            aggregate: Aggregate::TokenMean,
            ..Gspo::default()
        };
        assert!((scalar(run(&tm, &LOGP).value) - 0.802_242).abs() < 1e-4);
    }

    #[test]
    fn gradient_is_the_sequence_ratio_spread_over_the_tokens() {
        // row 0 is clipped: no gradient. Row 1: ℓ_1 = −A_1 s_1, ∂s_1/∂logp_t = s_1/3, so
        // ∂loss/∂logp_{1,t} = (1/2)·(−A_1)·s_1/3 = 2·1.002002/6 = 0.334001 on each token
        let b = batch(&MASK, &ADV, Some(&OLD), None, 3);
        let x = t2(&LOGP, &dev()).require_grad();
        let l = Gspo::default()
            .loss(
                &b,
                &PolicyOutput {
                    logprobs: x.clone(),
                    entropy: None,
                },
            )
            .unwrap();
        let g = to_vec(x.grad(&l.value.backward()).unwrap());
        for (i, want) in [0.0, 0.0, 0.0, 0.334_001, 0.334_001, 0.334_001]
            .into_iter()
            .enumerate()
        {
            assert!((g[i] - want).abs() < 1e-5, "{g:?}");
        }
    }

    #[test]
    fn gradient_matches_finite_differences_of_the_sequence_objective() {
        // wide clip range so the h = 1e-3 perturbations stay on one side of it; every
        // sequence ratio within e^±0.1. The value is GSPO's own (s_i from the perturbed
        // log-probs), so agreement checks the GSPO-token gradient against GSPO's.
        let p = Gspo {
            eps_low: 0.2,
            eps_high: 0.2,
            ..Gspo::default()
        };
        let b = batch(
            &MASK,
            &[[1.5, 1.5, 1.5], [-0.7, -0.7, -0.7]],
            Some(&OLD),
            None,
            3,
        );
        let logp = [[-0.95, -1.9, 0.0], [-0.45, -1.1, -0.95]];
        for aggregate in [Aggregate::SeqMeanTokenMean, Aggregate::TokenMean] {
            let p = Gspo {
                aggregate,
                ..p.clone()
            };
            check_grad(&logp, |x| {
                let out = PolicyOutput {
                    logprobs: x,
                    entropy: None,
                };
                p.loss(&b, &out).unwrap().value
            });
        }
    }

    #[test]
    fn at_ratio_one_it_is_the_token_level_surrogate() {
        // without old log-probs s_i = 1 and nothing is clipped: the same loss as ppo_clip,
        // −(1·2 + (−2)·3)/5 = 0.8 (token mean) or −(1 + (−2))/2 = 0.5 (sequence mean)
        let b = batch(&MASK, &ADV, None, None, 3);
        let out = PolicyOutput {
            logprobs: t2(&LOGP, &dev()),
            entropy: None,
        };
        let tm = Gspo {
            aggregate: Aggregate::TokenMean,
            ..Gspo::default()
        };
        close(scalar(tm.loss(&b, &out).unwrap().value), 0.8);
        close(
            scalar(PpoClip::default().loss(&b, &out).unwrap().value),
            0.8,
        );
        close(scalar(Gspo::default().loss(&b, &out).unwrap().value), 0.5);
    }

    #[test]
    fn deserializes_and_validates() {
        let o: Box<dyn Objective> =
            serde_saphyr::from_str("type: gspo\neps_high: 0.001\n").unwrap();
        assert!(o.needs_old_logprobs() && !o.needs_reference());
        assert!(format!("{o:?}").contains("eps_low: 0.0003"));
        assert!(serde_saphyr::from_str::<Box<dyn Objective>>("type: gspo\neps: 0.1\n").is_err());
        let bad = Gspo {
            eps_low: 1.0,
            ..Gspo::default()
        };
        let b = batch(&MASK, &ADV, None, None, 3);
        let out = PolicyOutput {
            logprobs: t2(&LOGP, &dev()),
            entropy: None,
        };
        assert!(bad.loss(&b, &out).is_err());
    }
}
