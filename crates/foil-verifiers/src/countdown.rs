//! `countdown`: checks a Countdown answer (reach a target from given numbers with
//! `+ - * /` and parentheses, each number used once; Gandhi et al. 2024, "Stream of
//! Search", arXiv 2404.03683; the rule reward of TinyZero-style countdown RL).
//!
//! The problem's answer is `NUMBERS=TARGET` (`3,4,6,1=17`, written by the `countdown`
//! task in foil-data, or by a `jsonl` task's `answer_template` from reasoning-gym's
//! metadata). The response's expression is the text after the **last** `marker` (the
//! whole response when `marker` is empty), up to the first `|` or newline. The verdict is
//!
//! ```text
//! value   = the expression evaluated with exact fractions (a division by 0 is invalid)
//! used    = the multiset of integer literals in the expression
//! correct = value == TARGET  and  used == NUMBERS   (use_all: true, each exactly once)
//!                              used ⊆ NUMBERS        (use_all: false, each at most once)
//! reward  = 1 if correct else 0
//! ```
//!
//! Unary minus is allowed (`-100 + 92*5`, as reasoning-gym's solutions write): a negated
//! literal uses that number. [recon]: reasoning-gym's and TinyZero's scorers collect the
//! digit runs of the expression as the numbers used, which reads `-100` the same way.
//!
//! A missing marker, a syntax error, an overflow (|numerator| or denominator beyond i64)
//! or a malformed reference answer is incorrect. [recon]: TinyZero's `countdown.py` checks
//! the multiset of numbers and the evaluated value the same way (floats there, exact
//! fractions here). `extract` returns the expression's value (`17`), so maj@k, which
//! compares it with `NUMBERS=TARGET`, reads 0 for this task.

use foil_core::{Problem, Verdict, Verifier, register_part};
use serde::{Deserialize, Serialize};

/// Countdown verifier: exact evaluation and a check of the numbers used.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Countdown {
    /// The text that introduces the final expression.
    pub marker: String,
    /// Every given number must be used exactly once (false: at most once).
    pub use_all: bool,
}

impl Default for Countdown {
    fn default() -> Self {
        Self {
            marker: "A:".into(),
            use_all: true,
        }
    }
}

register_part!(
    Verifier,
    "countdown",
    Countdown,
    "Countdown: the expression after the marker must equal the target, using the given numbers once each"
);

/// A fraction `n/d` in lowest terms, `d > 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frac(pub i64, pub i64);

fn gcd(a: i128, b: i128) -> i128 {
    if b == 0 { a.abs() } else { gcd(b, a % b) }
}

impl Frac {
    fn new(n: i128, d: i128) -> Option<Frac> {
        if d == 0 {
            return None;
        }
        let g = gcd(n, d).max(1);
        let (n, d) = if d < 0 {
            (-n / g, -d / g)
        } else {
            (n / g, d / g)
        };
        Some(Frac(i64::try_from(n).ok()?, i64::try_from(d).ok()?))
    }
    fn op(self, op: u8, o: Frac) -> Option<Frac> {
        let (a, b, c, d) = (self.0 as i128, self.1 as i128, o.0 as i128, o.1 as i128);
        match op {
            b'+' => Frac::new(a * d + c * b, b * d),
            b'-' => Frac::new(a * d - c * b, b * d),
            b'*' => Frac::new(a * c, b * d),
            b'/' => Frac::new(a * d, b * c),
            _ => None,
        }
    }
}

/// Recursive-descent parser over `expr := term (('+'|'-') term)*`,
/// `term := atom (('*'|'/') atom)*`, `atom := '-' atom | INT | '(' expr ')'` (spaces
/// ignored; parentheses and unary minus nest at most [`MAX_DEPTH`] deep, so hostile input
/// cannot overflow the stack).
struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    used: Vec<i64>,
    depth: usize,
}

/// How deep parentheses and unary minus may nest.
const MAX_DEPTH: usize = 64;

