//! `numeric`: binary outcome reward on the final integer answer.
//!
//! The answer is the leading integer (an optional `-` then ASCII digits, read up to the
//! first non-digit) of the text after the **last** occurrence of `marker` in the response.
//! The verdict is
//!
//! ```text
//! correct = parse(after_last(response, marker)) == parse(problem.answer.trim())
//! reward  = 1 if correct else 0
//! ```
//!
//! This is the rule-based outcome reward of DeepSeek-R1 (DeepSeek-AI, 2025, "DeepSeek-R1:
//! Incentivizing Reasoning Capability in LLMs via Reinforcement Learning") and of the
//! verifiable-reward setting of Lambert et al. (2024, "Tülu 3", RLVR). With `last_number`,
//! a response without the marker is read by its last integer instead. A missing marker, an
//! empty or non-numeric answer, or an integer that does not fit `i64` is incorrect.

use foil_core::{Problem, Verdict, Verifier};
use serde::{Deserialize, Serialize};

/// Outcome verifier comparing the integer after the last `marker` with `problem.answer`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Numeric {
    /// The text that introduces the final answer.
    pub marker: String,
    /// When the marker is absent, fall back to the last integer anywhere in the response
    /// (free-form replies of pretrained chat models).
    pub last_number: bool,
}

impl Default for Numeric {
    fn default() -> Self {
        Self {
            marker: "A:".to_string(),
            last_number: false,
        }
    }
}

