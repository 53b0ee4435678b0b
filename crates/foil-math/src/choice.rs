//! Multiple-choice letters: the option letter a free-form response picks, and the letter a
//! reference names, following math-verify's letter patterns [code] (rightmost match of the
//! most specific pattern wins: "final answer is B", "Answer: (B)", a leading `B.`, a lone
//! `B`). Reads only the last [`MAX_RESPONSE_BYTES`] of a response; the patterns are
//! `regex` automata, linear in the input.

use std::sync::LazyLock;

use regex::Regex;

use crate::extract::{MAX_RESPONSE_BYTES, tail};

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
