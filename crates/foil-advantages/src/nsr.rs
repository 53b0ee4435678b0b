//! `nsr`: Negative-Sample Reinforcement (Zhu et al. 2025, "The Surprising Effectiveness of
//! Negative Reinforcement in LLM Reasoning", arXiv 2506.01347; `compute_psr_nsr_outcome_advantage`).
//!
//! Trains on incorrect completions only, pushing their probability down; correct ones are
//! left out of the batch:
//!
//! ```text
//! A_i = −1 (or the base advantage A_i^base)   if y_i is incorrect   (code: r − 1 with r = 0)
//! y_i excluded                                 otherwise
//! ```
//!
//! The paper finds NSR keeps entropy near the base model and keeps or raises pass@k across
//! k, because the mass taken from wrong answers is redistributed by the model's prior.

use foil_core::anyhow::Result;
use foil_core::{AdvantageEstimator, Credit, ScoredGroup, register_part};
use serde::{Deserialize, Serialize};

use crate::outcome_sign::by_outcome;

/// Recipe part: `advantage: {type: nsr}` or `{type: nsr, base: {type: ngrpo}}`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Nsr {
    /// Magnitudes from this estimator instead of −1.
    pub base: Option<Box<dyn AdvantageEstimator>>,
}

register_part!(
    AdvantageEstimator,
    "nsr",
    Nsr,
    "negative-sample reinforcement: −1 on incorrect completions, positives excluded (Zhu et al. 2025)"
);

#[typetag::serde(name = "nsr")]
impl AdvantageEstimator for Nsr {
    fn estimate(&self, groups: &[ScoredGroup]) -> Result<Vec<Vec<Credit>>> {
        by_outcome(groups, self.base.as_deref(), |correct, a| {
            if correct {
                Credit::Excluded
            } else {
                Credit::Sequence(a)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::testing::scored;

    #[test]
    fn keeps_negatives_at_minus_one_and_excludes_positives() {
        let c = Nsr::default()
            .estimate(&[scored(&[1.0, 0.0, 0.0])])
            .unwrap();
        assert_eq!(
            c[0],
            vec![
                Credit::Excluded,
                Credit::Sequence(-1.0),
                Credit::Sequence(-1.0)
            ]
        );
    }

    #[test]
    fn all_wrong_group_still_trains_without_a_base() {
        // unlike GRPO (whose advantage is 0 there), every negative gets −1
        let c = Nsr::default().estimate(&[scored(&[0.0; 4])]).unwrap();
        assert_eq!(c[0], vec![Credit::Sequence(-1.0); 4]);
    }
}
