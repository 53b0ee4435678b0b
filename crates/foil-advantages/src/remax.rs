//! `remax`: ReMax (Li et al. 2023, "ReMax: A Simple, Effective, and Efficient Reinforcement
//! Learning Method for Aligning Large Language Models", arXiv 2310.10505; verl
//! `compute_remax_outcome_advantage`): REINFORCE whose baseline is the reward of the
//! greedy completion for the same prompt.
//!
//! ```text
//! ŷ   = greedy decoding of π_θ(· | x)        (sampled for the baseline only, never trained on)
//! A_i = r(x, y_i) − r(x, ŷ)                  for every sampled y_i of the prompt
//! ```
//!
//! Every token of a completion shares its advantage ([`Credit::Sequence`]). The greedy
//! completion comes from the RL stage's `baseline_sampler: {type: local, n: 1,
//! temperature: 0}`, which is scored but never trained on ([`ScoredGroup::baseline`]);
//! without it the estimator is an error that says how to add it.

use foil_core::anyhow::{Result, bail};
use foil_core::{AdvantageEstimator, Credit, ScoredGroup, register_part};
use serde::{Deserialize, Serialize};

use crate::group::rewards;

/// Recipe part: `advantage: {type: remax}`. It has no options.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Remax {}

register_part!(
    AdvantageEstimator,
    "remax",
    Remax,
    "r − r(greedy completion) (ReMax, Li et al. 2023); needs rl.baseline_sampler {type: local, n: 1, temperature: 0}"
);

impl Remax {
    /// The advantages of one group's rewards against the greedy completion's reward.
    pub fn advantages(&self, r: &[f64], greedy_reward: f64) -> Vec<f64> {
        r.iter().map(|x| x - greedy_reward).collect()
    }

    /// The credits of group `index` given the reward of its greedy completion.
    pub fn credits(
        &self,
        index: usize,
        group: &ScoredGroup,
        greedy_reward: f32,
    ) -> Result<Vec<Credit>> {
        let r = rewards(index, group)?;
        Ok(self
            .advantages(&r, f64::from(greedy_reward))
            .into_iter()
            .map(|a| Credit::Sequence(a as f32))
            .collect())
    }
}

/// The reward of the group's greedy completion.
fn greedy_reward(group: &ScoredGroup) -> Option<f32> {
    group.baseline.as_ref().map(|v| v.reward)
}

#[typetag::serde(name = "remax")]
impl AdvantageEstimator for Remax {
    fn estimate(&self, groups: &[ScoredGroup]) -> Result<Vec<Vec<Credit>>> {
        groups
            .iter()
            .enumerate()
            .map(|(i, g)| match greedy_reward(g) {
                Some(b) => self.credits(i, g, b),
                None => bail!(
                    "remax: group {i} (problem {}) has no greedy-rollout reward; add \
                     `baseline_sampler: {{type: local, n: 1, temperature: 0}}` to the rl stage",
                    g.group.problem.id
                ),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::testing::{scored, seq};

    #[test]
    fn reward_minus_greedy_reward() {
        // r = [1, 0, 0, 1], greedy completion correct (r̂ = 1):
        // A = [1 − 1, 0 − 1, 0 − 1, 1 − 1] = [0, −1, −1, 0]
        let c = Remax::default()
            .credits(0, &scored(&[1.0, 0.0, 0.0, 1.0]), 1.0)
            .unwrap();
        assert_eq!(seq(&c), [0.0, -1.0, -1.0, 0.0]);
        // greedy wrong (r̂ = 0): A = r = [1, 0, 0, 1]
        let c = Remax::default()
            .credits(0, &scored(&[1.0, 0.0, 0.0, 1.0]), 0.0)
            .unwrap();
        assert_eq!(seq(&c), [1.0, 0.0, 0.0, 1.0]);
        // non-binary: r = [0.2, 0.9], r̂ = 0.5 → [−0.3, 0.4]
        let a = Remax::default().advantages(&[0.2, 0.9], 0.5);
        assert!((a[0] + 0.3).abs() < 1e-12 && (a[1] - 0.4).abs() < 1e-12);
    }

    #[test]
    fn estimate_uses_the_baseline_verdict() {
        // r = [1, 0], greedy verdict correct (1): A = [0, −1]
        let e: Box<dyn AdvantageEstimator> = serde_json::from_str(r#"{"type":"remax"}"#).unwrap();
        let mut g = scored(&[1.0, 0.0]);
        g.baseline = Some(foil_core::Verdict::outcome(true));
        assert_eq!(seq(&e.estimate(&[g]).unwrap()[0]), [0.0, -1.0]);
    }

    #[test]
    fn estimate_explains_the_missing_greedy_rollout() {
        let e: Box<dyn AdvantageEstimator> = serde_json::from_str(r#"{"type":"remax"}"#).unwrap();
        let err = e.estimate(&[scored(&[1.0, 0.0])]).unwrap_err().to_string();
        assert!(
            err.contains("greedy") && err.contains("baseline_sampler"),
            "{err}"
        );
        assert!(e.estimate(&[]).unwrap().is_empty());
        assert!(
            serde_json::from_str::<Box<dyn AdvantageEstimator>>(r#"{"type":"remax","n":1}"#)
                .is_err()
        );
        assert!(foil_core::registry::names_of("AdvantageEstimator").contains(&"remax"));
    }

    #[test]
    fn mismatched_verdicts_are_an_error() {
        let mut g = scored(&[1.0, 0.0]);
        g.verdicts.pop();
        assert!(Remax::default().credits(0, &g, 0.0).is_err());
    }
}
