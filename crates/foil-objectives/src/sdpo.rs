//! `sdpo`: score-aware DPO of UV-CoT (Zhao et al. 2025, "Unsupervised Visual Chain-of-Thought
//! Reasoning via Preference Optimization", arXiv 2504.18397, `methods.md` §14), text tasks
//! only: the evaluator's scores `s_w`, `s_l` of the two responses shift the DPO margin.
//!
//! ```text
//! h(y)   = Σ_t m_t · (log π_θ(y_t | x, y_<t) − log π_ref(y_t | x, y_<t))     sequence sums
//! g(s)   = γ · s                                                           (monotone, linear)
//! z      = β · (h(y_w) − h(y_l)) − (g(s_w) − g(s_l))
//! L      = dpo_weight · mean_pairs[ −log σ(z) ] − sft_weight · mean_pairs[ Σ_t m_t log π_θ(y_w,t) ]
//! ```
//!
//! With `γ = 0` and `sft_weight = 0` this is exactly `dpo` (sigmoid, no label smoothing).
//! A larger score gap demands a larger log-ratio gap before the loss saturates, so pairs the
//! evaluator separates clearly are pushed apart harder.
//!
//! **Batch convention.** As `dpo`: row `2k` = chosen `y_w`, row `2k + 1` = rejected `y_l`;
//! reference log-probs required. **Scores** come in the batch's advantages: each row's
//! score is the mean of its advantages over its masked tokens (the `preference` stage fills
//! every token of a pair row with that response's verifier reward). When `γ ≠ 0` and every
//! row's score is exactly 0 the loss is an error: that batch carried no scores (e.g. JSONL
//! pairs, or a stage that does not fill advantages), and sDPO would silently be DPO.
//!
//! Provenance: the sDPO formula with a monotone `g` is [secondary] (the paper derives `g`
//! from a Gumbel model; its exact form is not recoverable, so `g(s) = γ·s` is [recon], with
//! `γ = 1` = "margin = score gap" of methods.md's text analogue). The released code
//! (`LLaVA15DPOTrainer.compute_loss`) trains plain DPO plus SFT on the chosen response,
//! `L = 0.1 · mean L_DPO − 0.9 · mean log π_θ(y_w|x)` with summed token log-probs and
//! β = 0.1 [code]: set `gamma: 0, dpo_weight: 0.1, sft_weight: 0.9` for that combination.

use anyhow::ensure;
use burn::tensor::activation::log_sigmoid;
use foil_core::batch::{PolicyBatch, to_vec};
use foil_core::{Loss, Objective, PolicyOutput};
use serde::{Deserialize, Serialize};

use crate::aggregate::scalar;
use crate::d2o::row_levels;
use crate::dpo::pair_log_ratios;

/// Recipe part: `objective: {type: sdpo, beta: 0.1, gamma: 1.0}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sdpo {
    /// Inverse temperature of the implicit reward `β·h(y)` (> 0).
    pub beta: f32,
    /// Slope of the score map `g(s) = γ·s` (≥ 0; 0 = plain DPO margin).
    pub gamma: f32,
    /// Weight of the (score-aware) DPO term (≥ 0).
    pub dpo_weight: f32,
    /// Weight of the SFT term `−log π_θ(y_w|x)` (summed over tokens, ≥ 0).
    pub sft_weight: f32,
}

impl Default for Sdpo {
    fn default() -> Self {
        Self {
            beta: 0.1,
            gamma: 1.0,
            dpo_weight: 1.0,
            sft_weight: 0.0,
        }
    }
}

