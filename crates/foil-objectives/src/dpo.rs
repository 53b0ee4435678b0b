//! `dpo`: Direct Preference Optimization (Rafailov et al. 2023, arXiv 2305.18290) on
//! chosen/rejected pairs, as used by the per-step DPO of Setlur et al. 2024 (arXiv
//! 2406.14532, `methods.md` §1) with `π_ref = π_sft`.
//!
//! ```text
//! h(y)   = Σ_t m_t · (log π_θ(y_t | x, y_<t) − log π_ref(y_t | x, y_<t))     sequence sums
//! z      = β · (h(y⁺) − h(y⁻))
//! sigmoid: L = mean_pairs[ −(1 − ε) · log σ(z) − ε · log σ(−z) ]     ε = label_smoothing
//! ipo:     L = mean_pairs[ (h(y⁺) − h(y⁻) − 1/(2β))² ]               (Azar et al. 2023, arXiv 2310.12036)
//! ```
//!
//! **Batch convention.** Rows come in pairs: row `2k` is the chosen response `y⁺` and row
//! `2k + 1` the rejected `y⁻` of pair `k` (their prompts may differ in length; each row's
//! mask covers its response only). An odd number of rows is an error, as is a batch
//! without reference log-probs. The batch's advantages are ignored.
//!
//! Provenance: the sigmoid loss is the DPO paper's [paper]; the conservative label
//! smoothing (cDPO, Mitchell 2023) and the IPO square loss are the usual variants as
//! implemented in TRL [secondary]; Setlur et al. use plain DPO (`ε = 0`) with `β` not found
//! in their text (methods.md suggests `β ∈ {0.05, 0.1}` [recon]).

use anyhow::ensure;
use burn::tensor::Tensor;
use burn::tensor::activation::log_sigmoid;
use foil_core::backend::B;
use foil_core::batch::{PolicyBatch, to_vec};
use foil_core::{Loss, Objective, PolicyOutput};
use serde::{Deserialize, Serialize};

use crate::aggregate::scalar;
use crate::d2o::log_ratios;

/// Which preference loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DpoLoss {
    /// `−log σ(β·Δh)` (with optional label smoothing).
    #[default]
    Sigmoid,
    /// `(Δh − 1/(2β))²`.
    Ipo,
}

/// Recipe part: `objective: {type: dpo, beta: 0.1}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dpo {
    /// Inverse temperature of the implicit reward `β·h(y)` (> 0).
    pub beta: f32,
    /// Probability ε that a pair's label is flipped (conservative DPO), in `[0, 0.5)`.
    pub label_smoothing: f32,
    /// `sigmoid` (DPO) or `ipo`.
    pub loss: DpoLoss,
    /// Weight of the term.
    pub coef: f32,
}

impl Default for Dpo {
    fn default() -> Self {
        Self {
            beta: 0.1,
            label_smoothing: 0.0,
            loss: DpoLoss::Sigmoid,
            coef: 1.0,
        }
    }
}

/// `h(y⁺)` and `h(y⁻)` (`[pairs, 1]` each) of a batch of (chosen, rejected) rows `2k,
/// 2k + 1`, and the number of pairs; an odd or empty batch, or one without reference
/// log-probs, is an error naming `who`.
pub(crate) fn pair_log_ratios(
    batch: &PolicyBatch,
    out: &PolicyOutput,
    who: &str,
) -> anyhow::Result<(Tensor<B, 2>, Tensor<B, 2>, usize)> {
    let n = batch.n;
    ensure!(
        n > 0 && n.is_multiple_of(2),
        "{who}: the batch must hold (chosen, rejected) pairs as rows 2k, 2k+1, but it has \
         {n} rows"
    );
    let pairs = n / 2;
    // h per row, [n, 1] → [pairs, 2]: column 0 chosen, column 1 rejected
    let h = log_ratios(batch, out, who)?.reshape([pairs, 2]);
    Ok((
        h.clone().slice([0..pairs, 0..1]),
        h.slice([0..pairs, 1..2]),
        pairs,
    ))
}

