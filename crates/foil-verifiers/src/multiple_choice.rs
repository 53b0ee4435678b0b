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

use std::sync::LazyLock;

use foil_core::{Problem, Verdict, Verifier};
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::math::extract::{MAX_RESPONSE_BYTES, tail};

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

struct Patterns {
    letters: String,
    paren: bool,
    list: Vec<Regex>,
}

static CACHE: LazyLock<std::sync::Mutex<Vec<std::sync::Arc<Patterns>>>> =
    LazyLock::new(|| std::sync::Mutex::new(Vec::new()));

fn patterns(letters: &str, paren: bool) -> Option<std::sync::Arc<Patterns>> {
    let mut cache = CACHE.lock().ok()?;
    if let Some(p) = cache
        .iter()
        .find(|p| p.letters == letters && p.paren == paren)
    {
        return Some(p.clone());
    }
    let keys: Vec<String> = letters
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| regex::escape(&c.to_string()))
        .collect();
    if keys.is_empty() {
        return None;
    }
    let k = format!("(?P<k>{})", keys.join("|"));
    let (pre, post) = if paren {
        (r"(?:^|\s|\()", r"\)?")
    } else {
        ("(?:^|\\s)", "")
    };
    let suffix = r"(?:\*\*)?(?:\.|,|:|\s|$)";
    let answer_re = format!(r"{pre}(?:\*\*)?{k}{post}{suffix}");
    let start_re = format!(r"^(?:\*\*)?{k}{suffix}");
    let list = [
        format!(r"(?i:final answer is):?\s*{k}\.?\s?I hope"),
        format!(r"(?i:final answer.{{0,100}}?)\s+is:?\s*{k}"),
        format!(r"(?i:answer):.{{0,50}}?{answer_re}"),
        format!(r"(?i:answer).{{0,50}}?{answer_re}"),
        start_re,
        answer_re,
    ]
    .iter()
    .map(|p| Regex::new(p))
    .collect::<Result<Vec<_>, _>>()
    .ok()?;
    let p = std::sync::Arc::new(Patterns {
        letters: letters.to_string(),
        paren,
        list,
    });
    if cache.len() > 16 {
        cache.clear();
    }
    cache.push(p.clone());
    Some(p)
}

/// The option letter in `response` (upper-cased), if any (see the module doc).
pub fn extract_letter(response: &str, letters: &str, parenthesised: bool) -> Option<String> {
    let s = tail(response, MAX_RESPONSE_BYTES);
    let pats = patterns(letters, parenthesised)?;
    for re in &pats.list {
        // rightmost end wins (ties: leftmost start), as in math-verify
        let best = re
            .captures_iter(s)
            .filter_map(|c| {
                Some((
                    c.get(0)?.end(),
                    c.get(0)?.start(),
                    c.name("k")?.as_str().to_string(),
                ))
            })
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        if let Some((_, _, k)) = best {
            return Some(k.to_uppercase());
        }
    }
    None
}

/// The reference letter: `B`, `(B)`, `b`, `B.` → `B`; `None` unless it is one letter.
pub fn reference_letter(answer: &str) -> Option<String> {
    let t = answer
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(['.', ')'])
        .trim();
    let mut chars = t.chars();
    let c = chars.next()?;
    (chars.next().is_none() && c.is_alphabetic()).then(|| c.to_uppercase().to_string())
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
