//! `entropy_mask`: policy gradient on the high-entropy "forking" tokens only (Wang et al.
//! 2025, "Beyond the 80/20 Rule: High-Entropy Minority Tokens Drive Effective
//! Reinforcement Learning for LLM Reasoning", arXiv 2506.01939; TRL's
//! `top_entropy_quantile`).
//!
//! Over the response tokens of the (mini-)batch, with `H_t` the policy's entropy at
//! token `t` and `ρ = top_fraction`:
//!
//! ```text
//! τ    = quantile_{1−ρ}({H_t : t a response token})   (linear interpolation, torch.quantile)
//! A'_t = A_t · 1[H_t ≥ τ]
//! loss = inner(batch with A')
//! ```
//!
//! Zeroing the advantage removes a token from the policy-gradient term while it still
//! counts in the aggregation denominator — the paper's objective keeps DAPO's
//! `1/Σ_i |o_i|` normaliser with the indicator inside the sum, as TRL does. Terms of
//! `inner` that do not read the advantage (`kl`, `entropy`, `nll` in a `sum`) still see
//! every token: wrap a `sum` to mask only its policy-gradient term. Ties at `τ` are kept,
//! so slightly more than a ρ fraction may pass; ρ = 1 keeps every token. The entropy is
//! read detached: the mask carries no gradient.

use anyhow::{Context, ensure};
use burn::tensor::{Tensor, TensorData};
use foil_core::batch::{PolicyBatch, to_vec};
use foil_core::{Loss, Objective, PolicyOutput};
use serde::{Deserialize, Serialize};

/// Keeps the top-ρ entropy tokens in `inner`'s policy-gradient term.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EntropyMask {
    /// The objective whose advantages are masked.
    pub inner: Box<dyn Objective>,
    /// ρ: the fraction of response tokens (highest entropy first) that keep their advantage.
    pub top_fraction: f32,
}

impl Default for EntropyMask {
    fn default() -> Self {
        Self {
            inner: Box::new(crate::PpoClip::default()),
            top_fraction: 0.2,
        }
    }
}

/// The `q`-quantile of `values` with linear interpolation between order statistics (the
/// default of `torch.quantile` and `numpy.quantile`). `values` must not be empty.
pub fn quantile(values: &[f32], q: f64) -> f32 {
    let mut v: Vec<f64> = values.iter().map(|&x| f64::from(x)).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    (v[lo] + (pos - lo as f64) * (v[hi] - v[lo])) as f32
}

#[typetag::serde(name = "entropy_mask")]
impl Objective for EntropyMask {
    fn loss(&self, batch: &PolicyBatch, out: &PolicyOutput) -> anyhow::Result<Loss> {
        ensure!(
            self.top_fraction > 0.0 && self.top_fraction <= 1.0,
            "entropy_mask: top_fraction must be in (0, 1], got {}",
            self.top_fraction
        );
        let h = out
            .entropy
            .clone()
            .context("entropy_mask: the policy output has no per-token entropy")?;
        ensure!(
            h.dims() == batch.mask.dims(),
            "entropy_mask: entropy is {:?}, the batch mask {:?}",
            h.dims(),
            batch.mask.dims()
        );
        let hv = to_vec(h.detach());
        let mv = to_vec(batch.mask.clone());
        let response: Vec<f32> = hv
            .iter()
            .zip(&mv)
            .filter(|&(_, &m)| m > 0.0)
            .map(|(&x, _)| x)
            .collect();
        if response.is_empty() {
            return self.inner.loss(batch, out);
        }
        let tau = quantile(&response, 1.0 - f64::from(self.top_fraction));
        let keep: Vec<f32> = hv
            .iter()
            .zip(&mv)
            .map(|(&x, &m)| if m > 0.0 && x >= tau { 1.0 } else { 0.0 })
            .collect();
        let kept = keep.iter().sum::<f32>();
        let keep = Tensor::from_data(
            TensorData::new(keep, [batch.n, batch.width]),
            &batch.advantages.device(),
        );
        let mut masked = batch.clone();
        masked.advantages = batch.advantages.clone() * keep;
        let mut loss = self
            .inner
            .loss(&masked, out)
            .context("entropy_mask: inner objective")?;
        loss.metrics
            .push(("entropy_mask/threshold".to_string(), tau));
        loss.metrics.push((
            "entropy_mask/kept_frac".to_string(),
            kept / response.len() as f32,
        ));
        Ok(loss)
    }

    fn needs_reference(&self) -> bool {
        self.inner.needs_reference()
    }

    fn needs_entropy(&self) -> bool {
        true
    }

    fn needs_old_logprobs(&self) -> bool {
        self.inner.needs_old_logprobs()
    }

    fn state(&self) -> Option<serde_json::Value> {
        self.inner.state()
    }

    fn restore(&self, state: &serde_json::Value) -> anyhow::Result<()> {
        self.inner.restore(state)
    }
}

