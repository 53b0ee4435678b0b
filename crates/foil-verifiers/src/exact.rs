//! `exact`: binary outcome reward on the final answer compared as a string.
//!
//! The answer is the text after the **last** occurrence of `marker` in the response, cut at
//! the first of the `stop` strings (by default a newline); with an empty `marker` it is the
//! whole response (cut at `stop` the same way). No numeric normalisation is done, so `07`
//! and `7` differ. The verdict is
//!
//! ```text
//! norm(s)  = lowercase?(trim?(s))       (trim: Unicode whitespace at both ends;
//!                                         lowercase when case_sensitive is false)
//! correct  = norm(answer(response)) == norm(problem.answer)
//! reward   = 1 if correct else 0
//! ```
//!
//! This is the exact-match outcome reward of rule-based RLVR (Lambert et al. 2024, "Tülu 3",
//! arXiv 2411.15124: "exact match" for constrained/precise answers). A response without the
//! marker is incorrect; an empty answer is never correct (even against an empty reference).

use foil_core::{Problem, Verdict, Verifier};
use serde::{Deserialize, Serialize};

/// Outcome verifier comparing the string after the last `marker` with `problem.answer`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Exact {
    /// The text that introduces the final answer; empty: the whole response is the answer.
    pub marker: String,
    /// The answer ends at the first occurrence of any of these after the marker (empty
    /// strings are ignored). Default: `["\n"]`.
    pub stop: Vec<String>,
    /// Trim whitespace of both answer and reference before comparing.
    pub trim: bool,
    /// Compare case-sensitively (false: both sides are lowercased first).
    pub case_sensitive: bool,
}

impl Default for Exact {
    fn default() -> Self {
        Self {
            marker: "A:".to_string(),
            stop: vec!["\n".to_string()],
            trim: true,
            case_sensitive: true,
        }
    }
}

impl Exact {
    /// The raw answer text (before normalisation) this verifier reads from `response`.
    pub fn raw_answer<'a>(&self, response: &'a str) -> Option<&'a str> {
        let rest = if self.marker.is_empty() {
            response
        } else {
            let at = response.rfind(&self.marker)?;
            &response[at + self.marker.len()..]
        };
        let end = self
            .stop
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| rest.find(s.as_str()))
            .min()
            .unwrap_or(rest.len());
        Some(&rest[..end])
    }

    fn norm(&self, s: &str) -> String {
        let s = if self.trim { s.trim() } else { s };
        if self.case_sensitive {
            s.to_string()
        } else {
            s.to_lowercase()
        }
    }

    /// The normalised answer, `None` when the marker is absent or the answer is empty.
    pub fn answer(&self, response: &str) -> Option<String> {
        let a = self.norm(self.raw_answer(response)?);
        (!a.is_empty()).then_some(a)
    }

    /// Whether `response` states exactly `problem.answer` (after trim/case options).
    pub fn is_correct(&self, problem: &Problem, response: &str) -> bool {
        self.answer(response)
            .is_some_and(|a| a == self.norm(&problem.answer))
    }
}

#[foil_core::typetag::serde(name = "exact")]
impl Verifier for Exact {
    fn verify(&self, problem: &Problem, response: &str) -> Verdict {
        Verdict::outcome(self.is_correct(problem, response))
    }

    fn extract(&self, response: &str) -> Option<String> {
        self.answer(response)
    }
}

foil_core::register_part!(
    Verifier,
    "exact",
    Exact,
    "1/0 reward: the string after the last marker (to a stop string) equals the answer exactly; options trim, case_sensitive (exact-match RLVR, Tülu 3 2024)"
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
    fn string_after_last_marker_must_match_exactly() {
        // "A:5|A:19" → last marker → "19" == "19"; "A:019" → "019" != "19" (no numeric
        // normalisation); "07" vs "7" differ
        let e = Exact::default();
        assert!(e.is_correct(&problem("19"), "A:5|A:19"));
        assert!(!e.is_correct(&problem("19"), "A:019"));
        assert!(!e.is_correct(&problem("7"), "A:07"));
        assert!(!e.is_correct(&problem("19"), "19")); // no marker
        assert_eq!(e.verify(&problem("19"), "A:19").reward, 1.0);
        assert_eq!(e.verify(&problem("19"), "A:18").reward, 0.0);
    }

    #[test]
    fn trim_and_case_options() {
        // default trims " Paris \n" → "Paris" (stop at "\n" first); case-sensitive by default
        let e = Exact::default();
        assert!(e.is_correct(&problem("Paris"), "A: Paris \nmore text"));
        assert!(!e.is_correct(&problem("paris"), "A: Paris"));
        let ci = Exact {
            case_sensitive: false,
            ..Exact::default()
        };
        assert!(ci.is_correct(&problem("paris"), "A: PARIS"));
        let raw = Exact {
            trim: false,
            ..Exact::default()
        };
        assert!(!raw.is_correct(&problem("Paris"), "A: Paris"));
        assert!(raw.is_correct(&problem("Paris"), "A:Paris"));
    }

    #[test]
    fn stop_strings_and_empty_marker() {
        // stop ["|", "."]: "A:42|next" → "42", "A:42. done" → "42"; empty marker → the
        // whole response (to the first newline)
        let e = Exact {
            stop: vec!["|".into(), ".".into(), String::new()],
            ..Exact::default()
        };
        assert!(e.is_correct(&problem("42"), "A:42|next"));
        assert!(e.is_correct(&problem("42"), "A:42. done"));
        let whole = Exact {
            marker: String::new(),
            ..Exact::default()
        };
        assert!(whole.is_correct(&problem("yes"), "yes\nbecause"));
        assert!(!whole.is_correct(&problem("yes"), "yes because"));
    }

    #[test]
    fn empty_answers_and_garbage_are_incorrect() {
        let e = Exact::default();
        assert!(!e.is_correct(&problem(""), "A:"));
        assert!(!e.is_correct(&problem(""), "A:   "));
        assert_eq!(e.extract("A:  "), None);
        assert_eq!(e.extract("A: x1 \n"), Some("x1".into()));
        for c in ["", "é", "A", "ééA:é", &"A:".repeat(10_000)] {
            assert!(!e.is_correct(&problem("19"), c), "{c:?}");
        }
        assert!(e.is_correct(&problem("é"), "ééA:é"));
    }

    #[test]
    fn deserializes_by_name_and_rejects_unknown_fields() {
        let v: Box<dyn Verifier> =
            serde_json::from_str(r#"{"type":"exact","marker":"=>","case_sensitive":false}"#)
                .unwrap();
        assert!(v.verify(&problem("Yes"), "so => yes").correct);
        assert!(serde_json::from_str::<Box<dyn Verifier>>(r#"{"type":"exact","trm":1}"#).is_err());
        assert!(foil_core::registry::names_of("Verifier").contains(&"exact"));
    }
}
