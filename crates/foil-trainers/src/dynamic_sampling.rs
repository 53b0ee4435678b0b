//! `dynamic_sampling` (DAPO, Yu et al. 2025, "DAPO: An Open-Source LLM Reinforcement
//! Learning System at Scale", §3.2): drop every group whose rewards are all equal — its
//! group-normalised advantages are all zero, so it carries no gradient — and sample more
//! prompts until the batch is full again (at most `max_rounds` sampling rounds per step).
//!
//! ```text
//! keep(g)  ⇔  ∃ i, j ∈ g : r_i ≠ r_j
//! ```

use foil_core::{Filter, ScoredGroup, register_part};
use serde::{Deserialize, Serialize};

/// Recipe part: `filters: [{type: dynamic_sampling, max_rounds: 3}]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DynamicSampling {
    /// Sampling rounds per step (1 = filter without refilling).
    pub max_rounds: usize,
}

impl Default for DynamicSampling {
    fn default() -> Self {
        Self { max_rounds: 3 }
    }
}

register_part!(
    Filter,
    "dynamic_sampling",
    DynamicSampling,
    "drop groups whose rewards are all equal and refill the batch (DAPO, Yu et al. 2025)"
);

#[typetag::serde(name = "dynamic_sampling")]
impl Filter for DynamicSampling {
    fn keep(&self, group: &ScoredGroup) -> bool {
        let r = group.rewards();
        r.iter().any(|&x| x != r[0])
    }

    fn refill(&self) -> bool {
        self.max_rounds > 1
    }

    fn max_rounds(&self) -> usize {
        self.max_rounds.max(1)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use foil_core::{Group, Problem, Verdict};

    /// A group with one verdict per reward (correct when reward > 0.5).
    pub(crate) fn group(rewards: &[f32]) -> ScoredGroup {
        ScoredGroup {
            group: Group {
                problem: Problem {
                    id: "p".into(),
                    prompt: "Q:1+1=".into(),
                    solution: String::new(),
                    answer: "2".into(),
                    difficulty: 2,
                },
                completions: vec![],
            },
            verdicts: rewards
                .iter()
                .map(|&r| Verdict {
                    reward: r,
                    correct: r > 0.5,
                    step_rewards: vec![],
                })
                .collect(),
            baseline: None,
        }
    }

    #[test]
    fn keeps_only_groups_with_reward_variance() {
        let f = DynamicSampling::default();
        assert!(!f.keep(&group(&[0.0, 0.0, 0.0])));
        assert!(!f.keep(&group(&[1.0, 1.0])));
        assert!(f.keep(&group(&[1.0, 0.0, 0.0])));
        assert!(f.keep(&group(&[0.5, 0.25])));
        assert!(f.refill());
        assert!(!DynamicSampling { max_rounds: 1 }.refill());
    }
}