#[typetag::serde(name = "sdpo")]
impl Objective for Sdpo {
    fn loss(&self, batch: &PolicyBatch, out: &PolicyOutput) -> anyhow::Result<Loss> {
        ensure!(
            self.beta > 0.0 && self.beta.is_finite(),
            "sdpo: beta must be > 0, got {}",
            self.beta
        );
        for (name, v) in [
            ("gamma", self.gamma),
            ("dpo_weight", self.dpo_weight),
            ("sft_weight", self.sft_weight),
        ] {
            ensure!(
                v >= 0.0 && v.is_finite(),
                "sdpo: {name} must be ≥ 0 and finite, got {v}"
            );
        }
        let (chosen, rejected, pairs) = pair_log_ratios(batch, out, "sdpo")?;

        // each row's score: mean advantage over its masked tokens
        let scores = row_levels(batch);
        ensure!(
            scores.iter().all(|s| s.is_finite()),
            "sdpo: a row's score (its advantage) is not finite"
        );
        ensure!(
            self.gamma == 0.0 || scores.iter().any(|&s| s != 0.0),
            "sdpo: gamma = {} but every row's score is 0 — the batch carries no evaluator \
             scores (use the `preference` stage with a verifier-judged mode, not JSONL pairs, \
             or set gamma: 0)",
            self.gamma
        );
        let gaps: Vec<f32> = (0..pairs)
            .map(|k| scores[2 * k] - scores[2 * k + 1])
            .collect();
        let device = out.logprobs.device();
        let offset = burn::tensor::Tensor::<foil_core::backend::B, 1>::from_data(
            burn::tensor::TensorData::new(
                gaps.iter().map(|g| self.gamma * g).collect::<Vec<f32>>(),
                [pairs],
            ),
            &device,
        );

        let z = (chosen.clone() - rejected.clone())
            .reshape([pairs])
            .mul_scalar(self.beta)
            - offset;
        let dpo_term = log_sigmoid(z.clone()).neg().mean();
        let mut value = dpo_term.clone().mul_scalar(self.dpo_weight);
        let mut metrics = Vec::new();
        if self.sft_weight > 0.0 {
            // −mean_pairs Σ_t m_t log π_θ(y_w,t): rows 2k of [pairs, 2]
            let lp = (out.logprobs.clone() * batch.mask.clone())
                .sum_dim(1)
                .reshape([pairs, 2])
                .slice([0..pairs, 0..1])
                .reshape([pairs]);
            let sft = lp.mean().neg();
            metrics.push(("sdpo/sft".to_string(), scalar(sft.clone())));
            value = value + sft.mul_scalar(self.sft_weight);
        }
        let zs = to_vec(z.detach());
        let accuracy = zs.iter().filter(|&&v| v > 0.0).count() as f32 / pairs as f32;
        let mean = |t: burn::tensor::Tensor<foil_core::backend::B, 2>| {
            scalar(t.reshape([pairs]).mean().mul_scalar(self.beta))
        };
        metrics.extend([
            ("sdpo/loss".to_string(), scalar(value.clone())),
            ("sdpo/dpo".to_string(), scalar(dpo_term)),
            (
                "sdpo/margin".to_string(),
                zs.iter().sum::<f32>() / pairs as f32,
            ),
            (
                "sdpo/score_gap".to_string(),
                gaps.iter().sum::<f32>() / pairs as f32,
            ),
            ("sdpo/accuracy".to_string(), accuracy),
            ("sdpo/chosen_reward".to_string(), mean(chosen)),
            ("sdpo/rejected_reward".to_string(), mean(rejected)),
            ("sdpo/pairs".to_string(), pairs as f32),
        ]);
        Ok(Loss { value, metrics })
    }

    fn needs_reference(&self) -> bool {
        true
    }
}

