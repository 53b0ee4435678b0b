//! Final-answer extraction from free-form model output.
//!
//! Candidates, by priority (the first rule that finds something wins; within a rule the
//! rightmost occurrence wins, as in math-verify's `extract_target_from_pred`):
//!
//! 1. the last closed `\boxed{…}` (nested braces balanced; boxes right before it,
//!    separated by < 10 characters or by `,`/`and`/`or`, are joined into a list; an
//!    unclosed box is not an answer);
//! 2. after the last `####` (GSM8K's marker): the rest of that line;
//! 3. after the last "answer" (case-insensitive, e.g. "The final answer is", "Answer:"):
//!    in the next 100 characters the text after the last `=` if there is one, else the
//!    first `$…$` / `\(…\)` LaTeX span or number/arithmetic expression within 50 characters;
//! 4. the rightmost LaTeX span (`$…$`, `$$…$$`, `\(…\)`, `\[…\]`, a bare `\frac{n}{m}`) or
//!    number (thousands separators, decimals, a following `%`) or plain arithmetic
//!    expression (`1/2`, `3*4+1`) in the text.
//!
//! Bounds: only the last [`MAX_RESPONSE_BYTES`] of a response are read, and an extracted
//! answer longer than [`MAX_ANSWER_BYTES`] is cut there. All scanning is linear (the
//! `regex` crate guarantees linear-time matching), nothing recurses.

use std::sync::LazyLock;

use regex::Regex;

/// Only this many trailing bytes of a response are read.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024;
/// An extracted answer is cut to this many bytes.
pub const MAX_ANSWER_BYTES: usize = 1024;

/// The last `max` bytes of `s`, starting on a char boundary.
pub fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// The first `max` bytes of `s`, ending on a char boundary.
pub fn head(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The content of the brace group opening at byte `open` (which must be `{`): the span
/// up to its matching `}`, or `None` when it never closes.
fn brace_group(s: &str, open: usize) -> Option<(usize, usize)> {
    let bytes = s.as_bytes();
    let mut depth = 0usize;
    for (i, &b) in bytes.iter().enumerate().skip(open) {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some((open + 1, i));
                }
            }
            _ => {}
        }
    }
    None
}

/// One `\boxed`/`\fbox` ending before byte `before`: (start of the command, content).
/// An unclosed box yields the rest of the text (as math-verify does) when `allow_open`.
fn boxed_before(s: &str, before: usize, allow_open: bool) -> Option<(usize, String)> {
    let start = s[..before].rfind("\\boxed")?;
    let cmd_len = "\\boxed".len();
    let after = &s[start + cmd_len..before];
    let skipped = after.len() - after.trim_start().len();
    let open = start + cmd_len + skipped;
    if open >= before {
        return None;
    }
    if s.as_bytes()[open] == b'{' {
        // unclosed: no box (math-verify's boxed pattern needs a closing brace)
        brace_group(&s[..before], open).map(|(a, z)| (start, s[a..z].trim().to_string()))
    } else if allow_open {
        // `\boxed 5`: the rest of the text (math-verify takes all of it; the `$` that
        // closes the math span is dropped by normalisation).
        Some((start, s[open..before].trim().to_string()))
    } else {
        None
    }
}

static SEPARATOR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(and|or)\b|,|;").expect("valid regex"));

/// The last box, with boxes right before it joined (`\boxed{1}, \boxed{2}` → `1,2`).
pub fn last_boxed(s: &str) -> Option<String> {
    let (mut start, first) = boxed_before(s, s.len(), true)?;
    let mut parts = vec![first];
    // At most a few boxes are joined (bounded work on hostile input).
    for _ in 0..16 {
        let Some((prev_start, content)) = boxed_before(s, start, false) else {
            break;
        };
        // the text between the end of the earlier box and the start of the later one
        let prev_end = s[..start].rfind('}').unwrap_or(start);
        let between = &s[(prev_end + 1).min(start)..start];
        let joined = between.len() < 10
            || (between.len() < 70
                && SEPARATOR.is_match(between)
                && parts.last() != Some(&content));
        if !joined {
            break;
        }
        if parts.last() != Some(&content) {
            parts.push(content);
        }
        start = prev_start;
    }
    parts.reverse();
    Some(parts.join(","))
}

// A number: thousands-separated integer (comma or space groups), or digits with a
// decimal point/comma, or a bare decimal, or an integer; then an optional percent.
const NUMBER: &str = r"(?:-?[1-9]\d{0,2}(?:[ ,]\d{3})+(?:\.\d+)?|-?\d+[.,]\d+|\.\d+|-?\d+)(?:\s*(?:\\?%|[Pp]ercent(?:age)?|[Pp]ct))?";

