//! `w_reinforce`: Weighted-REINFORCE (Zhu et al. 2025, "The Surprising Effectiveness of
//! Negative Reinforcement in LLM Reasoning", arXiv 2506.01347, Eq. 9): keep every sample,
//! down-weight the positives by λ:
//!
//! ```text
//! L = λ · L_PSR + L_NSR
//! A_i = λ · (+1 or A_i^base)   if y_i is correct
//! A_i =      −1 or A_i^base    otherwise
//! ```
//!
//! λ = 0.1 is the paper's default; λ = 1 is plain REINFORCE with r ∈ {−1, +1}.

use foil_core::anyhow::Result;
use foil_core::{AdvantageEstimator, Credit, ScoredGroup, register_part};
use serde::{Deserialize, Serialize};

use crate::outcome_sign::by_outcome;

/// Recipe part: `advantage: {type: w_reinforce, lambda: 0.1}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WReinforce {
    /// Weight λ of positive samples.
    pub lambda: f32,
    /// Magnitudes from this estimator instead of ±1.
    pub base: Option<Box<dyn AdvantageEstimator>>,
}

impl Default for WReinforce {
    fn default() -> Self {
        Self {
            lambda: 0.1,
            base: None,
        }
    }
}

register_part!(
    AdvantageEstimator,
    "w_reinforce",
    WReinforce,
    "weighted REINFORCE: λ on correct, −1 on incorrect completions (Zhu et al. 2025, λ = 0.1)"
);

#[typetag::serde(name = "w_reinforce")]
impl AdvantageEstimator for WReinforce {
    fn estimate(&self, groups: &[ScoredGroup]) -> Result<Vec<Vec<Credit>>> {
        by_outcome(groups, self.base.as_deref(), |correct, a| {
            Credit::Sequence(if correct { self.lambda * a } else { a })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::testing::{scored, seq};

    #[test]
    fn positives_weighted_by_lambda_negatives_minus_one() {
        // λ = 0.1: correct → 0.1·(+1) = 0.1, incorrect → −1
        let c = WReinforce::default()
            .estimate(&[scored(&[1.0, 0.0])])
            .unwrap();
        assert_eq!(seq(&c[0]), vec![0.1, -1.0]);
    }

    #[test]
    fn lambda_one_is_plain_reinforce_and_a_base_is_scaled() {
        let c = WReinforce {
            lambda: 1.0,
            base: None,
        }
        .estimate(&[scored(&[1.0, 0.0])])
        .unwrap();
        assert_eq!(seq(&c[0]), vec![1.0, -1.0]);
        // base rloo on [1, 0]: A = 2/1·(r − 0.5) = [1, −1]; λ = 0.5 → [0.5, −1]
        let w: Box<dyn AdvantageEstimator> =
            serde_saphyr::from_str("type: w_reinforce\nlambda: 0.5\nbase: {type: rloo}\n").unwrap();
        assert_eq!(
            seq(&w.estimate(&[scored(&[1.0, 0.0])]).unwrap()[0]),
            vec![0.5, -1.0]
        );
    }
}