#[typetag::serde(name = "dpo")]
impl Objective for Dpo {
    fn loss(&self, batch: &PolicyBatch, out: &PolicyOutput) -> anyhow::Result<Loss> {
        ensure!(
            self.beta > 0.0 && self.beta.is_finite(),
            "dpo: beta must be > 0, got {}",
            self.beta
        );
        ensure!(
            (0.0..0.5).contains(&self.label_smoothing),
            "dpo: label_smoothing must be in [0, 0.5), got {}",
            self.label_smoothing
        );
        let (chosen, rejected, pairs) = pair_log_ratios(batch, out, "dpo")?;
        let delta = (chosen.clone() - rejected.clone()).reshape([pairs]); // h⁺ − h⁻
        let z = delta.clone().mul_scalar(self.beta);
        let per_pair = match self.loss {
            DpoLoss::Sigmoid => {
                let eps = self.label_smoothing;
                let pos = log_sigmoid(z.clone()).mul_scalar(-(1.0 - eps));
                if eps > 0.0 {
                    pos - log_sigmoid(z.clone().neg()).mul_scalar(eps)
                } else {
                    pos
                }
            }
            DpoLoss::Ipo => delta
                .clone()
                .sub_scalar(1.0 / (2.0 * self.beta))
                .powf_scalar(2.0),
        };
        let value = per_pair.mean().mul_scalar(self.coef);
        let zs = to_vec(z.detach());
        let accuracy = zs.iter().filter(|&&v| v > 0.0).count() as f32 / pairs as f32;
        let mean = |t: Tensor<B, 2>| scalar(t.reshape([pairs]).mean().mul_scalar(self.beta));
        let metrics = vec![
            ("dpo/loss".to_string(), scalar(value.clone())),
            (
                "dpo/margin".to_string(),
                zs.iter().sum::<f32>() / pairs as f32,
            ),
            ("dpo/accuracy".to_string(), accuracy),
            ("dpo/chosen_reward".to_string(), mean(chosen)),
            ("dpo/rejected_reward".to_string(), mean(rejected)),
            ("dpo/pairs".to_string(), pairs as f32),
        ];
        Ok(Loss { value, metrics })
    }

    fn needs_reference(&self) -> bool {
        true
    }
}

