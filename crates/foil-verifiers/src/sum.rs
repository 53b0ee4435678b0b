//! `sum`: weighted sum of child verifiers' rewards.
//!
//! ```text
//! reward  = Σ_i w_i · reward_i
//! correct = correct_0                 (correct: first, default: the first child is the
//!                                      answer check, later children are shaping terms)
//!         | ∀i correct_i              (correct: all)
//!         | ∃i correct_i              (correct: any)
//! ```
//!
//! E.g. DeepSeek-R1's rule reward is accuracy + format (DeepSeek-AI 2025, arXiv
//! 2501.12948, §2.2.2; the paper gives no weights, so they are the recipe's choice)
//! [paper]. `prepare()` is forwarded to every child; `extract()` is the first child's.
//! `step_rewards` stay empty. An empty `verifiers` list is an error at `prepare()`.

use foil_core::{Problem, Verdict, Verifier};
use serde::{Deserialize, Serialize};

/// One weighted child.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Weighted {
    pub verifier: Box<dyn Verifier>,
    #[serde(default = "one")]
    pub weight: f64,
}

fn one() -> f64 {
    1.0
}

/// How a combinator decides `correct`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum CorrectRule {
    #[default]
    First,
    All,
    Any,
}

/// Recipe part: `verifier: {type: sum, verifiers: [{verifier: {type: math}, weight: 1.0},
/// {verifier: {type: format}, weight: 0.2}], correct: first}`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sum {
    pub verifiers: Vec<Weighted>,
    pub correct: CorrectRule,
}

#[foil_core::typetag::serde(name = "sum")]
impl Verifier for Sum {
    fn prepare(&self) -> foil_core::anyhow::Result<()> {
        if self.verifiers.is_empty() {
            foil_core::anyhow::bail!("sum verifier: `verifiers` is empty");
        }
        for w in &self.verifiers {
            if !w.weight.is_finite() {
                foil_core::anyhow::bail!("sum verifier: weight {} is not finite", w.weight);
            }
            w.verifier.prepare()?;
        }
        Ok(())
    }

    fn verify(&self, problem: &Problem, response: &str) -> Verdict {
        let verdicts: Vec<Verdict> = self
            .verifiers
            .iter()
            .map(|w| w.verifier.verify(problem, response))
            .collect();
        let reward: f64 = self
            .verifiers
            .iter()
            .zip(&verdicts)
            .map(|(w, v)| w.weight * f64::from(v.reward))
            .sum();
        let correct = match self.correct {
            CorrectRule::First => verdicts.first().is_some_and(|v| v.correct),
            CorrectRule::All => !verdicts.is_empty() && verdicts.iter().all(|v| v.correct),
            CorrectRule::Any => verdicts.iter().any(|v| v.correct),
        };
        Verdict {
            reward: reward as f32,
            correct,
            step_rewards: Vec::new(),
        }
    }

    fn extract(&self, response: &str) -> Option<String> {
        self.verifiers.first()?.verifier.extract(response)
    }
}

foil_core::register_part!(
    Verifier,
    "sum",
    Sum,
    "reward = Σ weight_i · reward_i of child verifiers (e.g. accuracy + format, DeepSeek-R1); correct: first | all | any"
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

    fn accuracy_plus_format(correct: CorrectRule) -> Sum {
        serde_json::from_str(&format!(
            r#"{{"verifiers":[{{"verifier":{{"type":"math"}},"weight":1.0}},
                 {{"verifier":{{"type":"format","pattern":".*<answer>.*</answer>"}},"weight":0.25}}],
                "correct":"{}"}}"#,
            match correct {
                CorrectRule::First => "first",
                CorrectRule::All => "all",
                CorrectRule::Any => "any",
            }
        ))
        .unwrap()
    }

    #[test]
    fn weighted_rewards_by_hand() {
        let s = accuracy_plus_format(CorrectRule::First);
        s.prepare().unwrap();
        let p = problem("7");
        // right answer, right format: 1·1 + 0.25·1 = 1.25
        let v = s.verify(&p, "think <answer>\\boxed{7}</answer>");
        assert_eq!((v.reward, v.correct), (1.25, true));
        // right answer, no format: 1·1 + 0.25·0 = 1.0
        assert_eq!(s.verify(&p, "\\boxed{7}").reward, 1.0);
        // wrong answer, right format: 0 + 0.25 = 0.25, correct from the first child: false
        let v = s.verify(&p, "<answer>\\boxed{8}</answer>");
        assert_eq!((v.reward, v.correct), (0.25, false));
        // correct: any → the format alone makes it correct; all → it does not
        assert!(
            accuracy_plus_format(CorrectRule::Any)
                .verify(&p, "<answer>\\boxed{8}</answer>")
                .correct
        );
        assert!(
            !accuracy_plus_format(CorrectRule::All)
                .verify(&p, "\\boxed{7}")
                .correct
        );
        assert_eq!(s.extract("\\boxed{7}").as_deref(), Some("7"));
    }

    #[test]
    fn prepare_forwards_and_checks() {
        assert!(Sum::default().prepare().is_err());
        let bad: Box<dyn Verifier> = serde_json::from_str(
            r#"{"type":"sum","verifiers":[{"verifier":{"type":"format","pattern":"("}}]}"#,
        )
        .unwrap();
        assert!(bad.prepare().is_err()); // the child's bad pattern surfaces
        assert!(serde_json::from_str::<Box<dyn Verifier>>(r#"{"type":"sum","x":1}"#).is_err());
    }
}
