//! `aft`: Alignment Fine-Tuning's constraint alignment loss (Wang et al. 2023, "Making
//! Large Language Models Better Reasoners with Alignment", arXiv 2309.02144;
//! `../shared/docs/methods.md` §4): likelihood on the positive chains of thought plus a
//! ranking term that puts positives' scores above negatives', with a constraint that
//! keeps the negatives' scores from being pushed down without bound.
//!
//! ```text
//! s_θ(c) = (1/|c|) Σ_t log π_θ(c_t | q, c_<t)                 length-normalised score
//! d(p, n) = s_θ(n) − s_θ(p)                                   constraint: none
//!         = sg[s_θ(n)] − s_θ(p)                               constraint: detach  (DC)
//!         = max(s_θ(n) − s_θ(p), −τ)                          constraint: boundary (BC)
//! L_A(x) = log(1 + Σ_{(p, n) ∈ pairs(x)} exp d(p, n))         per group (prompt) x
//! L      = nll_coef · NLL(positives) + align_coef · mean_x L_A(x)      (NLL: L_VFT)
//! ```
//!
//! **Rows, groups and levels.** Groups come from [`PolicyBatch::group_ids`] (the `rl`
//! stage fills them; recipes use `mini_batches: 1`, since the stage's shuffled slices
//! would split groups). A row's level is its mean advantage over its response tokens; the
//! pairs of a group are every `(p, n)` with `level(p) > level(n)`. With `advantage:
//! {type: w_reinforce, lambda: 1.0}` the levels are +1 (verifier-correct) and −1, the
//! binary form (positives × negatives); with graded advantages each level is positive
//! relative to every lower level, the ranking form [paper; the exact sum is recon].
//! `NLL(positives)` is the token mean of `−log π_θ` over the rows with `A > 0` (the
//! on-policy stand-in for the paper's VFT term, NLL on the CoT training data). A group
//! without pairs adds no `L_A`; a batch without positives adds no NLL.
//!
//! `d(p, n)` at BC: once a negative is τ below a positive, the pair's term is the
//! constant `exp(−τ)` and neither score gets gradient from it. At DC the negatives get no
//! gradient at all: only the positives are pushed up. The constraint forms are [recon]
//! (methods.md: "verify §4.3"), τ's value was not retrieved (default 1.0 [recon]).
//!
//! **DPO-style losses** (`pair_loss: dpo`): the paper argues the same missing constraint
//! hurts DPO/RRHF/PRO [paper]. With `pair_loss: dpo` the score is the implicit reward
//! `β·h(c)`, `h(c) = Σ_t (log π_θ(c_t) − log π_ref(c_t))`, and each pair is its own term,
//! `L_A = mean_pairs log(1 + exp d(p, n)) = mean_pairs −log σ(β(h(p) − h(n)))` — DPO's loss
//! on every (better, worse) pair of a group — with the same three constraints on `d`
//! (DC: `sg[β h(n)]`; BC: the reward margin capped at τ). It needs the reference
//! log-probs; `aft` does not.

use anyhow::ensure;
use burn::tensor::{Tensor, TensorData};
use foil_core::backend::B;
use foil_core::batch::{PolicyBatch, to_vec};
use foil_core::{Loss, Objective, PolicyOutput};
use serde::{Deserialize, Serialize};

use crate::aggregate::{indicator, scalar};
use crate::d2o::{groups, log_ratios, row_levels};

/// How the negatives' scores are constrained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Constraint {
    /// Unconstrained: `exp(s(n) − s(p))`.
    None,
    /// DC: `exp(sg[s(n)] − s(p))`.
    Detach,
    /// BC: `exp(max(s(n) − s(p), −τ))`.
    #[default]
    Boundary,
}

/// Which pairwise term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairLoss {
    /// AFT: `log(1 + Σ_pairs exp d)` per group on length-normalised log-likelihoods.
    #[default]
    Aft,
    /// DPO: `mean_pairs log(1 + exp d)` on the implicit rewards `β·h`.
    Dpo,
}