foil_core::register_part!(
    Objective,
    "entropy_mask",
    EntropyMask,
    "policy gradient only on the top-ρ highest-entropy response tokens, ρ = 0.2 (Wang et al. 2025, \"Beyond the 80/20 Rule\")"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::scalar;
    use crate::testutil::{batch, check_grad, close, dev, t2};

    // 12 columns, 10 response tokens (row 1's last two are padding):
    // entropies 0.1 … 1.0 on the response, 1.1 and 1.2 on the padding
    const H: [[f32; 6]; 2] = [
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        [0.7, 0.8, 0.9, 1.0, 1.1, 1.2],
    ];
    const MASK: [[f32; 6]; 2] = [[1., 1., 1., 1., 1., 1.], [1., 1., 1., 1., 0., 0.]];

    #[test]
    fn quantile_by_hand() {
        // sorted 0.1 … 1.0 (N = 10), q = 0.8: position 0.8·9 = 7.2 →
        // τ = v7 + 0.2·(v8 − v7) = 0.8 + 0.2·0.1 = 0.82
        let v = [1.0, 0.1, 0.9, 0.2, 0.8, 0.3, 0.7, 0.4, 0.6, 0.5];
        close(quantile(&v, 0.8), 0.82);
        close(quantile(&v, 0.0), 0.1);
        close(quantile(&v, 1.0), 1.0);
        close(quantile(&[3.0], 0.5), 3.0);
    }

    #[test]
    fn only_the_top_fifth_carries_the_policy_gradient() {
        // ρ = 0.2 → τ = 0.82 (above): tokens with H 0.9 and 1.0 keep A = 1; the padded
        // 1.1, 1.2 are not response tokens. Inner ppo_clip at ratio 1, token mean over all
        // 10 response tokens: loss = −(1 + 1)/10 = −0.2; ∂/∂logp = −1/10 on the two kept.
        let b = batch(&MASK, &[[1.0; 6]; 2], Some(&[[-1.0; 6]; 2]), None, 6);
        let d = dev();
        let p = EntropyMask::default();
        let f = |x| {
            p.loss(
                &b,
                &PolicyOutput {
                    logprobs: x,
                    entropy: Some(t2(&H, &d)),
                },
            )
            .unwrap()
            .value
        };
        close(scalar(f(t2(&[[-1.0; 6]; 2], &d))), -0.2);
        let g = check_grad(&[[-1.0; 6]; 2], f);
        let mut want = [0.0; 12];
        want[8] = -0.1;
        want[9] = -0.1;
        for (a, w) in g.iter().zip(want) {
            close(*a, w);
        }
        let l = p
            .loss(
                &b,
                &PolicyOutput {
                    logprobs: t2(&[[-1.0; 6]; 2], &d),
                    entropy: Some(t2(&H, &d)),
                },
            )
            .unwrap();
        let get = |n: &str| l.metrics.iter().find(|(k, _)| k == n).unwrap().1;
        close(get("entropy_mask/threshold"), 0.82);
        close(get("entropy_mask/kept_frac"), 0.2);
    }

    #[test]
    fn other_terms_of_a_sum_see_every_token() {
        // inner = ppo_clip + kl (k1, coef 1): the PG part is −0.2 as above; the KL part is
        // token mean of logp − ref = (−1 − (−1.5)) = 0.5 on all 10 tokens → 0.5.
        // loss = −0.2 + 0.5 = 0.3. With ρ = 1 every token keeps A: −10/10 + 0.5 = −0.5.
        let b = batch(&MASK, &[[1.0; 6]; 2], None, Some(&[[-1.5; 6]; 2]), 6);
        let out = PolicyOutput {
            logprobs: t2(&[[-1.0; 6]; 2], &dev()),
            entropy: Some(t2(&H, &dev())),
        };
        let mut p: EntropyMask = serde_saphyr::from_str(
            "inner:\n  type: sum\n  terms:\n    - {type: ppo_clip}\n    - {type: kl, coef: 1.0, estimator: k1}\n",
        )
        .unwrap();
        assert!(p.needs_entropy() && p.needs_reference() && p.needs_old_logprobs());
        close(scalar(p.loss(&b, &out).unwrap().value), 0.3);
        p.top_fraction = 1.0;
        close(scalar(p.loss(&b, &out).unwrap().value), -0.5);
    }

    #[test]
    fn errors_and_registration() {
        let b = batch(&MASK, &[[1.0; 6]; 2], None, None, 6);
        let no_entropy = PolicyOutput {
            logprobs: t2(&[[-1.0; 6]; 2], &dev()),
            entropy: None,
        };
        assert!(EntropyMask::default().loss(&b, &no_entropy).is_err());
        let zero = EntropyMask {
            top_fraction: 0.0,
            ..EntropyMask::default()
        };
        let out = PolicyOutput {
            logprobs: t2(&[[-1.0; 6]; 2], &dev()),
            entropy: Some(t2(&H, &dev())),
        };
        assert!(zero.loss(&b, &out).is_err());
        let o: Box<dyn Objective> =
            serde_saphyr::from_str("type: entropy_mask\ntop_fraction: 0.5\ninner: {type: gspo}\n")
                .unwrap();
        assert!(o.needs_entropy() && o.needs_old_logprobs() && !o.needs_reference());
        assert!(
            serde_saphyr::from_str::<Box<dyn Objective>>("type: entropy_mask\nrho: 0.2\n").is_err()
        );
    }
}
