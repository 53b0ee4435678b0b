//! Equivalence of two normalised answers.
//!
//! An answer is read as one of
//!
//! - a **list** `a, b, c` (top-level commas) or a **set** `\{a, b\}`: compared as multisets
//!   (same length, every element matched once, in any order);
//! - a **bracketed tuple/interval** `(a, b)`, `[a, b)`, `(a, b, c)`: same brackets and the
//!   elements equal in order; an open pair `(a, b)` also equals the list `a, b`;
//! - an **equation** `lhs = … = rhs`: against a plain expression the last right-hand side
//!   is compared (`x = 3` ~ `3`); two assignments `x = a`, `x = b` need the same variable
//!   and `a ~ b`; other equations compare `lhs − rhs` up to sign;
//! - an **expression** ([`crate::expr`]);
//! - otherwise **text**: the normalised strings must be equal.
//!
//! Two expressions are equal when
//!
//! ```text
//! no variables:  |g − p| ≤ 1e-9 · max(1, |g|, |p|)                 (exact literals)
//!                round(g, 6) = round(p, 6)                        (either has a decimal
//!                                                                   literal: math-verify's
//!                                                                   float_rounding = 6)
//!                a top-level percentage x% also matches x itself when both are integers
//!                (math-verify: 9% ~ 9)
//! variables:     at 6 points, every variable drawn from [0.5, 2.5] (deterministic),
//!                |g − p| ≤ 1e-8 · max(1, |g|, |p|) at every point where both are finite,
//!                never finite on one side only, and at least one finite point
//! ```

use crate::expr::{Expr, parse_expr};

/// The structure of an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Expr(Expr),
    List(Vec<Answer>),
    Set(Vec<Answer>),
    Bracketed {
        open: char,
        close: char,
        items: Vec<Answer>,
    },
    /// `lhs = … = rhs` (all the sides, at least two).
    Equation(Vec<Expr>),
    Text(String),
}

/// Most list/set/tuple elements read.
pub const MAX_ITEMS: usize = 64;