/// Reads the leading integer of `s`: an optional `-`, then one or more ASCII digits, up to
/// the first non-digit. `None` when there are no digits or the value does not fit `i64`.
pub fn parse_leading_int(s: &str) -> Option<i64> {
    let bytes = s.as_bytes();
    let start = usize::from(bytes.first() == Some(&b'-'));
    let digits = bytes[start..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 {
        return None;
    }
    // The prefix is ASCII, so slicing at its end is on a char boundary.
    s[..start + digits].parse().ok()
}

/// The integer after the last occurrence of `marker` in `text`, if any. An empty marker
/// never matches.
pub fn extract_answer(text: &str, marker: &str) -> Option<i64> {
    if marker.is_empty() {
        return None;
    }
    let at = text.rfind(marker)?;
    parse_leading_int(&text[at + marker.len()..])
}

/// The last integer (optional `-`, digits; thousands separators are not read) in `text`.
pub fn last_integer(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let end = bytes.iter().rposition(|b| b.is_ascii_digit())? + 1;
    let mut start = end;
    while start > 0 && bytes[start - 1].is_ascii_digit() {
        start -= 1;
    }
    if start > 0 && bytes[start - 1] == b'-' {
        start -= 1;
    }
    text[start..end].parse().ok()
}

impl Numeric {
    /// The answer this verifier reads from `response`.
    pub fn answer(&self, response: &str) -> Option<i64> {
        extract_answer(response, &self.marker)
            .or_else(|| self.last_number.then(|| last_integer(response)).flatten())
    }

    /// Whether `response` states `problem.answer`.
    pub fn is_correct(&self, problem: &Problem, response: &str) -> bool {
        let reference: Option<i64> = problem.answer.trim().parse().ok();
        match (self.answer(response), reference) {
            (Some(got), Some(want)) => got == want,
            _ => false,
        }
    }
}

#[foil_core::typetag::serde(name = "numeric")]
impl Verifier for Numeric {
    fn verify(&self, problem: &Problem, response: &str) -> Verdict {
        Verdict::outcome(self.is_correct(problem, response))
    }

    fn extract(&self, response: &str) -> Option<String> {
        self.answer(response).map(|a| a.to_string())
    }
}

foil_core::register_part!(
    Verifier,
    "numeric",
    Numeric,
    "1/0 reward: integer after the last marker equals the answer (rule-based outcome reward, DeepSeek-R1 2025)"
);

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(answer: &str) -> Problem {
        Problem {
            id: "t".into(),
            prompt: "Q:17+5-3=".into(),
            solution: "17+5=22|22-3=19|A:19".into(),
            answer: answer.into(),
            difficulty: 3,
        }
    }

    #[test]
    fn correct_answer_gets_reward_one() {
        // 17+5=22, 22-3=19: the answer after "A:" is 19 = problem.answer.
        let v = Numeric::default().verify(&problem("19"), "17+5=22|22-3=19|A:19");
        assert_eq!(v, Verdict::outcome(true));
        assert_eq!(v.reward, 1.0);
    }

    #[test]
    fn extract_reads_the_answer_for_majority_voting() {
        // "…|A:019" → leading integer 19, printed canonically; no marker → None
        let n = Numeric::default();
        assert_eq!(n.extract("17+5=22|A:019"), Some("19".into()));
        assert_eq!(n.extract("17+5=22|"), None);
    }

    #[test]
    fn last_number_is_a_fallback_for_free_form_replies() {
        // no "A:" in "12 + 30 = 42, so 42 apples." → last integer 42; with the marker the
        // marker wins ("A:7 … 9" → 7); without the option a missing marker is incorrect
        let n = Numeric {
            marker: "A:".into(),
            last_number: true,
        };
        assert!(n.is_correct(&problem("42"), "12 + 30 = 42, so 42 apples."));
        assert!(n.is_correct(&problem("7"), "A:7 and then 9"));
        assert!(n.is_correct(&problem("-3"), "it drops to -3."));
        assert!(!n.is_correct(&problem("42"), "no digits here"));
        assert!(!Numeric::default().is_correct(&problem("42"), "12 + 30 = 42"));
        assert_eq!(last_integer("x 10 y 205."), Some(205));
    }

    #[test]
    fn wrong_answer_gets_reward_zero() {
        // 18 != 19.
        let v = Numeric::default().verify(&problem("19"), "17+5=22|22-3=19|A:18");
        assert!(!v.correct);
        assert_eq!(v.reward, 0.0);
    }

    #[test]
    fn uses_last_marker_and_stops_at_first_non_digit() {
        // Last "A:" is followed by "19x7": leading integer 19. The earlier "A:5" is ignored.
        let n = Numeric::default();
        assert!(n.is_correct(&problem("19"), "A:5|A:19x7"));
        assert!(!n.is_correct(&problem("5"), "A:5|A:19x7"));
        // Reference is trimmed; leading zeros parse to the same integer (019 = 19).
        assert!(n.is_correct(&problem(" 19\n"), "A:019"));
    }

    #[test]
    fn negative_answers_parse() {
        // "-7" reads as -7; "-" alone has no digits.
        assert_eq!(parse_leading_int("-7|"), Some(-7));
        assert_eq!(parse_leading_int("-"), None);
        assert_eq!(parse_leading_int("--7"), None);
        assert!(Numeric::default().is_correct(&problem("-7"), "A:-7"));
    }

    #[test]
    fn garbage_is_incorrect_without_panicking() {
        let n = Numeric::default();
        let p = problem("19");
        let long = "9".repeat(10_000);
        let cases = [
            "",
            "19",                 // no marker
            "A:",                 // nothing after marker
            "A: 19",              // space before the digits
            "A:x19",              // non-digit first
            "A:é19",              // unicode after marker
            "ééA",                // partial marker at the end
            &format!("A:{long}"), // overflows i64
        ];
        for c in cases {
            assert!(!n.is_correct(&p, c), "{c:?} judged correct");
        }
        // An empty marker never matches, and a non-integer reference is never matched.
        let empty = Numeric {
            marker: String::new(),
            last_number: false,
        };
        assert!(!empty.is_correct(&p, "19"));
        assert!(!n.is_correct(&problem("nineteen"), "A:19"));
        // Custom marker.
        let m = Numeric {
            marker: "####".into(),
            last_number: false,
        };
        assert!(m.is_correct(&p, "so ####19"));
    }

    #[test]
    fn deserializes_by_name_and_rejects_unknown_fields() {
        let v: Box<dyn Verifier> =
            serde_json::from_str(r#"{"type":"numeric","marker":"=>"}"#).unwrap();
        assert!(v.verify(&problem("19"), "=>19").correct);
        let d: Box<dyn Verifier> = serde_json::from_str(r#"{"type":"numeric"}"#).unwrap();
        assert!(d.verify(&problem("19"), "A:19").correct);
        assert!(
            serde_json::from_str::<Box<dyn Verifier>>(r#"{"type":"numeric","mark":"x"}"#).is_err()
        );
        assert!(foil_core::registry::names_of("Verifier").contains(&"numeric"));
    }
}
