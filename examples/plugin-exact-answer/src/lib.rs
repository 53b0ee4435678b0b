//! An example plugin crate: it adds a verifier to foil without touching foil's crates.
//!
//! Three things make a part:
//! 1. a struct with `Serialize + Deserialize + Default` (its recipe fields and defaults),
//! 2. `#[typetag::serde(name = "…")]` on the trait impl (the recipe's `type:` name),
//! 3. `foil_core::register_part!` (so `foil list` shows it with its defaults).
//!
//! A binary sees the part once it links the crate: add it as a dependency and write
//! `use foil_plugin_exact_answer as _;` (the linker drops crates nothing refers to).
//!
//! `exact_answer`: reward 1 when the text after the last marker equals the reference
//! answer exactly (after trimming), e.g. for answers that are not numbers.

use foil_core::{Problem, Verdict, Verifier, register_part};
use serde::{Deserialize, Serialize};

/// Recipe part: `verifier: {type: exact_answer, marker: "A:"}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ExactAnswer {
    /// The answer follows the last occurrence of this marker.
    pub marker: String,
}

impl Default for ExactAnswer {
    fn default() -> Self {
        Self {
            marker: "A:".into(),
        }
    }
}

register_part!(
    Verifier,
    "exact_answer",
    ExactAnswer,
    "example plugin: 1/0 reward for an exact string match after the marker"
);

#[typetag::serde(name = "exact_answer")]
impl Verifier for ExactAnswer {
    fn verify(&self, problem: &Problem, response: &str) -> Verdict {
        Verdict::outcome(self.extract(response).as_deref() == Some(problem.answer.trim()))
    }

    fn extract(&self, response: &str) -> Option<String> {
        let at = response.rfind(self.marker.as_str())?;
        Some(response[at + self.marker.len()..].trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_by_linking_and_judges_exact_text() {
        let v: Box<dyn Verifier> =
            serde_saphyr::from_str("type: exact_answer\nmarker: '=>'\n").unwrap();
        let p = Problem {
            id: "x".into(),
            prompt: "capital of France?".into(),
            solution: String::new(),
            answer: "Paris".into(),
            difficulty: 1,
        };
        // "… => Paris" matches; "=> paris" does not (exact, case-sensitive)
        assert!(v.verify(&p, "thinking => Paris ").correct);
        assert!(!v.verify(&p, "=> paris").correct);
        assert!(foil_core::registry::names_of("Verifier").contains(&"exact_answer"));
    }
}