static EXPR: LazyLock<Regex> = LazyLock::new(|| {
    // arithmetic over digits with at least one operator, anchored by a space, `=`, or the
    // start, and followed by punctuation, a space, `$`, `)` or the end
    Regex::new(r"(?:^|[\s=])(?P<x>-?\(?-?\d[\d.\s+\-*×/^()÷]*[+\-*×/^()÷][\d.\s+\-*×/^()÷]+\)?)(?:[.,:\s)$]|$)")
        .expect("valid regex")
});
static NUM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"(?:^|[\s=])(?:\*\*)?[$€£¥₹]?(?P<x>{NUMBER})")).expect("valid regex")
});
static LATEX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?s)\$\$(?P<a>(?:[^$]|\$[^$])+?)\$\$",
        r"|\\\[(?P<b>(?:[^\\]|\\[^\]])+?)\\\]",
        r"|\$(?P<c>(?:\\\$|[^\n$])+?)\$",
        r"|\\\((?P<d>(?:[^\\\n]|\\[^)])+?)\\\)",
        r"|(?P<e>-?\\frac\{-?\d+(?:[.,]\d+)?\}\{-?\d+(?:[.,]\d+)?\})"
    ))
    .expect("valid regex")
});
static NUMBER_WHOLE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!("^(?:{NUMBER})$")).expect("valid regex"));
static GROUPED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^-?[1-9]\d{0,2}(?:[ ,]\d{3})+(?:\.\d+)?").expect("valid regex"));

/// A plain-text number as math-verify reads it: thousands separators (`,` or space)
/// dropped, a decimal comma read as a point (`2,5` = 2.5).
fn canonical_number(n: &str) -> String {
    if GROUPED.is_match(n) {
        n.chars().filter(|c| *c != ',' && *c != ' ').collect()
    } else {
        n.replacen(',', ".", 1)
    }
}

static PERCENT_AFTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(?:\\?%|[Pp]ercent(?:age)?\b|[Pp]ct\b)").expect("valid regex")
});

/// A candidate: its byte span in the text and the answer string.
#[derive(Debug, Clone)]
struct Candidate {
    start: usize,
    end: usize,
    text: String,
}

fn latex_candidates(s: &str) -> Vec<Candidate> {
    LATEX
        .captures_iter(s)
        .filter_map(|c| {
            let whole = c.get(0)?;
            let inner = ["a", "b", "c", "d", "e"]
                .iter()
                .find_map(|n| c.name(n))?
                .as_str();
            // a `%` right after the span belongs to it
            let rest = &s[whole.end()..];
            let (text, end) = match PERCENT_AFTER.find(rest) {
                Some(m) => (format!("{inner}\\%"), whole.end() + m.end()),
                None => (inner.to_string(), whole.end()),
            };
            Some(Candidate {
                start: whole.start(),
                end,
                text,
            })
        })
        .collect()
}

fn plain_candidates(s: &str) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::new();
    for (is_num, re) in [(false, &*EXPR), (true, &*NUM)] {
        // overlapping starts: restart one byte after each match's start so that a
        // separator consumed by one match can anchor the next
        let mut at = 0;
        while at <= s.len() {
            let Some(c) = re.captures_at(s, at) else {
                break;
            };
            let (Some(whole), Some(x)) = (c.get(0), c.name("x")) else {
                break;
            };
            out.push(Candidate {
                start: x.start(),
                end: x.end(),
                text: {
                    let t = x.as_str().trim().trim_end_matches('.');
                    if is_num {
                        canonical_number(t)
                    } else {
                        t.to_string()
                    }
                },
            });
            let mut next = whole.start() + 1;
            while next < s.len() && !s.is_char_boundary(next) {
                next += 1;
            }
            // skip ahead past the match when it is long, to keep the scan linear
            at = next.max(x.end().saturating_sub(1));
            if at <= whole.start() {
                at = whole.start() + 1;
            }
        }
    }
    out
}

/// The candidate that ends rightmost (ties: the one that starts leftmost, i.e. longest).
fn rightmost(cands: Vec<Candidate>) -> Option<Candidate> {
    cands
        .into_iter()
        .max_by(|a, b| a.end.cmp(&b.end).then(b.start.cmp(&a.start)))
}

/// The leftmost candidate that starts within `limit` bytes.
fn leftmost_within(cands: Vec<Candidate>, limit: usize) -> Option<Candidate> {
    cands
        .into_iter()
        .filter(|c| c.start <= limit)
        .min_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)))
}