foil_core::register_part!(
    Objective,
    "dpo",
    Dpo,
    "DPO on (chosen, rejected) row pairs 2k, 2k+1: −log σ(β·Δh), label smoothing, IPO (Rafailov et al. 2023)"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{batch, check_grad, close, dev, t2};

    fn out(lp: &[[f32; 3]]) -> PolicyOutput {
        PolicyOutput {
            logprobs: t2(lp, &dev()),
            entropy: None,
        }
    }

    // one pair: chosen row 0 (3 tokens), rejected row 1 (2 tokens; column 2 masked)
    const MASK: [[f32; 3]; 2] = [[1., 1., 1.], [1., 1., 0.]];
    const REF: [[f32; 3]; 2] = [[-1.0, -1.0, -1.0], [-0.5, -0.5, -0.5]];
    const LP: [[f32; 3]; 2] = [[-0.5, -1.0, -0.5], [-1.0, -1.5, -7.0]];

    #[test]
    fn hand_worked_sigmoid_loss_and_metrics() {
        let b = batch(&MASK, &[[0.; 3]; 2], None, Some(&REF), 3);
        // h⁺ = (−0.5+1) + (−1+1) + (−0.5+1) = 1.0
        // h⁻ = (−1+0.5) + (−1.5+0.5) = −1.5   (the −7 is masked)
        // z = β (h⁺ − h⁻) = 0.5 · 2.5 = 1.25
        // L = −log σ(1.25) = log(1 + e^{−1.25}) = log(1.2865048) = 0.2519291
        let d = Dpo {
            beta: 0.5,
            ..Dpo::default()
        };
        let l = d.loss(&b, &out(&LP)).unwrap();
        close(scalar(l.value), 0.251_929_1);
        let m = |k: &str| l.metrics.iter().find(|(n, _)| n == k).unwrap().1;
        close(m("dpo/margin"), 1.25);
        close(m("dpo/accuracy"), 1.0);
        close(m("dpo/chosen_reward"), 0.5); // β h⁺
        close(m("dpo/rejected_reward"), -0.75); // β h⁻
    }

    #[test]
    fn label_smoothing_and_ipo() {
        let b = batch(&MASK, &[[0.; 3]; 2], None, Some(&REF), 3);
        // ε = 0.25: 0.75 · log(1 + e^{−1.25}) + 0.25 · log(1 + e^{1.25})
        //         = 0.75 · 0.2519291 + 0.25 · 1.5019291 = 0.1889468 + 0.3754823 = 0.5644291
        let d = Dpo {
            beta: 0.5,
            label_smoothing: 0.25,
            ..Dpo::default()
        };
        close(scalar(d.loss(&b, &out(&LP)).unwrap().value), 0.564_429_1);
        // IPO: (Δh − 1/(2β))² = (2.5 − 1)² = 2.25
        let d = Dpo {
            beta: 0.5,
            loss: DpoLoss::Ipo,
            ..Dpo::default()
        };
        close(scalar(d.loss(&b, &out(&LP)).unwrap().value), 2.25);
    }

    #[test]
    fn gradient_raises_chosen_and_lowers_rejected() {
        let b = batch(&MASK, &[[0.; 3]; 2], None, Some(&REF), 3);
        let d = Dpo {
            beta: 0.5,
            ..Dpo::default()
        };
        let g = check_grad(&LP, |x| {
            d.loss(
                &b,
                &PolicyOutput {
                    logprobs: x,
                    entropy: None,
                },
            )
            .unwrap()
            .value
        });
        // ∂L/∂log π(y⁺_t) = −β σ(−z) = −0.5 · σ(−1.25) = −0.5 · 0.2227001 = −0.1113500
        // ∂L/∂log π(y⁻_t) = +0.1113500, 0 on the masked column
        // gradient descent therefore raises log π(y⁺) and lowers log π(y⁻)
        for gk in &g[..3] {
            close(*gk, -0.111_350_07);
        }
        close(g[3], 0.111_350_07);
        close(g[4], 0.111_350_07);
        close(g[5], 0.0);
    }

    #[test]
    fn two_pairs_average_and_bad_batches_are_errors() {
        // pair 0 as above (loss 0.2519291); pair 1 identical to the reference (z = 0,
        // loss log 2 = 0.6931472); mean = 0.4725381
        let mask = [[1., 1., 1.], [1., 1., 0.], [1., 0., 0.], [1., 0., 0.]];
        let reference = [REF[0], REF[1], [-2.0, 0., 0.], [-3.0, 0., 0.]];
        let lp = [LP[0], LP[1], [-2.0, 0., 0.], [-3.0, 0., 0.]];
        let b = batch(&mask, &[[0.; 3]; 4], None, Some(&reference), 3);
        let d = Dpo {
            beta: 0.5,
            ..Dpo::default()
        };
        let l = d.loss(&b, &out(&lp)).unwrap();
        close(scalar(l.value), 0.472_538_1);
        let acc = l.metrics.iter().find(|(n, _)| n == "dpo/accuracy").unwrap();
        close(acc.1, 0.5);

        let odd = batch(&mask[..3], &[[0.; 3]; 3], None, Some(&reference[..3]), 3);
        let e = d.loss(&odd, &out(&lp[..3])).unwrap_err().to_string();
        assert!(e.contains("pairs") && e.contains("3 rows"), "{e}");
        let no_ref = batch(&MASK, &[[0.; 3]; 2], None, None, 3);
        let e = d.loss(&no_ref, &out(&LP)).unwrap_err().to_string();
        assert!(e.contains("reference"), "{e}");
        let bad = Dpo {
            beta: 0.0,
            ..Dpo::default()
        };
        assert!(bad.loss(&b, &out(&lp)).is_err());
    }
}