/// Recipe part: `objective: {type: aft, constraint: boundary, tau: 1.0}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Aft {
    /// `none`, `detach` (DC) or `boundary` (BC, default).
    pub constraint: Constraint,
    /// BC's floor on `d = s(n) − s(p)` is `−τ` (> 0).
    pub tau: f32,
    /// Weight of the NLL on positives (0 turns it off).
    pub nll_coef: f32,
    /// Weight of the alignment term.
    pub align_coef: f32,
    /// `aft` (default) or `dpo`.
    pub pair_loss: PairLoss,
    /// β of the implicit reward when `pair_loss: dpo` (> 0).
    pub beta: f32,
}

impl Default for Aft {
    fn default() -> Self {
        Self {
            constraint: Constraint::Boundary,
            tau: 1.0,
            nll_coef: 1.0,
            align_coef: 1.0,
            pair_loss: PairLoss::Aft,
            beta: 0.1,
        }
    }
}

/// A `[rows, cols]` constant on `like`'s device.
fn constant(v: Vec<f32>, rows: usize, cols: usize, like: &Tensor<B, 2>) -> Tensor<B, 2> {
    Tensor::from_data(TensorData::new(v, [rows, cols]), &like.device())
}

#[typetag::serde(name = "aft")]
impl Objective for Aft {
    fn loss(&self, batch: &PolicyBatch, out: &PolicyOutput) -> anyhow::Result<Loss> {
        ensure!(
            self.tau > 0.0 && self.tau.is_finite(),
            "aft: tau must be > 0, got {}",
            self.tau
        );
        ensure!(
            self.beta > 0.0 && self.beta.is_finite(),
            "aft: beta must be > 0, got {}",
            self.beta
        );
        let groups = groups(batch, "aft")?;
        let levels = row_levels(batch);
        let n = batch.n;
        // scores [n, 1]
        let score = match self.pair_loss {
            PairLoss::Aft => {
                let len = batch.mask.clone().sum_dim(1).clamp_min(1.0);
                (out.logprobs.clone() * batch.mask.clone()).sum_dim(1) / len
            }
            PairLoss::Dpo => log_ratios(batch, out, "aft")?.mul_scalar(self.beta),
        };
        // pairs (p, n) within each group, level(p) > level(n); a bucket per group (aft) or
        // per pair (dpo)
        let mut pairs: Vec<(usize, usize, usize)> = Vec::new(); // (p, n, bucket)
        let mut buckets = 0usize;
        for g in &groups {
            let before = pairs.len();
            for &p in g {
                for &q in g {
                    if levels[p] > levels[q] {
                        let bucket = match self.pair_loss {
                            PairLoss::Aft => buckets,
                            PairLoss::Dpo => buckets + pairs.len() - before,
                        };
                        pairs.push((p, q, bucket));
                    }
                }
            }
            if pairs.len() > before {
                buckets += match self.pair_loss {
                    PairLoss::Aft => 1,
                    PairLoss::Dpo => pairs.len() - before,
                };
            }
        }
        // NLL on positives
        let adv = batch.advantages.clone();
        let pos = indicator(adv.clone().greater_elem(0.0), &adv) * batch.mask.clone();
        let nll = (out.logprobs.clone().neg() * pos.clone()).sum() / pos.sum().clamp_min(1.0);
        let mut value = nll.clone().mul_scalar(self.nll_coef);
        let sv = to_vec(score.clone().detach());
        let np = pairs.len();
        let mut metrics = vec![("aft/nll".to_string(), scalar(nll))];
        if np > 0 {
            let mut pp = vec![0.0f32; np * n];
            let mut pn = vec![0.0f32; np * n];
            let mut gm = vec![0.0f32; buckets * np];
            for (k, &(p, q, b)) in pairs.iter().enumerate() {
                pp[k * n + p] = 1.0;
                pn[k * n + q] = 1.0;
                gm[b * np + k] = 1.0;
            }
            let pp = constant(pp, np, n, &score);
            let pn = constant(pn, np, n, &score);
            let negative_score = match self.constraint {
                Constraint::Detach => score.clone().detach(),
                _ => score.clone(),
            };
            let mut d = pn.matmul(negative_score) - pp.matmul(score.clone()); // [np, 1]
            if self.constraint == Constraint::Boundary {
                d = d.clamp_min(-self.tau);
            }
            // log(1 + Σ exp d) per bucket, shifted by m = max(0, max d) for stability
            let dv = to_vec(d.clone().detach());
            let mut shift = vec![0.0f32; buckets];
            for (k, &(_, _, b)) in pairs.iter().enumerate() {
                shift[b] = shift[b].max(dv[k]);
            }
            let pair_shift: Vec<f32> = pairs.iter().map(|&(_, _, b)| shift[b]).collect();
            let e = (d - constant(pair_shift, np, 1, &score)).exp(); // [np, 1]
            let g = constant(gm, buckets, np, &score);
            let shift_t = constant(shift.clone(), buckets, 1, &score);
            let la = (g.matmul(e) + shift_t.clone().neg().exp()).log() + shift_t; // [buckets, 1]
            let align = la.reshape([buckets]).mean();
            value = value + align.clone().mul_scalar(self.align_coef);
            let right = pairs.iter().filter(|&&(p, q, _)| sv[p] > sv[q]).count();
            let mean_of = |f: &dyn Fn(&(usize, usize, usize)) -> usize| {
                pairs.iter().map(|x| sv[f(x)]).sum::<f32>() / np as f32
            };
            metrics.push(("aft/align".into(), scalar(align)));
            metrics.push(("aft/assessment_accuracy".into(), right as f32 / np as f32));
            metrics.push(("aft/positive_score".into(), mean_of(&|x| x.0)));
            metrics.push(("aft/negative_score".into(), mean_of(&|x| x.1)));
        }
        metrics.push(("aft/pairs".into(), np as f32));
        metrics.insert(0, ("aft/loss".into(), scalar(value.clone())));
        Ok(Loss { value, metrics })
    }