foil_core::register_part!(
    Objective,
    "sdpo",
    Sdpo,
    "UV-CoT score-aware DPO on row pairs 2k, 2k+1: −log σ(β·Δh − γ·Δs) + optional SFT on chosen; scores from the advantages (Zhao et al. 2025)"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Dpo;
    use crate::testutil::{batch, check_grad, close, dev, t2};

    fn out(lp: &[[f32; 3]]) -> PolicyOutput {
        PolicyOutput {
            logprobs: t2(lp, &dev()),
            entropy: None,
        }
    }

    // the dpo test's pair: chosen row 0 (3 tokens), rejected row 1 (2 tokens)
    const MASK: [[f32; 3]; 2] = [[1., 1., 1.], [1., 1., 0.]];
    const REF: [[f32; 3]; 2] = [[-1.0, -1.0, -1.0], [-0.5, -0.5, -0.5]];
    const LP: [[f32; 3]; 2] = [[-0.5, -1.0, -0.5], [-1.0, -1.5, -7.0]];
    // scores s_w = 1.0 (every token), s_l = 0.5 (the masked token's 9 is ignored)
    const ADV: [[f32; 3]; 2] = [[1.0, 1.0, 1.0], [0.5, 0.5, 9.0]];

    fn metric(l: &Loss, k: &str) -> f32 {
        l.metrics.iter().find(|(n, _)| n == k).unwrap().1
    }

    #[test]
    fn hand_worked_score_margin() {
        let b = batch(&MASK, &ADV, None, Some(&REF), 3);
        // h_w = 1.0, h_l = −1.5 (as in dpo.rs); β Δh = 0.5 · 2.5 = 1.25
        // γ = 1.5: g(s_w) − g(s_l) = 1.5 · (1.0 − 0.5) = 0.75
        // z = 1.25 − 0.75 = 0.5; L = log(1 + e^{−0.5}) = log(1.6065307) = 0.4740770
        let s = Sdpo {
            beta: 0.5,
            gamma: 1.5,
            ..Sdpo::default()
        };
        let l = s.loss(&b, &out(&LP)).unwrap();
        close(scalar(l.value.clone()), 0.474_077);
        close(metric(&l, "sdpo/margin"), 0.5);
        close(metric(&l, "sdpo/score_gap"), 0.5);
        close(metric(&l, "sdpo/accuracy"), 1.0);
        // the score margin makes the pair's loss larger than DPO's 0.2519291
        assert!(scalar(l.value) > 0.26);
    }

    #[test]
    fn gamma_zero_equals_dpo() {
        // the scores are ignored when γ = 0: the loss and its gradient are dpo's
        let b = batch(&MASK, &ADV, None, Some(&REF), 3);
        let s = Sdpo {
            beta: 0.5,
            gamma: 0.0,
            ..Sdpo::default()
        };
        let d = Dpo {
            beta: 0.5,
            ..Dpo::default()
        };
        let ls = scalar(s.loss(&b, &out(&LP)).unwrap().value);
        let ld = scalar(d.loss(&b, &out(&LP)).unwrap().value);
        close(ls, ld);
        close(ls, 0.251_929_1);
        let grad = |o: &dyn Objective| {
            check_grad(&LP, |x| {
                o.loss(
                    &b,
                    &PolicyOutput {
                        logprobs: x,
                        entropy: None,
                    },
                )
                .unwrap()
                .value
            })
        };
        for (a, c) in grad(&s).iter().zip(grad(&d)) {
            close(*a, c);
        }
    }

    #[test]
    fn gradient_sign_and_size() {
        let b = batch(&MASK, &ADV, None, Some(&REF), 3);
        let s = Sdpo {
            beta: 0.5,
            gamma: 1.5,
            ..Sdpo::default()
        };
        let g = check_grad(&LP, |x| {
            s.loss(
                &b,
                &PolicyOutput {
                    logprobs: x,
                    entropy: None,
                },
            )
            .unwrap()
            .value
        });
        // ∂L/∂log π(y_w,t) = −β σ(−z) = −0.5 · σ(−0.5) = −0.5 · 0.3775407 = −0.1887703
        // (larger in size than dpo's −0.1113500: the score gap pushes harder);
        // rejected tokens +0.1887703, the masked column 0
        for gk in &g[..3] {
            close(*gk, -0.188_770_3);
        }
        close(g[3], 0.188_770_3);
        close(g[4], 0.188_770_3);
        close(g[5], 0.0);
    }

    #[test]
    fn released_code_combination_with_sft() {
        let b = batch(&MASK, &ADV, None, Some(&REF), 3);
        // γ = 0, 0.1 · DPO + 0.9 · SFT, β = 0.5:
        // DPO = 0.2519291; Σ log π(y_w) = −0.5 − 1.0 − 0.5 = −2.0 → SFT = 2.0
        // L = 0.1 · 0.2519291 + 0.9 · 2.0 = 0.0251929 + 1.8 = 1.8251929
        let s = Sdpo {
            beta: 0.5,
            gamma: 0.0,
            dpo_weight: 0.1,
            sft_weight: 0.9,
        };
        let l = s.loss(&b, &out(&LP)).unwrap();
        close(scalar(l.value.clone()), 1.825_192_9);
        close(metric(&l, "sdpo/sft"), 2.0);
        let g = check_grad(&LP, |x| {
            s.loss(
                &b,
                &PolicyOutput {
                    logprobs: x,
                    entropy: None,
                },
            )
            .unwrap()
            .value
        });
        // chosen: 0.1 · (−0.1113500) − 0.9 = −0.9111350; rejected: 0.1 · 0.1113500 = 0.0111350
        close(g[0], -0.911_135);
        close(g[3], 0.011_135);
        close(g[5], 0.0);
    }

    #[test]
    fn two_pairs_and_errors() {
        // pair 0 as above (γ = 1, β = 0.5: z = 1.25 − 0.5 = 0.75, L = log(1 + e^{−0.75})
        //   = log(1.4723666) = 0.3868710);
        // pair 1 equal to the reference with scores 0.25 vs 0: z = −0.25,
        //   L = log(1 + e^{0.25}) = log(2.2840254) = 0.8259394; mean = 0.6064052
        let mask = [[1., 1., 1.], [1., 1., 0.], [1., 0., 0.], [1., 0., 0.]];
        let reference = [REF[0], REF[1], [-2.0, 0., 0.], [-3.0, 0., 0.]];
        let lp = [LP[0], LP[1], [-2.0, 0., 0.], [-3.0, 0., 0.]];
        let adv = [ADV[0], ADV[1], [0.25, 0., 0.], [0., 0., 0.]];
        let b = batch(&mask, &adv, None, Some(&reference), 3);
        let s = Sdpo {
            beta: 0.5,
            ..Sdpo::default()
        };
        let l = s.loss(&b, &out(&lp)).unwrap();
        close(scalar(l.value.clone()), 0.606_405_2);
        close(metric(&l, "sdpo/accuracy"), 0.5);

        // no scores with γ ≠ 0 is an error, not silent DPO
        let zero = batch(&MASK, &[[0.; 3]; 2], None, Some(&REF), 3);
        let e = s.loss(&zero, &out(&LP)).unwrap_err().to_string();
        assert!(e.contains("no evaluator scores"), "{e}");
        let odd = batch(&mask[..3], &adv[..3], None, Some(&reference[..3]), 3);
        assert!(s.loss(&odd, &out(&lp[..3])).is_err());
        let no_ref = batch(&MASK, &ADV, None, None, 3);
        let e = s.loss(&no_ref, &out(&LP)).unwrap_err().to_string();
        assert!(e.contains("reference"), "{e}");
        let bad = Sdpo {
            gamma: -1.0,
            ..Sdpo::default()
        };
        assert!(bad.loss(&b, &out(&lp)).is_err());
    }
}
