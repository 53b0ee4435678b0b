//! # foil-math
//!
//! Answer extraction, normalisation and equivalence for free-form mathematical output,
//! modelled on Hugging Face's `math-verify` (PyPI, 0.9): the logic behind foil's `math`
//! and `multiple_choice` verifiers (`foil-verifiers`), kept free of burn and foil-core so
//! that it builds in seconds and can be fuzzed (`fuzz/`, `docs/math-verifier.md`).
//!
//! ```text
//! pred    = normalize(extract(response))          (extract: boxed > "####" > "answer"
//!                                                   > rightmost LaTeX span / number)
//! gold    = normalize(last_boxed(answer) or answer)
//! correct = equivalent(parse(gold), parse(pred))
//! ```
//!
//! Bounds: the last 16 KiB of a response are read, an answer is cut at 1 KiB, parsing
//! stops past 512 tokens or nesting depth 48, and no step recurses without a depth limit,
//! so every call returns in bounded time and never panics.

pub mod choice;
pub mod equiv;
pub mod expr;
pub mod extract;
pub mod normalize;

pub use equiv::{Answer, answers_eq, parse_answer};
pub use extract::{extract_answer, last_boxed};
pub use normalize::normalize;

/// The normalised reference answer (a `\boxed{}` in it is unwrapped).
pub fn gold_answer(answer: &str) -> String {
    let a = extract::head(answer, extract::MAX_ANSWER_BYTES);
    let inner = last_boxed(a).unwrap_or_else(|| a.to_string());
    normalize(&inner)
}

/// Whether `response` states the same answer as the reference `gold` (module doc).
pub fn is_equivalent(gold: &str, response: &str) -> bool {
    let Some(pred) = extract_answer(response) else {
        return false;
    };
    let (g, p) = (gold_answer(gold), normalize(&pred));
    if g.is_empty() || p.is_empty() {
        return false;
    }
    answers_eq(&parse_answer(&g), &parse_answer(&p))
}
