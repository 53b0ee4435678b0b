//! `token_f1`: graded similarity of a generated text to the reference answer — bag-of-words
//! F1 as reward, exact match (of the word sequence) as `correct`.
//!
//! The text is read as [`crate::Exact`] reads it (after the last `marker`, cut at the
//! first `stop` string; an empty marker = the whole response), lowercased unless
//! `case_sensitive`, and split on Unicode whitespace into words. With `c(w)` the count of
//! word `w` in the response and `r(w)` in `problem.answer`:
//!
//! ```text
//! overlap   = Σ_w min(c(w), r(w))
//! precision = overlap / Σ_w c(w)        recall = overlap / Σ_w r(w)
//! F1        = 2·P·R / (P + R)           (0 when overlap = 0 or either side is empty)
//! reward    = F1 ∈ [0, 1]
//! correct   = (response words == answer words, in order)    (exact match)
//! ```
//!
//! This is the token-overlap F1 of SQuAD (Rajpurkar et al. 2016, arXiv 1606.05250; its
//! official script's `f1_score`, without the English article/punctuation stripping) — a
//! stand-in for the automatic overlap metrics (BLEU/ROUGE-L/chrF-style) used to score
//! generated counter narratives in CONAN-EUS (arXiv 2403.09159, `methods.md` §7) [recon].
//! The eval stage reports its mean as `mean_reward` and exact match as `accuracy`/`pass@k`.

use std::collections::HashMap;

use foil_core::{Problem, Verdict, Verifier};
use serde::{Deserialize, Serialize};

/// Graded verifier: word-multiset F1 against `problem.answer`, exact match as correctness.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TokenF1 {
    /// The text that introduces the answer; empty (default): the whole response.
    pub marker: String,
    /// The answer ends at the first of these (empty strings ignored). Default `["\n"]`.
    pub stop: Vec<String>,
    /// Compare case-sensitively (false, default: both sides lowercased).
    pub case_sensitive: bool,
}

impl Default for TokenF1 {
    fn default() -> Self {
        Self {
            marker: String::new(),
            stop: vec!["\n".to_string()],
            case_sensitive: false,
        }
    }
}