fn after_answer_word(s: &str) -> Option<String> {
    // case-insensitive search for the last "answer" (ASCII lowercase keeps byte offsets)
    let lower = s.to_ascii_lowercase();
    let at = lower.rfind("answer")? + "answer".len();
    let rest = head(&s[at..], 100 + 64);
    // a LaTeX span starting within 50 characters
    let latex = leftmost_within(latex_candidates(rest), 50);
    // a plain number/expression: right after the last `=` within 100 characters, else
    // starting within 50 characters
    let window = head(rest, 100);
    let plain = match window.rfind('=') {
        Some(eq) => {
            let rhs = &rest[eq + 1..];
            let lead = rhs.len() - rhs.trim_start().len();
            leftmost_within(plain_candidates(&rhs[lead..]), 0).map(|mut c| {
                c.start += eq + 1 + lead;
                c.end += eq + 1 + lead;
                c
            })
        }
        None => None,
    }
    .or_else(|| leftmost_within(plain_candidates(rest), 50));
    // as in math-verify, the match that ends rightmost wins
    rightmost(latex.into_iter().chain(plain).collect()).map(|c| c.text)
}

fn after_hashes(s: &str) -> Option<String> {
    let at = s.rfind("####")? + 4;
    let line = s[at..].lines().next().unwrap_or("").trim();
    if NUMBER_WHOLE.is_match(line) {
        return Some(canonical_number(line));
    }
    (!line.is_empty()).then(|| line.to_string())
}

/// The final answer of a free-form response (see the module doc), `None` if there is none.
pub fn extract_answer(response: &str) -> Option<String> {
    let s = tail(response, MAX_RESPONSE_BYTES);
    let found = last_boxed(s)
        .or_else(|| after_hashes(s))
        .or_else(|| after_answer_word(s))
        .or_else(|| {
            let mut c = latex_candidates(s);
            c.extend(plain_candidates(s));
            rightmost(c).map(|c| c.text)
        })?;
    let found = head(found.trim(), MAX_ANSWER_BYTES).to_string();
    (!found.is_empty()).then_some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxed_with_nested_braces_wins() {
        assert_eq!(
            extract_answer(r"so $x=\frac{1}{2}$ and \boxed{\frac{\sqrt{3}}{2}} done 7").as_deref(),
            Some(r"\frac{\sqrt{3}}{2}")
        );
        // the last box wins; adjacent boxes join into a list
        assert_eq!(
            extract_answer(r"\boxed{1} text text text text text \boxed{2}").as_deref(),
            Some("2")
        );
        assert_eq!(
            extract_answer(r"\boxed{1}, \boxed{2}").as_deref(),
            Some("1,2")
        );
        // unclosed: the rest of the text
        assert_eq!(extract_answer(r"\boxed{3"), None);
        assert_eq!(extract_answer(r"$\boxed 5$").as_deref(), Some("5$"));
    }

    #[test]
    fn markers_and_last_number() {
        assert_eq!(
            extract_answer("so 3 + 4 = 7\n#### 7\n").as_deref(),
            Some("7")
        );
        assert_eq!(
            extract_answer("The answer is 1,000. Also 5").as_deref(),
            Some("1000")
        );
        assert_eq!(extract_answer("So it is 2,5").as_deref(), Some("2.5")); // decimal comma
        assert_eq!(extract_answer("#### 1 000").as_deref(), Some("1000"));
        assert_eq!(
            extract_answer("Answer: 2+3 = 5 and then 9").as_deref(),
            Some("5")
        );
        assert_eq!(
            extract_answer("The final answer is $\\frac{1}{2}$.").as_deref(),
            Some("\\frac{1}{2}")
        );
        assert_eq!(extract_answer("I think 5 then 10").as_deref(), Some("10"));
        assert_eq!(extract_answer("about 50% of them").as_deref(), Some("50%"));
        assert_eq!(extract_answer("half is 1/2.").as_deref(), Some("1/2"));
        assert_eq!(extract_answer("no numbers here"), None);
        assert_eq!(extract_answer(""), None);
    }

    #[test]
    fn bounds_cut_long_inputs() {
        // a 1 MB response: only the tail is read, so the final "42" is found
        let long = format!("{}{}", "x".repeat(1 << 20), " so 42");
        assert_eq!(extract_answer(&long).as_deref(), Some("42"));
        assert_eq!(tail("ééé", 3), "é"); // never splits a char (é is 2 bytes)
        assert_eq!(head("ééé", 3), "é");
        let boxed = format!("\\boxed{{{}}}", "1".repeat(5000));
        assert_eq!(
            extract_answer(&boxed).map(|a| a.len()),
            Some(MAX_ANSWER_BYTES)
        );
    }
}
