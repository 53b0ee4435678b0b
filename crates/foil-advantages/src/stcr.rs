//! `stcr`: Suboptimal Trajectory Complexity Regularization, the negative-side half of APO
//! (Asymmetric Policy Optimization, the View-R1 paper, arXiv 2506.21655;
//! `../shared/docs/methods.md` §10, formulas [code] from View-R1's
//! `openrlhf/trainer/ppo_utils/experience_maker.py`, group_norm branch).
//!
//! An incorrect response that is longer than the group's correct ones has its (negative)
//! advantage amplified, so over-long wrong reasoning is pushed down harder:
//!
//! ```text
//! A_i    = inner(groups)                      (APO: group_norm, (r − mean) / (std + 1e-9))
//! L̄⁺     = mean length (tokens) of the group's correct responses
//! d_i    = len_i − L̄⁺                         for an incorrect response i
//! w_i    = 1 + (1 − base^(−d_i))  = 2 − base^(−d_i)   if d_i > 0
//!        = 1                                           if d_i ≤ 0, if i is correct,
//!                                                      or if the group has no correct one
//! A_i   ← w_i · A_i
//! ```
//!
//! `base = 1.00001` in the released code, which bounds the weight at ≈ 1.04 for d ≤ 4096
//! tokens; on short responses use a larger base (methods.md suggests 1.001 or more) so the
//! effect is visible. `w ∈ [1, 2)`. Per-token and excluded credit are scaled (or kept)
//! the same way.

use foil_core::anyhow::{Result, ensure};
use foil_core::{AdvantageEstimator, Credit, ScoredGroup, register_part};
use serde::{Deserialize, Serialize};

/// Recipe part: `advantage: {type: stcr, base: 1.00001, inner: {type: grpo, eps: 1.0e-9}}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Stcr {
    /// The base of the length weight `2 − base^(−d)` (> 1).
    pub base: f64,
    /// The estimator whose advantages are reweighted.
    pub inner: Box<dyn AdvantageEstimator>,
}

impl Default for Stcr {
    fn default() -> Self {
        Self {
            base: 1.00001,
            inner: Box::new(crate::Grpo {
                eps: 1e-9,
                ..crate::Grpo::default()
            }),
        }
    }
}

register_part!(
    AdvantageEstimator,
    "stcr",
    Stcr,
    "APO's STCR: incorrect responses longer than the group's correct ones get their advantage × (2 − base^−Δlen) (View-R1, 2025)"
);

/// The STCR weights of one group: `2 − base^(−(len_i − L̄⁺))` for incorrect responses
/// longer than the mean correct length, else 1.
pub fn stcr_weights(group: &ScoredGroup, base: f64) -> Vec<f64> {
    let lens: Vec<f64> = group
        .group
        .completions
        .iter()
        .map(|c| c.tokens.len() as f64)
        .collect();
    let correct: Vec<f64> = lens
        .iter()
        .zip(&group.verdicts)
        .filter(|(_, v)| v.correct)
        .map(|(l, _)| *l)
        .collect();
    if correct.is_empty() {
        return vec![1.0; lens.len()];
    }
    let mean_correct = correct.iter().sum::<f64>() / correct.len() as f64;
    lens.iter()
        .zip(&group.verdicts)
        .map(|(&len, v)| {
            let d = len - mean_correct;
            if v.correct || d <= 0.0 {
                1.0
            } else {
                2.0 - base.powf(-d)
            }
        })
        .collect()
}