/// Word-multiset F1 of `pred` against `gold` (both already split into words).
pub fn f1(pred: &[String], gold: &[String]) -> f64 {
    if pred.is_empty() || gold.is_empty() {
        return 0.0;
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for w in gold {
        *counts.entry(w.as_str()).or_default() += 1;
    }
    let mut overlap = 0usize;
    for w in pred {
        if let Some(c) = counts.get_mut(w.as_str())
            && *c > 0
        {
            *c -= 1;
            overlap += 1;
        }
    }
    if overlap == 0 {
        return 0.0;
    }
    let p = overlap as f64 / pred.len() as f64;
    let r = overlap as f64 / gold.len() as f64;
    2.0 * p * r / (p + r)
}

impl TokenF1 {
    fn words(&self, s: &str) -> Vec<String> {
        s.split_whitespace()
            .map(|w| {
                if self.case_sensitive {
                    w.to_string()
                } else {
                    w.to_lowercase()
                }
            })
            .collect()
    }

    /// The response's words (empty when the marker is absent).
    pub fn response_words(&self, response: &str) -> Vec<String> {
        let reader = crate::Exact {
            marker: self.marker.clone(),
            stop: self.stop.clone(),
            trim: false,
            case_sensitive: true,
        };
        reader
            .raw_answer(response)
            .map(|a| self.words(a))
            .unwrap_or_default()
    }

    /// (F1, exact match) of `response` against `problem.answer`.
    pub fn score(&self, problem: &Problem, response: &str) -> (f64, bool) {
        let pred = self.response_words(response);
        let gold = self.words(&problem.answer);
        let exact = !gold.is_empty() && pred == gold;
        (f1(&pred, &gold), exact)
    }
}

#[foil_core::typetag::serde(name = "token_f1")]
impl Verifier for TokenF1 {
    fn verify(&self, problem: &Problem, response: &str) -> Verdict {
        let (f, exact) = self.score(problem, response);
        Verdict {
            reward: f as f32,
            correct: exact,
            step_rewards: Vec::new(),
        }
    }

    fn extract(&self, response: &str) -> Option<String> {
        let w = self.response_words(response);
        (!w.is_empty()).then(|| w.join(" "))
    }
}

foil_core::register_part!(
    Verifier,
    "token_f1",
    TokenF1,
    "graded reward: bag-of-words F1 of the response vs the answer (SQuAD F1); correct = exact word match (text-generation similarity, e.g. counter narratives)"
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
    fn f1_by_hand() {
        let v = TokenF1::default();
        let gold = problem("no bako pum wena teach");
        // identical: P = R = 1 → F1 1, exact
        assert_eq!(v.score(&gold, "no bako pum wena teach"), (1.0, true));
        // one word dropped: overlap 4, P = 4/4, R = 4/5 → F1 = 2·1·0.8/1.8 = 0.8889
        let (f, e) = v.score(&gold, "no bako wena teach");
        assert!((f - 16.0 / 18.0).abs() < 1e-12 && !e, "{f}");
        // one word substituted: overlap 4, P = R = 4/5 → F1 0.8
        let (f, e) = v.score(&gold, "no bako pol wena teach");
        assert!((f - 0.8).abs() < 1e-12 && !e, "{f}");
        // same words, other order: F1 1 but not exact
        assert_eq!(v.score(&gold, "teach wena pum bako no"), (1.0, false));
        // nothing shared → 0
        assert_eq!(v.score(&gold, "ve pire kif"), (0.0, false));
    }

    #[test]
    fn repeated_words_are_clipped() {
        // pred "a a a b" vs gold "a b c": overlap min(3,1) + min(1,1) = 2,
        // P = 2/4, R = 2/3 → F1 = 2·(1/2)(2/3)/(1/2 + 2/3) = (2/3)/(7/6) = 4/7
        let v = TokenF1::default();
        let (f, _) = v.score(&problem("a b c"), "a a a b");
        assert!((f - 4.0 / 7.0).abs() < 1e-12, "{f}");
    }

    #[test]
    fn marker_stop_case_and_empty() {
        let v = TokenF1::default();
        // stop at newline: "x y\nz" → words [x, y]; case folded by default
        assert_eq!(v.score(&problem("X Y"), "x  y\nz"), (1.0, true));
        let cs = TokenF1 {
            case_sensitive: true,
            ..TokenF1::default()
        };
        assert_eq!(cs.score(&problem("X Y"), "x y"), (0.0, false));
        let m = TokenF1 {
            marker: "CN:".into(),
            ..TokenF1::default()
        };
        assert_eq!(m.score(&problem("a b"), "HS: c CN: a b"), (1.0, true));
        assert_eq!(m.score(&problem("a b"), "a b"), (0.0, false)); // no marker
        // empty response or empty reference: 0 and never exact
        assert_eq!(v.score(&problem("a"), ""), (0.0, false));
        assert_eq!(v.score(&problem(""), ""), (0.0, false));
        assert_eq!(v.extract("  "), None);
        assert_eq!(v.extract(" A  b "), Some("a b".into()));
        let verdict = v.verify(&problem("a b c d"), "a b");
        // P = 1, R = 1/2 → F1 = 2/3
        assert!((verdict.reward - 2.0 / 3.0).abs() < 1e-6 && !verdict.correct);
    }

    #[test]
    fn deserializes_by_name_and_rejects_unknown_fields() {
        let v: Box<dyn Verifier> =
            serde_json::from_str(r#"{"type":"token_f1","case_sensitive":true}"#).unwrap();
        assert_eq!(v.verify(&problem("a"), "a").reward, 1.0);
        assert!(
            serde_json::from_str::<Box<dyn Verifier>>(r#"{"type":"token_f1","mrk":1}"#).is_err()
        );
        assert!(foil_core::registry::names_of("Verifier").contains(&"token_f1"));
    }
}
