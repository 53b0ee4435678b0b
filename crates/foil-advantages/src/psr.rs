//! `psr`: Positive-Sample Reinforcement (Zhu et al. 2025, "The Surprising Effectiveness of
//! Negative Reinforcement in LLM Reasoning", arXiv 2506.01347; `compute_psr_nsr_outcome_advantage`).
//!
//! Trains on correct completions only; incorrect ones are left out of the batch:
//!
//! ```text
//! A_i = +1 (or the base advantage A_i^base)   if y_i is correct
//! y_i excluded                                 otherwise
//! ```
//!
//! The paper finds PSR raises pass@1 fastest but collapses diversity (pass@k at large k
//! falls below the base model).

use foil_core::anyhow::Result;
use foil_core::{AdvantageEstimator, Credit, ScoredGroup, register_part};
use serde::{Deserialize, Serialize};

use crate::outcome_sign::by_outcome;

/// Recipe part: `advantage: {type: psr}` or `{type: psr, base: {type: grpo}}`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Psr {
    /// Magnitudes from this estimator instead of +1.
    pub base: Option<Box<dyn AdvantageEstimator>>,
}

register_part!(
    AdvantageEstimator,
    "psr",
    Psr,
    "positive-sample reinforcement: +1 on correct completions, negatives excluded (Zhu et al. 2025)"
);

#[typetag::serde(name = "psr")]
impl AdvantageEstimator for Psr {
    fn estimate(&self, groups: &[ScoredGroup]) -> Result<Vec<Vec<Credit>>> {
        by_outcome(groups, self.base.as_deref(), |correct, a| {
            if correct {
                Credit::Sequence(a)
            } else {
                Credit::Excluded
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::testing::scored;

    #[test]
    fn keeps_positives_at_plus_one_and_excludes_negatives() {
        let c = Psr::default()
            .estimate(&[scored(&[1.0, 0.0, 1.0])])
            .unwrap();
        assert_eq!(
            c[0],
            vec![
                Credit::Sequence(1.0),
                Credit::Excluded,
                Credit::Sequence(1.0)
            ]
        );
    }

    #[test]
    fn with_a_base_keeps_its_positive_magnitudes() {
        // grpo on [1, 0, 0, 0]: mean 0.25, unbiased std = sqrt(0.75/3) = 0.5
        // → A_correct = 0.75/0.5 = 1.5
        let p: Box<dyn AdvantageEstimator> =
            serde_saphyr::from_str("type: psr\nbase: {type: grpo}\n").unwrap();
        let c = p.estimate(&[scored(&[1.0, 0.0, 0.0, 0.0])]).unwrap();
        assert!((c[0][0].sequence().unwrap() - 1.5).abs() < 1e-4, "{c:?}");
        assert!(c[0][1..].iter().all(|x| *x == Credit::Excluded));
    }
}