#[typetag::serde(name = "stcr")]
impl AdvantageEstimator for Stcr {
    fn estimate(&self, groups: &[ScoredGroup]) -> Result<Vec<Vec<Credit>>> {
        ensure!(
            self.base.is_finite() && self.base > 1.0,
            "stcr: base must be a finite number > 1, got {}",
            self.base
        );
        let credits = self.inner.estimate(groups)?;
        Ok(groups
            .iter()
            .zip(credits)
            .map(|(g, cs)| {
                let w = stcr_weights(g, self.base);
                cs.into_iter()
                    .zip(w)
                    .map(|(credit, w)| match credit {
                        Credit::Sequence(a) => Credit::Sequence((a as f64 * w) as f32),
                        Credit::Token(v) => {
                            Credit::Token(v.into_iter().map(|a| (a as f64 * w) as f32).collect())
                        }
                        Credit::Excluded => Credit::Excluded,
                    })
                    .collect()
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::testing::{scored_lens, seq};
    use crate::{Grpo, Scale};

    #[test]
    fn longer_wrong_answers_are_pushed_down_harder() {
        // r = [1, 1, 0, 0], lengths [10, 20, 25, 12]; L̄⁺ = (10 + 20)/2 = 15
        // inner Dr.GRPO: mean 0.5 → A = [0.5, 0.5, −0.5, −0.5]
        // i = 2: d = 10 → w = 2 − 1.1^−10 = 2 − 0.385543 = 1.614457 → A = −0.807228
        // i = 3: d = −3 → w = 1 → A = −0.5; correct ones untouched
        let s = Stcr {
            base: 1.1,
            inner: Box::new(Grpo {
                scale: Scale::None,
                eps: 0.0,
            }),
        };
        let g = scored_lens(&[1.0, 1.0, 0.0, 0.0], &[10, 20, 25, 12], &[]);
        let a = seq(&s.estimate(&[g]).unwrap()[0]);
        let want = [0.5, 0.5, -0.807228, -0.5];
        for (x, y) in a.iter().zip(want) {
            assert!((x - y).abs() < 1e-5, "{a:?}");
        }
    }

    #[test]
    fn the_released_base_barely_moves_short_responses() {
        // base 1.00001, d = 100: w = 2 − 1.00001^−100 = 2 − e^(−100·ln 1.00001)
        //   = 2 − e^(−0.00099999) = 2 − 0.9990005 = 1.0009995
        let g = scored_lens(&[1.0, 0.0], &[10, 110], &[]);
        let w = stcr_weights(&g, 1.00001);
        assert_eq!(w[0], 1.0);
        assert!((w[1] - 1.0009995).abs() < 1e-7, "{w:?}");
    }

    #[test]
    fn groups_without_a_correct_answer_are_unchanged() {
        let g = scored_lens(&[0.0, 0.0, 0.0], &[5, 50, 500], &[]);
        assert_eq!(stcr_weights(&g, 2.0), vec![1.0; 3]);
        // and with the default inner GRPO all-equal rewards give A = 0
        let a = seq(&Stcr::default().estimate(&[g]).unwrap()[0]);
        assert_eq!(a, vec![0.0; 3]);
    }

    #[test]
    fn weights_stay_below_two_and_bad_bases_are_errors() {
        let g = scored_lens(&[1.0, 0.0], &[1, 100_000], &[]);
        let w = stcr_weights(&g, 2.0);
        assert!(w[1] < 2.0 + 1e-12 && w[1] > 1.999, "{w:?}");
        for base in [1.0, 0.5, f64::NAN] {
            let s = Stcr {
                base,
                ..Stcr::default()
            };
            let e = s
                .estimate(std::slice::from_ref(&g))
                .unwrap_err()
                .to_string();
            assert!(e.contains("base must be"), "{e}");
        }
    }

    #[test]
    fn parses_from_a_recipe() {
        let s: Box<dyn AdvantageEstimator> =
            serde_saphyr::from_str("type: stcr\nbase: 1.001\ninner: {type: rloo}\n").unwrap();
        let g = scored_lens(&[1.0, 0.0], &[4, 4], &[]);
        // rloo on [1, 0]: A = [1, −1]; equal lengths → w = 1
        assert_eq!(seq(&s.estimate(&[g]).unwrap()[0]), vec![1.0, -1.0]);
    }
}
