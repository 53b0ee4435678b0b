//! `bandit_reward`: the reward of the didactic bandit of Tajwar et al. 2024 (arXiv
//! 2404.14367, `methods.md` §15; [code] `bandit_experiment/reward_functions.py`).
//!
//! A response must be exactly one action word `a{k}` (the `bandit` task's tokenizer text,
//! `k < actions`); anything else (empty, two actions, other text) gets reward 0.
//!
//! ```text
//! r(a)    = exp(−((a − peak) / width)²)          peak 70: far from π_ref; 20: aligned
//! correct = r(a) ≥ correct_above                  (for pass@k and pairing by correctness)
//! ```

use foil_core::{Problem, Verdict, Verifier};
use serde::{Deserialize, Serialize};

/// Recipe part: `verifier: {type: bandit_reward, peak: 70}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BanditReward {
    /// The action with reward 1.
    pub peak: f64,
    /// Width of the reward bump (> 0).
    pub width: f64,
    /// Number of actions (responses `a{k}` with `k ≥ actions` are invalid).
    pub actions: usize,
    /// A response is `correct` when its reward is at least this.
    pub correct_above: f32,
}

impl Default for BanditReward {
    fn default() -> Self {
        Self {
            peak: 70.0,
            width: 10.0,
            actions: 100,
            correct_above: 0.5,
        }
    }
}

impl BanditReward {
    /// `r(a)`.
    pub fn reward(&self, a: usize) -> f32 {
        let d = (a as f64 - self.peak) / self.width;
        (-d * d).exp() as f32
    }

    /// The action a response names, if it is exactly one valid action word.
    pub fn action(&self, response: &str) -> Option<usize> {
        let digits = response.strip_prefix('a')?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().filter(|&a| a < self.actions)
    }
}

#[typetag::serde(name = "bandit_reward")]
impl Verifier for BanditReward {
    fn verify(&self, _problem: &Problem, response: &str) -> Verdict {
        let reward = self
            .action(response.trim())
            .filter(|_| self.width > 0.0)
            .map_or(0.0, |a| self.reward(a));
        Verdict {
            reward,
            correct: reward >= self.correct_above,
            step_rewards: Vec::new(),
        }
    }

    fn extract(&self, response: &str) -> Option<String> {
        self.action(response.trim()).map(|a| a.to_string())
    }
}

foil_core::register_part!(
    Verifier,
    "bandit_reward",
    BanditReward,
    "didactic-bandit reward r(a) = exp(−((a − peak)/width)²) of one action token (Tajwar et al. 2024)"
);

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> Problem {
        Problem {
            id: "t".into(),
            prompt: "S".into(),
            solution: "a20".into(),
            answer: "20".into(),
            difficulty: 1,
        }
    }

    #[test]
    fn hand_worked_rewards() {
        let v = BanditReward::default(); // peak 70, width 10
        // a = 70: exp(0) = 1
        assert_eq!(v.verify(&p(), "a70").reward, 1.0);
        // a = 75: exp(−0.25) = 0.7788008
        assert!((v.verify(&p(), "a75").reward - 0.778_800_8).abs() < 1e-6);
        // a = 60: exp(−1) = 0.3678794 < 0.5: not correct
        let d = v.verify(&p(), "a60");
        assert!((d.reward - 0.367_879_4).abs() < 1e-6 && !d.correct);
        assert!(v.verify(&p(), "a75").correct);
        // a = 20 (π_ref's mode): exp(−25) = 1.3887944e−11
        assert!((v.verify(&p(), "a20").reward / 1.388_794_4e-11 - 1.0).abs() < 1e-4);
        // peak 20: a = 20 → 1, a = 35 → exp(−2.25) = 0.1053992
        let near = BanditReward {
            peak: 20.0,
            ..Default::default()
        };
        assert_eq!(near.verify(&p(), "a20").reward, 1.0);
        assert!((near.verify(&p(), "a35").reward - 0.105_399_2).abs() < 1e-6);
    }

    #[test]
    fn malformed_responses_get_zero() {
        let v = BanditReward::default();
        for r in ["", "a", "a100", "a70a70", "70", "S", "a-1", "a7x"] {
            let d = v.verify(&p(), r);
            assert_eq!((d.reward, d.correct), (0.0, false), "{r:?}");
        }
        assert_eq!(v.extract("a70"), Some("70".into()));
    }
}