    fn needs_reference(&self) -> bool {
        self.pair_loss == PairLoss::Dpo
    }
}

foil_core::register_part!(
    Objective,
    "aft",
    Aft,
    "AFT: NLL on positives + log(1 + Σ exp(s(n) − s(p))) per group, constraint none/detach/boundary, aft or dpo pairs (Wang et al. 2023)"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{batch, check_grad, close, dev, t2};

    fn out(lp: &[[f32; 2]]) -> PolicyOutput {
        PolicyOutput {
            logprobs: t2(lp, &dev()),
            entropy: None,
        }
    }

    /// The autodiff gradient alone: a stop-gradient (DC) is invisible to finite differences.
    fn autodiff(obj: &Aft, b: &PolicyBatch, lp: &[[f32; 2]]) -> Vec<f32> {
        let x = t2(lp, &dev()).require_grad();
        let loss = obj
            .loss(
                b,
                &PolicyOutput {
                    logprobs: x.clone(),
                    entropy: None,
                },
            )
            .unwrap()
            .value;
        let g = loss.backward();
        to_vec(x.grad(&g).unwrap())
    }

    fn grad(obj: &Aft, b: &PolicyBatch, lp: &[[f32; 2]]) -> Vec<f32> {
        check_grad(lp, |x| {
            obj.loss(
                b,
                &PolicyOutput {
                    logprobs: x,
                    entropy: None,
                },
            )
            .unwrap()
            .value
        })
    }

    // group 0: row 0 positive (A = +1), rows 1, 2 negative (A = −1)
    // s = [(−1 − 1)/2, −0.5 (one token), (−2 − 4)/2] = [−1.0, −0.5, −3.0]
    const MASK: [[f32; 2]; 3] = [[1., 1.], [1., 0.], [1., 1.]];
    const ADV: [[f32; 2]; 3] = [[1., 1.], [-1., 0.], [-1., -1.]];
    const LP: [[f32; 2]; 3] = [[-1.0, -1.0], [-0.5, -7.0], [-2.0, -4.0]];

    fn setup() -> PolicyBatch {
        let mut b = batch(&MASK, &ADV, None, None, 2);
        b.group_ids = vec![0, 0, 0];
        b
    }

    fn only_align(constraint: Constraint, tau: f32) -> Aft {
        Aft {
            constraint,
            tau,
            nll_coef: 0.0,
            ..Aft::default()
        }
    }

    #[test]
    fn hand_worked_alignment_term_and_nll() {
        let b = setup();
        // d(0, 1) = −0.5 − (−1) = 0.5, d(0, 2) = −3 − (−1) = −2
        // L_A = log(1 + e^{0.5} + e^{−2}) = log(1 + 1.6487213 + 0.1353353) = log(2.7840566)
        //     = 1.0239091
        // NLL(positives) = (1 + 1)/2 = 1.0 → L = 2.0239091
        let none = Aft {
            constraint: Constraint::None,
            ..Aft::default()
        };
        let l = none.loss(&b, &out(&LP)).unwrap();
        close(scalar(l.value), 2.023_909);
        let m = |k: &str| l.metrics.iter().find(|(n, _)| n == k).unwrap().1;
        close(m("aft/align"), 1.023_909_1);
        close(m("aft/nll"), 1.0);
        close(m("aft/pairs"), 2.0);
        close(m("aft/assessment_accuracy"), 0.5); // s(0) > s(2) only
        // DC has the same value
        let l = only_align(Constraint::Detach, 1.0)
            .loss(&b, &out(&LP))
            .unwrap();
        close(scalar(l.value), 1.023_909_1);
        // BC, τ = 1: d(0, 2) floored at −1: log(1 + e^{0.5} + e^{−1}) = log(3.0166007)
        //   = 1.1041306
        let l = only_align(Constraint::Boundary, 1.0)
            .loss(&b, &out(&LP))
            .unwrap();
        close(scalar(l.value), 1.104_130_6);
    }

    #[test]
    fn gradients_unconstrained_detached_and_bounded() {
        let b = setup();
        // Z = 2.7840566, w1 = e^{0.5}/Z = 0.5922011, w2 = e^{−2}/Z = 0.0486108
        // ∂L_A/∂s(1) = w1, ∂L_A/∂s(2) = w2, ∂L_A/∂s(0) = −(w1 + w2) = −0.6408119
        // ∂s/∂lp_t = 1/|c|: row 0 (two tokens) −0.3204059 each, row 1 (one token)
        // 0.5922011, row 2 0.0243054 each; masked column 0
        let g = grad(&only_align(Constraint::None, 1.0), &b, &LP);
        close(g[0], -0.320_405_9);
        close(g[1], -0.320_405_9);
        close(g[2], 0.592_201_1);
        close(g[3], 0.0);
        close(g[4], 0.024_305_4);
        close(g[5], 0.024_305_4);
        // DC: no gradient into the negatives, the positive's is unchanged
        let g = autodiff(&only_align(Constraint::Detach, 1.0), &b, &LP);
        close(g[0], -0.320_405_9);
        for gk in &g[2..6] {
            close(*gk, 0.0);
        }
        // BC, τ = 1: pair (0, 2) is past the boundary (d = −2 < −1) and gives no gradient;
        // Z = 3.0166007, w1 = 1.6487213/Z = 0.5465494
        // row 0: −w1/2 = −0.2732747 per token; row 1: +0.5465494; row 2: 0
        let g = grad(&only_align(Constraint::Boundary, 1.0), &b, &LP);
        close(g[0], -0.273_274_7);
        close(g[2], 0.546_549_4);
        close(g[4], 0.0);
        close(g[5], 0.0);
        // with the NLL: row 0 gets −1/2 more per token (mean over its 2 positive tokens)
        let g = grad(&Aft::default(), &b, &LP);
        close(g[0], -0.773_274_7);
    }

    #[test]
    fn ranking_levels_make_every_higher_level_a_positive() {
        // levels 2, 1, 0 (rows 0, 1, 2); pairs (0,1), (0,2), (1,2)
        // s = [−1.0, −0.5, −3.0]: d = 0.5, −2.0, −2.5
        // L_A = log(1 + e^{0.5} + e^{−2} + e^{−2.5}) = log(2.7840566 + 0.0820850)
        //     = log(2.8661416) = 1.0529667
        // assessment accuracy: s(0) > s(2), s(1) > s(2): 2/3
        let mut b = batch(&MASK, &[[2., 2.], [1., 0.], [0., 0.]], None, None, 2);
        b.group_ids = vec![4, 4, 4];
        let l = only_align(Constraint::None, 1.0)
            .loss(&b, &out(&LP))
            .unwrap();
        close(scalar(l.value), 1.052_966_7);
        let acc = l
            .metrics
            .iter()
            .find(|(n, _)| n == "aft/assessment_accuracy")
            .unwrap();
        close(acc.1, 2.0 / 3.0);
    }

    #[test]
    fn dpo_pairs_with_the_constraint() {
        // reference −1 everywhere: h = [0 + 0, 0.5, −1 − 3] = [0, 0.5, −4]; β = 0.5
        // rewards βh = [0, 0.25, −2]; d(0, 1) = 0.25, d(0, 2) = −2
        // none: mean(log(1 + e^{0.25}), log(1 + e^{−2})) = (0.8259394 + 0.1269280)/2 = 0.4764337
        // BC τ = 1: (0.8259394 + log(1 + e^{−1}))/2 = (0.8259394 + 0.3132617)/2 = 0.5696005
        let mut b = batch(&MASK, &ADV, None, Some(&[[-1.; 2]; 3]), 2);
        b.group_ids = vec![0, 0, 0];
        let dpo = |constraint| Aft {
            constraint,
            pair_loss: PairLoss::Dpo,
            beta: 0.5,
            nll_coef: 0.0,
            ..Aft::default()
        };
        close(
            scalar(dpo(Constraint::None).loss(&b, &out(&LP)).unwrap().value),
            0.476_433_7,
        );
        close(
            scalar(dpo(Constraint::Boundary).loss(&b, &out(&LP)).unwrap().value),
            0.569_600_5,
        );
        assert!(dpo(Constraint::None).needs_reference() && !Aft::default().needs_reference());
        // DC: ∂/∂lp of row 0 = −β·(σ(0.25) + σ(−2))/2 = −0.5·(0.5621765 + 0.1192029)/2
        //   = −0.1703449 per token; the negatives get none
        let g = autodiff(&dpo(Constraint::Detach), &b, &LP);
        close(g[0], -0.170_344_9);
        close(g[2], 0.0);
        close(g[4], 0.0);
    }

    #[test]
    fn no_pairs_leaves_the_nll_and_bad_inputs_are_errors() {
        let mut b = batch(&MASK, &[[1.; 2]; 3], None, None, 2);
        b.group_ids = vec![0, 1, 2];
        // NLL over all 5 tokens: (1 + 1 + 0.5 + 2 + 4)/5 = 1.7
        close(
            scalar(Aft::default().loss(&b, &out(&LP)).unwrap().value),
            1.7,
        );
        let e = Aft::default()
            .loss(&batch(&MASK, &ADV, None, None, 2), &out(&LP))
            .unwrap_err()
            .to_string();
        assert!(e.contains("group ids"), "{e}");
        let bad = Aft {
            tau: 0.0,
            ..Aft::default()
        };
        assert!(bad.loss(&setup(), &out(&LP)).is_err());
        let no_ref = Aft {
            pair_loss: PairLoss::Dpo,
            ..Aft::default()
        };
        let e = no_ref.loss(&setup(), &out(&LP)).unwrap_err().to_string();
        assert!(e.contains("reference"), "{e}");
    }
}