impl Parser<'_> {
    fn peek(&mut self) -> Option<u8> {
        while self.s.get(self.i) == Some(&b' ') {
            self.i += 1;
        }
        self.s.get(self.i).copied()
    }
    fn expr(&mut self) -> Option<Frac> {
        let mut v = self.term()?;
        while let Some(op @ (b'+' | b'-')) = self.peek() {
            self.i += 1;
            v = v.op(op, self.term()?)?;
        }
        Some(v)
    }
    fn term(&mut self) -> Option<Frac> {
        let mut v = self.atom()?;
        while let Some(op @ (b'*' | b'/')) = self.peek() {
            self.i += 1;
            v = v.op(op, self.atom()?)?;
        }
        Some(v)
    }
    fn atom(&mut self) -> Option<Frac> {
        match self.peek()? {
            b'(' => {
                self.i += 1;
                self.depth += 1;
                (self.depth <= MAX_DEPTH).then_some(())?;
                let v = self.expr()?;
                (self.peek()? == b')').then_some(())?;
                self.i += 1;
                self.depth -= 1;
                Some(v)
            }
            b'-' => {
                self.i += 1;
                self.depth += 1;
                (self.depth <= MAX_DEPTH).then_some(())?;
                let v = self.atom()?;
                self.depth -= 1;
                Frac(0, 1).op(b'-', v)
            }
            c if c.is_ascii_digit() => {
                let start = self.i;
                while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
                    self.i += 1;
                }
                let n: i64 = std::str::from_utf8(&self.s[start..self.i])
                    .ok()?
                    .parse()
                    .ok()?;
                self.used.push(n);
                Some(Frac(n, 1))
            }
            _ => None,
        }
    }
}

/// Evaluates an expression; returns its value and the integer literals it uses, or
/// `None` on a syntax error, a division by zero or an overflow.
pub fn evaluate(text: &str) -> Option<(Frac, Vec<i64>)> {
    let mut p = Parser {
        s: text.trim().as_bytes(),
        i: 0,
        used: Vec::new(),
        depth: 0,
    };
    let v = p.expr()?;
    (p.peek().is_none()).then_some((v, p.used))
}

/// `NUMBERS=TARGET` → (numbers, target).
pub fn parse_reference(answer: &str) -> Option<(Vec<i64>, i64)> {
    let (nums, target) = answer.trim().split_once('=')?;
    let nums = nums
        .split(',')
        .map(|n| n.trim().parse().ok())
        .collect::<Option<Vec<i64>>>()?;
    Some((nums, target.trim().parse().ok()?))
}

impl Countdown {
    fn expression<'a>(&self, response: &'a str) -> Option<&'a str> {
        let at = if self.marker.is_empty() {
            0
        } else {
            response.rfind(&self.marker)? + self.marker.len()
        };
        let rest = &response[at..];
        Some(rest.split(['|', '\n']).next().unwrap_or(rest))
    }

    /// Whether `response` solves the problem with reference `answer`.
    pub fn check(&self, answer: &str, response: &str) -> bool {
        let (Some((mut nums, target)), Some(e)) =
            (parse_reference(answer), self.expression(response))
        else {
            return false;
        };
        let Some((value, mut used)) = evaluate(e) else {
            return false;
        };
        if value != Frac(target, 1) {
            return false;
        }
        nums.sort_unstable();
        used.sort_unstable();
        if self.use_all {
            return nums == used;
        }
        // used ⊆ nums as multisets: walk both sorted lists
        let mut k = 0;
        used.iter().all(|u| {
            while k < nums.len() && nums[k] < *u {
                k += 1;
            }
            let hit = k < nums.len() && nums[k] == *u;
            k += 1;
            hit
        })
    }
}

#[typetag::serde(name = "countdown")]
impl Verifier for Countdown {
    fn verify(&self, problem: &Problem, response: &str) -> Verdict {
        Verdict::outcome(self.check(&problem.answer, response))
    }

