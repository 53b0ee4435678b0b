//! `all`: correct only when every child verifier is correct.
//!
//! ```text
//! correct = ∀i correct_i
//! reward  = min_i reward_i            (reward: min, default; for 1/0 children this is
//!                                      1 iff all are correct)
//!         | Π_i reward_i              (reward: product)
//! ```
//!
//! E.g. "the answer is right AND the output follows the format" as one binary reward
//! (a strict version of DeepSeek-R1's accuracy + format rule reward, arXiv 2501.12948)
//! [recon]. `prepare()` is forwarded to every child; `extract()` is the first child's;
//! `step_rewards` stay empty. An empty list is an error at `prepare()` (and incorrect with
//! reward 0 if verified anyway).

use foil_core::{Problem, Verdict, Verifier};
use serde::{Deserialize, Serialize};

/// How `all` combines the children's rewards.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum AllReward {
    #[default]
    Min,
    Product,
}

/// Recipe part: `verifier: {type: all, verifiers: [{type: math}, {type: format}], reward: min}`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct All {
    pub verifiers: Vec<Box<dyn Verifier>>,
    pub reward: AllReward,
}

#[foil_core::typetag::serde(name = "all")]
impl Verifier for All {
    fn prepare(&self) -> foil_core::anyhow::Result<()> {
        if self.verifiers.is_empty() {
            foil_core::anyhow::bail!("all verifier: `verifiers` is empty");
        }
        self.verifiers.iter().try_for_each(|v| v.prepare())
    }

    fn verify(&self, problem: &Problem, response: &str) -> Verdict {
        if self.verifiers.is_empty() {
            return Verdict::outcome(false);
        }
        let verdicts: Vec<Verdict> = self
            .verifiers
            .iter()
            .map(|v| v.verify(problem, response))
            .collect();
        let reward = match self.reward {
            AllReward::Min => verdicts
                .iter()
                .map(|v| v.reward)
                .fold(f32::INFINITY, f32::min),
            AllReward::Product => verdicts.iter().map(|v| v.reward).product(),
        };
        Verdict {
            reward,
            correct: verdicts.iter().all(|v| v.correct),
            step_rewards: Vec::new(),
        }
    }

    fn extract(&self, response: &str) -> Option<String> {
        self.verifiers.first()?.extract(response)
    }
}

foil_core::register_part!(
    Verifier,
    "all",
    All,
    "correct iff every child verifier is correct; reward = min (default) or product of the children's rewards"
);

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(answer: &str) -> Problem {
        Problem {
            id: "t".into(),
            prompt: "Q".into(),
            solution: String::new(),
            answer: answer.into(),
            difficulty: 0,
        }
    }

    fn both(reward: &str) -> All {
        serde_json::from_str(&format!(
            r#"{{"verifiers":[{{"type":"math"}},{{"type":"sum","verifiers":[
                 {{"verifier":{{"type":"format","pattern":".*</answer>"}},"weight":0.5}}]}}],
                "reward":"{reward}"}}"#
        ))
        .unwrap()
    }

    #[test]
    fn min_and_product_by_hand() {
        let p = problem("7");
        // children: math 1, 0.5·format = 0.5 → min 0.5, product 0.5; both correct
        let v = both("min").verify(&p, "\\boxed{7}</answer>");
        assert_eq!((v.reward, v.correct), (0.5, true));
        assert_eq!(
            both("product").verify(&p, "\\boxed{7}</answer>").reward,
            0.5
        );
        // math wrong: min(0, 0.5) = 0, product 0·0.5 = 0, not correct
        let v = both("min").verify(&p, "\\boxed{8}</answer>");
        assert_eq!((v.reward, v.correct), (0.0, false));
        // format missing: min(1, 0) = 0; the inner sum's correct (first) is false
        assert!(!both("min").verify(&p, "\\boxed{7}").correct);
    }

    #[test]
    fn empty_and_prepare() {
        assert!(All::default().prepare().is_err());
        assert_eq!(All::default().verify(&problem("1"), "1").reward, 0.0);
        let bad: Box<dyn Verifier> =
            serde_json::from_str(r#"{"type":"all","verifiers":[{"type":"regex","pattern":"("}]}"#)
                .unwrap();
        assert!(bad.prepare().is_err());
        assert!(both("min").prepare().is_ok());
    }
}
