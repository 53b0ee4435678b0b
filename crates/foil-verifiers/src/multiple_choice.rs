//! `multiple_choice`: binary outcome reward on an option letter.
//!
//! The letter is read as math-verify's `StringExtractionConfig` reads it (Hugging Face
//! `math-verify` 0.9, `parser.py` `lazy_string_regex`) [code]: a letter `L` from `letters`
//! counts when it stands alone — preceded by the start of the text or a space, optionally
//! in `**bold**`, and followed by `.`, `,`, `:`, a space or the end. Patterns by priority
//! (the first pattern with a match wins; among its matches the rightmost one):
//!
//! ```text
//! 0    "final answer is" :? L .? " "? "I hope"
//! 50   "final answer" (≤100 chars) " is" :? L
//! 100  "answer:" (≤50 chars) standalone L
//! 200  "answer"  (≤50 chars) standalone L
//! 250  standalone L at the very start
//! 300  any standalone L
//! ```
//!
//! "answer" matches case-insensitively; the letter must be written in the case of
//! `letters` (upper case by default), and is compared case-insensitively with the
//! reference (`problem.answer`, which may be written `B`, `(B)` or `b`). Additionally
//! (`parenthesised: true`, the default) `(B)` counts as a standalone letter — math-verify
//! does not read it, so with this on foil accepts "The answer is (B)" where math-verify
//! finds no answer. `correct = extracted == reference`, reward 1/0.

use foil_core::{Problem, Verdict, Verifier};
use serde::{Deserialize, Serialize};

pub use foil_math::choice::{extract_letter, reference_letter};

/// Outcome verifier on a multiple-choice letter.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MultipleChoice {
    /// The option letters (each one character).
    pub letters: String,
    /// Also read a letter in parentheses, `(B)`.
    pub parenthesised: bool,
}

impl Default for MultipleChoice {
    fn default() -> Self {
        Self {
            letters: "ABCDE".into(),
            parenthesised: true,
        }
    }
}

impl MultipleChoice {
    /// Whether `response` picks the reference letter.
    pub fn is_correct(&self, problem: &Problem, response: &str) -> bool {
        match (
            extract_letter(response, &self.letters, self.parenthesised),
            reference_letter(&problem.answer),
        ) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }
}

#[foil_core::typetag::serde(name = "multiple_choice")]
impl Verifier for MultipleChoice {
    fn verify(&self, problem: &Problem, response: &str) -> Verdict {
        Verdict::outcome(self.is_correct(problem, response))
    }

    fn extract(&self, response: &str) -> Option<String> {
        extract_letter(response, &self.letters, self.parenthesised)
    }
}

foil_core::register_part!(
    Verifier,
    "multiple_choice",
    MultipleChoice,
    "1/0 reward: the option letter read as math-verify's StringExtractionConfig reads it (plus \"(B)\") equals the answer letter"
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
    fn reads_letters_by_priority() {
        let x = |s: &str| extract_letter(s, "ABCDE", true);
        assert_eq!(x("Answer: B").as_deref(), Some("B"));
        assert_eq!(x("The answer is (C).").as_deref(), Some("C"));
        assert_eq!(x("**D** is right").as_deref(), Some("D"));
        // "answer" anchor (priority 200) beats a later plain letter (300)
        assert_eq!(x("the answer is A, not E").as_deref(), Some("A"));
        // lowercase letters are not options; a letter inside a word is not standalone
        assert_eq!(x("the answer is b"), None);
        assert_eq!(x("Because BAD"), None);
        // plain: the rightmost standalone letter; a letter at the very start wins over it
        assert_eq!(x("I think A or maybe C").as_deref(), Some("C"));
        assert_eq!(x("A or maybe C").as_deref(), Some("A"));
        assert_eq!(extract_letter("The answer is (B)", "ABCDE", false), None);
    }

    #[test]
    fn verdicts() {
        let m = MultipleChoice::default();
        assert!(m.is_correct(&problem("B"), "Answer: B"));
        assert!(m.is_correct(&problem("(b)"), "I pick B."));
        assert!(!m.is_correct(&problem("B"), "Answer: C"));
        assert!(!m.is_correct(&problem("BC"), "Answer: B"));
        assert!(!m.is_correct(&problem("B"), ""));
        assert_eq!(m.verify(&problem("B"), "Answer: B").reward, 1.0);
        let v: Box<dyn Verifier> =
            serde_json::from_str(r#"{"type":"multiple_choice","letters":"ABCD"}"#).unwrap();
        assert!(!v.verify(&problem("E"), "Answer: E").correct); // E is not an option
        assert!(
            serde_json::from_str::<Box<dyn Verifier>>(r#"{"type":"multiple_choice","x":1}"#)
                .is_err()
        );
    }
}