    fn extract(&self, response: &str) -> Option<String> {
        let (v, _) = evaluate(self.expression(response)?)?;
        Some(if v.1 == 1 {
            v.0.to_string()
        } else {
            format!("{}/{}", v.0, v.1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluates_exactly_by_hand() {
        // 3*4+6-1 = 12 + 6 − 1 = 17, literals 3 4 6 1
        assert_eq!(evaluate("3*4+6-1"), Some((Frac(17, 1), vec![3, 4, 6, 1])));
        // 8-(3-1) = 6, while 8-3-1 = 4 (left to right)
        assert_eq!(evaluate("8-(3-1)").unwrap().0, Frac(6, 1));
        assert_eq!(evaluate("8-3-1").unwrap().0, Frac(4, 1));
        // 8/3*3 = (8/3)·3 = 8 exactly (floats would give 7.999…)
        assert_eq!(evaluate("8 / 3 * 3").unwrap().0, Frac(8, 1));
        // 1/(1-1): division by zero; "2+" and "(2": syntax errors; "2 2": trailing input
        for bad in ["1/(1-1)", "2+", "(2", "2 2", "", "-", "2^3"] {
            assert_eq!(evaluate(bad), None, "{bad}");
        }
        // unary minus: −2 + 3 = 1, literals 2 3
        assert_eq!(evaluate("-2+3"), Some((Frac(1, 1), vec![2, 3])));
        assert_eq!(evaluate("9223372036854775807*2"), None);
    }

    #[test]
    fn checks_target_and_numbers() {
        let v = Countdown::default();
        let ans = "3,4,6,1=17";
        assert!(v.check(ans, "3*4=12|12+6=18|18-1=17|A:3*4+6-1"));
        // another solution counts too: (6−1)·4 − 3 = 17
        assert!(v.check(ans, "A: (6-1)*4-3"));
        // right value, numbers reused: 4·4 + 1 = 17 uses 4 twice and not 3, 6
        assert!(!v.check(ans, "A:4*4+1"));
        // right numbers, wrong value: 3+4+6+1 = 14
        assert!(!v.check(ans, "A:3+4+6+1"));
        // the last marker counts; text after '|' or a newline is ignored
        assert!(v.check(ans, "A:1+1|A:3*4+6-1\nthat's it"));
        assert!(!v.check(ans, "3*4+6-1"));
        assert!(!v.check("3,4,6,1", "A:3*4+6-1"));
        // use_all: false accepts a subset: 3·6 − 1 = 17 without the 4
        let some = Countdown {
            use_all: false,
            ..Default::default()
        };
        assert!(!v.check(ans, "A:3*6-1"));
        assert!(some.check(ans, "A:3*6-1"));
        assert!(!some.check(ans, "A:6*3-1+4-4"));
        // unary minus: −3 + 4·6 − 1·… : (−(3) + 4·6 − 1) = 20 ≠ 17; −1 + 3·6 = 17 uses
        // 1, 3, 6 and not 4
        assert_eq!(
            evaluate("-3+4*6-1").map(|(f, u)| (f.0, u)),
            Some((20, vec![3, 4, 6, 1]))
        );
        assert!(some.check(ans, "A:-1+3*6"));
        assert!(!v.check(ans, "A:-1+3*6"));
        // 4·6 − (−(1)) · … : 4·6 − 3 − (−1)·… written as 6*4-(-1)-3-... ; here
        // −(−(3·6)) − 1 = 17 uses 3, 6, 1 (no 4): right value, not all numbers
        assert!(some.check(ans, "A:--(3*6)-1"));
        // nesting deeper than 64 is rejected, not a stack overflow
        assert_eq!(evaluate(&format!("{}1", "-".repeat(100_000))), None);
        assert_eq!(
            evaluate(&format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000))),
            None
        );
        assert!(evaluate(&format!("{}1{}", "(".repeat(64), ")".repeat(64))).is_some());
        // marker "": the whole response's first line is the expression (reasoning-gym's
        // format: "Provide your solution as an arithmetic expression")
        let bare = Countdown {
            marker: String::new(),
            ..Default::default()
        };
        assert!(bare.check(ans, "3 * 4 + 6 - 1"));
        assert!(bare.check(ans, "(6-1)*4-3\nexplanation"));
        assert!(!bare.check(ans, "The answer is 3*4+6-1"));
        assert_eq!(v.extract("A:12/(6/2)").as_deref(), Some("4"));
        assert_eq!(v.extract("A:1/2").as_deref(), Some("1/2"));
    }
}