/// Splits `s` at top-level (bracket depth 0) occurrences of `sep`.
fn split_top(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i64;
    let mut start = 0;
    for (i, ch) in s.char_indices() {
        match ch {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            c if c == sep && depth == 0 => {
                // `\{`/`\}` brackets count through '{' '}' above; `\,` was normalised away
                out.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// Whether the bracket opening at byte 0 closes at the last byte.
fn wraps_whole(s: &str) -> bool {
    let mut depth = 0i64;
    let n = s.len();
    for (i, ch) in s.char_indices() {
        match ch {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth -= 1;
                if depth == 0 && i + ch.len_utf8() != n {
                    return false;
                }
            }
            _ => {}
        }
    }
    depth == 0
}

fn items(parts: Vec<&str>) -> Option<Vec<Answer>> {
    if parts.len() > MAX_ITEMS || parts.iter().any(|p| p.trim().is_empty()) {
        return None;
    }
    Some(parts.into_iter().map(parse_answer).collect())
}

/// Reads the structure of a normalised answer (never fails: unparsable text is `Text`).
pub fn parse_answer(s: &str) -> Answer {
    let t = s.trim();
    // set braces
    if let Some(inner) = t.strip_prefix("\\{").and_then(|r| r.strip_suffix("\\}"))
        && let Some(v) = items(split_top(inner, ','))
    {
        return Answer::Set(v);
    }
    let first = t.chars().next();
    let last = t.chars().last();
    if let (Some(open @ ('(' | '[')), Some(close @ (')' | ']'))) = (first, last)
        && wraps_whole(t)
    {
        let parts = split_top(&t[1..t.len() - 1], ',');
        if parts.len() >= 2
            && let Some(v) = items(parts)
        {
            return Answer::Bracketed {
                open,
                close,
                items: v,
            };
        }
    }
    let parts = split_top(t, ',');
    if parts.len() >= 2 {
        if let Some(v) = items(parts) {
            return Answer::List(v);
        }
        return Answer::Text(t.to_string());
    }
    let sides = split_top(t, '=');
    if sides.len() >= 2 && sides.len() <= MAX_ITEMS {
        let parsed: Result<Vec<Expr>, String> = sides.iter().map(|x| parse_expr(x)).collect();
        return match parsed {
            Ok(v) => Answer::Equation(v),
            Err(_) => Answer::Text(t.to_string()),
        };
    }
    match parse_expr(t) {
        Ok(e) => Answer::Expr(e),
        Err(_) => Answer::Text(t.to_string()),
    }
}

/// Deterministic pseudo-random value in [0.5, 2.5) for variable `name` at point `k`.
fn point(name: &str, k: u64) -> f64 {
    // FNV-1a of the name, mixed with k (splitmix64)
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = h ^ k.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    0.5 + 2.0 * ((z >> 11) as f64 / (1u64 << 53) as f64)
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    if a.is_infinite() || b.is_infinite() {
        return a == b;
    }
    (a - b).abs() <= rel * 1f64.max(a.abs()).max(b.abs())
}

fn round6_eq(a: f64, b: f64) -> bool {
    if a.is_infinite() || b.is_infinite() {
        return a == b;
    }
    if a.abs().max(b.abs()) > 1e9 {
        return close(a, b, 1e-12);
    }
    (a * 1e6).round() == (b * 1e6).round()
}

fn is_int_literal(e: &Expr) -> bool {
    match e {
        Expr::Num { value, float } => !float && value.fract() == 0.0,
        Expr::Neg(a) => is_int_literal(a),
        _ => false,
    }
}

/// Whether two expressions are equal (see the module doc).
pub fn expr_eq(g: &Expr, p: &Expr) -> bool {
    // 9% ~ 9 for integer percentages
    if let Expr::Percent(x) = g
        && is_int_literal(x)
        && is_int_literal(p)
        && expr_eq(x, p)
    {
        return true;
    }
    if let Expr::Percent(x) = p
        && is_int_literal(x)
        && is_int_literal(g)
        && expr_eq(g, x)
    {
        return true;
    }
    let mut vars = g.vars();
    vars.extend(p.vars());
    if vars.is_empty() {
        let (a, b) = (g.eval(&|_| f64::NAN), p.eval(&|_| f64::NAN));
        if a.is_nan() || b.is_nan() {
            return false;
        }
        return if g.has_float() || p.has_float() {
            round6_eq(a, b)
        } else {
            close(a, b, 1e-9)
        };
    }
    let mut finite = 0;
    for k in 0..6u64 {
        let env = |v: &str| point(v, k);
        let (a, b) = (g.eval(&env), p.eval(&env));
        match (a.is_finite(), b.is_finite()) {
            (true, true) => {
                if !close(a, b, 1e-8) {
                    return false;
                }
                finite += 1;
            }
            (false, false) => {}
            _ => return false,
        }
    }
    finite > 0
}

fn unordered_eq(g: &[Answer], p: &[Answer]) -> bool {
    if g.len() != p.len() {
        return false;
    }
    let mut used = vec![false; p.len()];
    'outer: for a in g {
        for (j, b) in p.iter().enumerate() {
            if !used[j] && answers_eq(a, b) {
                used[j] = true;
                continue 'outer;
            }
        }
        return false;
    }
    true
}

fn ordered_eq(g: &[Answer], p: &[Answer]) -> bool {
    g.len() == p.len() && g.iter().zip(p).all(|(a, b)| answers_eq(a, b))
}

fn is_assignment(sides: &[Expr]) -> Option<&str> {
    match sides.first() {
        Some(Expr::Var(v)) if sides.len() >= 2 => Some(v),
        _ => None,
    }
}

fn diff(sides: &[Expr]) -> Option<Expr> {
    let (l, r) = (sides.first()?, sides.last()?);
    Some(Expr::Sum(vec![l.clone(), Expr::Neg(Box::new(r.clone()))]))
}

/// Whether `pred` states the same answer as `gold` (see the module doc).
pub fn answers_eq(gold: &Answer, pred: &Answer) -> bool {
    use Answer::*;
    match (gold, pred) {
        (Expr(g), Expr(p)) => expr_eq(g, p),
        (Equation(g), Expr(p)) => {
            is_assignment(g).is_some() && g.last().is_some_and(|r| expr_eq(r, p))
        }
        (Expr(g), Equation(p)) => p.last().is_some_and(|r| expr_eq(g, r)),
        (Equation(g), Equation(p)) => match (is_assignment(g), is_assignment(p)) {
            (Some(a), Some(b)) => {
                a == b && matches!((g.last(), p.last()), (Some(x), Some(y)) if expr_eq(x, y))
            }
            _ => match (diff(g), diff(p)) {
                (Some(a), Some(b)) => expr_eq(&a, &b) || expr_eq(&a, &self::Expr::Neg(Box::new(b))),
                _ => false,
            },
        },
        (List(g) | Set(g), List(p) | Set(p)) => unordered_eq(g, p),
        (
            Bracketed {
                open: go,
                close: gc,
                items: g,
            },
            Bracketed {
                open: po,
                close: pc,
                items: p,
            },
        ) => go == po && gc == pc && ordered_eq(g, p),
        (
            Bracketed {
                open: '(',
                close: ')',
                items: g,
            },
            List(p),
        )
        | (
            List(g),
            Bracketed {
                open: '(',
                close: ')',
                items: p,
            },
        ) => ordered_eq(g, p),
        // a single answer equals a one-element set
        (Set(g), p @ (Expr(_) | Equation(_))) if g.len() == 1 => answers_eq(&g[0], p),
        (g @ (Expr(_) | Equation(_)), Set(p)) if p.len() == 1 => answers_eq(g, &p[0]),
        (Text(g), Text(p)) => !g.is_empty() && g == p,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(g: &str, p: &str) -> bool {
        answers_eq(&parse_answer(g), &parse_answer(p))
    }

    #[test]
    fn numbers_fractions_decimals() {
        assert!(eq(r"\frac{1}{2}", "0.5")); // 0.5 = 0.5
        assert!(eq(r"\frac{1}{3}", "0.333333")); // round(1/3, 6) = 0.333333
        assert!(!eq(r"\frac{1}{3}", "0.33")); // 0.333333 != 0.33
        assert!(eq("2.50", "2.5"));
        assert!(eq("1500", "1.5e3"));
        assert!(eq(r"\pi", "3.141593")); // round(π, 6) = 3.141593
        assert!(!eq(r"\pi", "3.14159")); // 3.141593 != 3.14159
        assert!(eq("1/3", "0.3333333333")); // both round to 0.333333
    }

    #[test]
    fn symbolic_and_structures() {
        assert!(eq("x^2+2x+1", "(x+1)^2"));
        assert!(!eq("x^2+1", "(x+1)^2"));
        assert!(eq("a+b", "b+a"));
        assert!(eq("x=3", "3"));
        assert!(eq("3", "y=3"));
        assert!(!eq("x=3", "y=3"));
        assert!(eq("1,2", "2,1"));
        assert!(eq(r"\{1,2\}", r"\{2,1\}"));
        assert!(!eq("(1,2)", "(2,1)"));
        assert!(eq("[0,1)", "[0,1)"));
        assert!(!eq("[0,1)", "[0,1]"));
        assert!(eq(r"(-\infty,3]", r"(-\infty, 3]"));
        assert!(eq("50%", "0.5"));
        assert!(eq("50%", "50"));
        assert!(!eq("5%", "5.0"));
        assert!(eq("yes", "yes"));
    }
}
