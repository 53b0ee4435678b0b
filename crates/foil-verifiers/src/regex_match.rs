//! `regex`: binary outcome reward from a regular expression.
//!
//! ```text
//! mode capture (a pattern with a capture group, default):
//!     answer  = group 1 (or the group named `answer`) of the LAST match in the response
//!     correct = norm(answer) == norm(problem.answer)      (norm: trim, lowercase unless
//!                                                          case_sensitive)
//! mode match (a pattern without groups is allowed):
//!     correct = the pattern matches somewhere in the response
//! reward  = 1 if correct else 0
//! ```
//!
//! Patterns use the `regex` crate's syntax (linear-time matching: no look-around or
//! back-references, so a hostile response cannot make matching hang). An invalid pattern
//! is an error at `prepare()` (which stages call before the run) and an incorrect verdict
//! otherwise. Only the last 16 KiB of a response are searched.

use std::sync::OnceLock;

use foil_core::{Problem, Verdict, Verifier};
use regex::Regex;
use serde::{Deserialize, Serialize};

use foil_math::extract::{MAX_RESPONSE_BYTES, tail};

/// What the pattern decides.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum RegexMode {
    /// Group 1 (or `(?P<answer>…)`) of the last match is compared with the reference.
    #[default]
    Capture,
    /// The pattern matching at all is correct.
    Match,
}

/// Recipe part: `verifier: {type: regex, pattern: "Answer: (\\w+)", mode: capture}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegexVerifier {
    pub pattern: String,
    pub mode: RegexMode,
    /// Compare the captured answer case-sensitively.
    pub case_sensitive: bool,
    #[serde(skip)]
    compiled: OnceLock<Result<Regex, String>>,
}

impl Default for RegexVerifier {
    fn default() -> Self {
        Self {
            pattern: r"(?i)answer\s*(?:is|:)\s*([^\s.,;]+)".into(),
            mode: RegexMode::Capture,
            case_sensitive: false,
            compiled: OnceLock::new(),
        }
    }
}

impl RegexVerifier {
    /// A verifier for `pattern` in `mode`.
    pub fn new(pattern: &str, mode: RegexMode) -> Self {
        Self {
            pattern: pattern.into(),
            mode,
            ..Self::default()
        }
    }

    fn regex(&self) -> Result<&Regex, String> {
        self.compiled
            .get_or_init(|| {
                let re = Regex::new(&self.pattern)
                    .map_err(|e| format!("regex verifier: bad pattern {:?}: {e}", self.pattern))?;
                if self.mode == RegexMode::Capture && re.captures_len() < 2 {
                    return Err(format!(
                        "regex verifier: pattern {:?} has no capture group (mode capture)",
                        self.pattern
                    ));
                }
                Ok(re)
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The captured answer of the last match (mode capture).
    pub fn answer(&self, response: &str) -> Option<String> {
        let re = self.regex().ok()?;
        let caps = re
            .captures_iter(tail(response, MAX_RESPONSE_BYTES))
            .last()?;
        let m = caps.name("answer").or_else(|| caps.get(1))?;
        Some(m.as_str().trim().to_string())
    }

    fn norm(&self, s: &str) -> String {
        if self.case_sensitive {
            s.trim().to_string()
        } else {
            s.trim().to_lowercase()
        }
    }

    /// Whether `response` is correct for `problem`.
    pub fn is_correct(&self, problem: &Problem, response: &str) -> bool {
        match self.mode {
            RegexMode::Match => self
                .regex()
                .is_ok_and(|re| re.is_match(tail(response, MAX_RESPONSE_BYTES))),
            RegexMode::Capture => self
                .answer(response)
                .is_some_and(|a| !a.is_empty() && self.norm(&a) == self.norm(&problem.answer)),
        }
    }
}

#[foil_core::typetag::serde(name = "regex")]
impl Verifier for RegexVerifier {
    fn prepare(&self) -> foil_core::anyhow::Result<()> {
        self.regex()
            .map(|_| ())
            .map_err(foil_core::anyhow::Error::msg)
    }

    fn verify(&self, problem: &Problem, response: &str) -> Verdict {
        Verdict::outcome(self.is_correct(problem, response))
    }

    fn extract(&self, response: &str) -> Option<String> {
        match self.mode {
            RegexMode::Capture => self.answer(response).map(|a| self.norm(&a)),
            RegexMode::Match => None,
        }
    }
}

foil_core::register_part!(
    Verifier,
    "regex",
    RegexVerifier,
    "1/0 reward: a regex's capture group (last match) equals the answer, or (mode: match) the regex matches"
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
    fn capture_mode_compares_the_last_match() {
        // two matches: "Answer: 4" then "answer is 5" → last capture "5"
        let v = RegexVerifier::default();
        assert!(v.is_correct(&problem("5"), "Answer: 4. Wait, the answer is 5."));
        assert!(!v.is_correct(&problem("4"), "Answer: 4. Wait, the answer is 5."));
        assert!(v.is_correct(&problem("Paris"), "the answer is paris"));
        assert!(!v.is_correct(&problem("5"), "no match"));
        let named = RegexVerifier::new(r"(x)=(?P<answer>\d+)", RegexMode::Capture);
        assert_eq!(named.answer("x=12").as_deref(), Some("12"));
    }

    #[test]
    fn match_mode_and_bad_patterns() {
        let v = RegexVerifier::new(r"^\d+$", RegexMode::Match);
        assert!(v.is_correct(&problem("ignored"), "123"));
        assert!(!v.is_correct(&problem("ignored"), "12a"));
        assert_eq!(v.verify(&problem(""), "7").reward, 1.0);
        let bad = RegexVerifier::new("(", RegexMode::Match);
        assert!(bad.prepare().is_err());
        assert!(!bad.is_correct(&problem(""), "("));
        let no_group = RegexVerifier::new(r"\d+", RegexMode::Capture);
        assert!(
            no_group
                .prepare()
                .unwrap_err()
                .to_string()
                .contains("no capture group")
        );
        let v: Box<dyn Verifier> =
            serde_json::from_str(r#"{"type":"regex","pattern":"=(\\d+)"}"#).unwrap();
        assert!(v.verify(&problem("3"), "1+2=3").correct);
        assert!(serde_json::from_str::<Box<dyn Verifier>>(r#"{"type":"regex","p":1}"#).is_err());
    }
}
