//! `math`: binary outcome reward for free-form mathematical answers, modelled on Hugging
//! Face's `math-verify` (PyPI `math-verify` 0.9, the reference for "correct"; see
//! `docs/math-verifier.md` for the measured agreement and every known disagreement).
//!
//! ```text
//! pred    = normalize(extract(response))          (extract: boxed > "####" > "answer"
//!                                                   > rightmost LaTeX span / number)
//! gold    = normalize(last_boxed(answer) or answer)
//! correct = equivalent(parse(gold), parse(pred))   (numbers, fractions, decimals to 6
//!                                                   places, scientific notation,
//!                                                   percentages, expressions at random
//!                                                   points, lists/sets/tuples/intervals,
//!                                                   equations, else normalised text)
//! reward  = 1 if correct else 0
//! ```
//!
//! When the reference is a single option letter (`B`, `(B)`), the response is read as a
//! multiple-choice answer instead ([`crate::multiple_choice`]).
//!
//! This is the rule-based math reward of RLVR / DeepSeek-R1 style training (DeepSeek-AI
//! 2025, arXiv 2501.12948; Lambert et al. 2024, arXiv 2411.15124), with math-verify's
//! extraction and comparison rules [code]; the random-point test for symbolic expressions
//! replaces sympy's simplification [recon].
//!
//! The extraction, normalisation and comparison live in the burn-free crate `foil-math`
//! (so that they can be fuzzed quickly); this module is the recipe part.
//!
//! Bounds: the last 16 KiB of a response are read, an answer is cut at 1 KiB, parsing
//! stops past 512 tokens or nesting depth 48, and no step recurses without a depth limit,
//! so every call returns in bounded time and never panics.

use foil_core::{Problem, Verdict, Verifier};
use serde::{Deserialize, Serialize};

pub use foil_math::{
    Answer, answers_eq, equiv, expr, extract, extract_answer, gold_answer, is_equivalent,
    last_boxed, normalize, parse_answer,
};

use crate::multiple_choice::{extract_letter, reference_letter};

/// Outcome verifier for free-form math answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Math {
    /// Option letters: a reference that is one of them is checked as multiple choice.
    /// Empty: never.
    pub choice_letters: String,
}

impl Default for Math {
    fn default() -> Self {
        Self {
            choice_letters: "ABCDE".into(),
        }
    }
}

impl Math {
    fn choice(&self, answer: &str) -> Option<String> {
        let l = reference_letter(answer)?;
        self.choice_letters.contains(l.as_str()).then_some(l)
    }

    /// Whether `response` answers `problem` correctly.
    pub fn is_correct(&self, problem: &Problem, response: &str) -> bool {
        if let Some(letter) = self.choice(&problem.answer) {
            return extract_letter(response, &self.choice_letters, true) == Some(letter);
        }
        is_equivalent(&problem.answer, response)
    }
}

#[foil_core::typetag::serde(name = "math")]
impl Verifier for Math {
    fn verify(&self, problem: &Problem, response: &str) -> Verdict {
        Verdict::outcome(self.is_correct(problem, response))
    }

    fn extract(&self, response: &str) -> Option<String> {
        extract_answer(response).map(|a| normalize(&a))
    }
}

foil_core::register_part!(
    Verifier,
    "math",
    Math,
    "1/0 reward: free-form math answer (boxed/####/\"answer is\"/last number) equivalent to the reference: numbers, fractions, %, expressions, sets, intervals (math-verify rules)"
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

    #[test]
    fn end_to_end() {
        let m = Math::default();
        // \dfrac{4}{2} = 2
        assert!(m.is_correct(&problem("2"), r"so we get $\boxed{\dfrac{4}{2}}$."));
        // 1,000 → 1000
        assert!(m.is_correct(&problem("1000"), "The answer is 1,000."));
        assert!(m.is_correct(&problem("72"), "48 + 24 = 72\n#### 72"));
        assert!(m.is_correct(&problem(r"\frac{1}{2}"), "so it is 0.5"));
        assert!(!m.is_correct(&problem("3"), "no answer"));
        assert!(m.is_correct(&problem("B"), "The answer is (B)."));
        assert!(!m.is_correct(&problem("B"), "The answer is (C)."));
        assert_eq!(m.verify(&problem("5"), r"\boxed{5}").reward, 1.0);
        assert_eq!(m.extract(r"\boxed{30^\circ}").as_deref(), Some("30"));
        let v: Box<dyn Verifier> = serde_json::from_str(r#"{"type":"math"}"#).unwrap();
        assert!(
            v.verify(&problem(r"\boxed{x^2}"), r"\boxed{x \cdot x}")
                .correct
        );
        assert!(serde_json::from_str::<Box<dyn Verifier>>(r#"{"type":"math","x":1}"#).is_err());
    }
}
