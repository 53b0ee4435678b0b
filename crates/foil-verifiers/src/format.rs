//! `format`: binary reward for following a required output format.
//!
//! ```text
//! correct = the WHOLE response (trimmed) matches `pattern`      (regex, anchored ^…$)
//! reward  = 1 if correct else 0
//! ```
//!
//! The default pattern is DeepSeek-R1's format reward (DeepSeek-AI 2025, arXiv 2501.12948,
//! §2.2.2: reasoning inside `<think>…</think>`, then the answer inside
//! `<answer>…</answer>`): `<think>.*?</think>\s*<answer>.*?</answer>` with `.` matching
//! newlines [paper]. The pattern uses the `regex` crate (linear time); a bad pattern is an
//! error at `prepare()`. Combine with an answer check through `sum` (weighted) or `all`.
//! Responses longer than 64 KiB are incorrect (never scanned).

use std::sync::OnceLock;

use foil_core::{Problem, Verdict, Verifier};
use regex::Regex;
use serde::{Deserialize, Serialize};

/// Longest response the format check scans.
pub const MAX_FORMAT_BYTES: usize = 64 * 1024;

/// Recipe part: `verifier: {type: format, pattern: "<think>.*?</think>\\s*<answer>.*?</answer>"}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Format {
    /// The pattern the whole trimmed response must match (anchors are added).
    pub pattern: String,
    #[serde(skip)]
    compiled: OnceLock<Result<Regex, String>>,
}

impl Default for Format {
    fn default() -> Self {
        Self::new(r"<think>.*?</think>\s*<answer>.*?</answer>")
    }
}

impl Format {
    /// A format check for `pattern`.
    pub fn new(pattern: &str) -> Self {
        Self {
            pattern: pattern.into(),
            compiled: OnceLock::new(),
        }
    }

    fn regex(&self) -> Result<&Regex, String> {
        self.compiled
            .get_or_init(|| {
                Regex::new(&format!("(?s)^(?:{})$", self.pattern))
                    .map_err(|e| format!("format verifier: bad pattern {:?}: {e}", self.pattern))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Whether `response` follows the format.
    pub fn follows(&self, response: &str) -> bool {
        response.len() <= MAX_FORMAT_BYTES
            && self.regex().is_ok_and(|re| re.is_match(response.trim()))
    }
}

#[foil_core::typetag::serde(name = "format")]
impl Verifier for Format {
    fn prepare(&self) -> foil_core::anyhow::Result<()> {
        self.regex()
            .map(|_| ())
            .map_err(foil_core::anyhow::Error::msg)
    }

    fn verify(&self, _problem: &Problem, response: &str) -> Verdict {
        Verdict::outcome(self.follows(response))
    }
}

foil_core::register_part!(
    Verifier,
    "format",
    Format,
    "1/0 reward: the whole response matches a format regex (default <think>…</think><answer>…</answer>, DeepSeek-R1 format reward)"
);

#[cfg(test)]
mod tests {
    use super::*;

    fn problem() -> Problem {
        Problem {
            id: "t".into(),
            prompt: "Q".into(),
            solution: String::new(),
            answer: "1".into(),
            difficulty: 0,
        }
    }

    #[test]
    fn think_answer_format() {
        let f = Format::default();
        assert!(f.follows("<think>a\nb</think>\n<answer>42</answer>\n"));
        assert!(!f.follows("<think>a</think> 42"));
        assert!(!f.follows("<answer>42</answer>"));
        assert!(!f.follows("x <think>a</think><answer>1</answer>")); // anchored at start
        assert_eq!(
            f.verify(&problem(), "<think></think><answer></answer>")
                .reward,
            1.0
        );
        assert!(!f.follows(&format!(
            "<think>{}</think><answer>1</answer>",
            "a".repeat(MAX_FORMAT_BYTES)
        )));
    }

    #[test]
    fn custom_and_bad_patterns() {
        let f = Format::new(r"\d+");
        assert!(f.follows(" 123 "));
        assert!(!f.follows("123a"));
        assert!(Format::new("(").prepare().is_err());
        assert!(!Format::new("(").follows("("));
        let v: Box<dyn Verifier> =
            serde_json::from_str(r#"{"type":"format","pattern":"A: \\d+"}"#).unwrap();
        assert!(v.verify(&problem(), "A: 7").correct);
        assert!(serde_json::from_str::<Box<dyn Verifier>>(r#"{"type":"format","x":1}"#).is_err());
    }
}
