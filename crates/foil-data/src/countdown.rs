//! `countdown`: reach a target number from given numbers with `+ - * /`, each number used
//! once (the Countdown game of Gandhi et al. 2024, "Stream of Search", arXiv 2404.03683;
//! the TinyZero / reasoning-gym RL task).
//!
//! ```text
//! prompt:   Use 3,4,6,1 to make 17:
//! solution: 3*4=12|12+6=18|18-1=17|A:3*4+6-1
//! answer:   3,4,6,1=17
//! ```
//!
//! A problem is made by construction: draw `n` numbers from `1..=max_number`, then
//! repeatedly pick two of the values left and an operator, keeping only results that are
//! whole numbers ≥ 0 (division only when exact, never by 0), until one value is left: the
//! target, accepted when it is in `1..=max_target`. The written steps are those merges;
//! the final expression is the merge tree written with the fewest parentheses. Every
//! problem therefore has at least one solution; others may exist and count as correct.
//!
//! The answer field `NUMBERS=TARGET` is what the `countdown` verifier
//! (`foil-verifiers/src/countdown.rs`) reads: it evaluates the expression after the last
//! `A:` with exact fractions and checks it uses exactly the given numbers. Difficulty is
//! the number of numbers. Problems come from `rng::rng(seed, [0xC0DE])`; train and test
//! never share a prompt.

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::ensure;
use foil_core::{Problem, Task, TaskData, register_part, rng};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::char_tokenizer::CharTokenizer;

/// Recipe part: `task: {type: countdown, min_numbers: 3, max_numbers: 4, train: 2000}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Countdown {
    /// Fewest numbers in a problem (≥ 2).
    pub min_numbers: usize,
    /// Most numbers in a problem.
    pub max_numbers: usize,
    /// Numbers are drawn from `1..=max_number`.
    pub max_number: i64,
    /// Targets lie in `1..=max_target`.
    pub max_target: i64,
    /// Operators to draw from, any of `+ - * /`.
    pub ops: String,
    pub train: usize,
    pub test: usize,
}

impl Default for Countdown {
    fn default() -> Self {
        Self {
            min_numbers: 3,
            max_numbers: 4,
            max_number: 10,
            max_target: 100,
            ops: "+-*/".into(),
            train: 2000,
            test: 200,
        }
    }
}

register_part!(
    Task,
    "countdown",
    Countdown,
    "Countdown: reach a target from given numbers with + - * /, each once; checked by the countdown verifier"
);

/// Characters of every prompt and solution.
pub const ALPHABET: &str = "0123456789+-*/()=|,:AUaekmost ";

/// A merge tree: a number, or an operator over two subtrees.
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Num(i64),
    Op(char, Box<Expr>, Box<Expr>),
}

fn prec(op: char) -> u8 {
    if op == '+' || op == '-' { 1 } else { 2 }
}

/// Infix with the fewest parentheses: a child is bracketed when its operator binds less
/// tightly than its parent's, or equally tightly on the right of `-` or `/`.
fn show(e: &Expr) -> String {
    match e {
        Expr::Num(n) => n.to_string(),
        Expr::Op(op, l, r) => {
            let side = |c: &Expr, right: bool| match c {
                Expr::Op(cop, ..)
                    if prec(*cop) < prec(*op)
                        || (right && prec(*cop) == prec(*op) && (*op == '-' || *op == '/')) =>
                {
                    format!("({})", show(c))
                }
                _ => show(c),
            };
            format!("{}{op}{}", side(l, false), side(r, true))
        }
    }
}

/// `a op b` when it is a whole number ≥ 0 (exact division, not by zero).
fn apply(op: char, a: i64, b: i64) -> Option<i64> {
    match op {
        '+' => a.checked_add(b),
        '-' => (a >= b).then(|| a - b),
        '*' => a.checked_mul(b),
        '/' => (b != 0 && a % b == 0).then(|| a / b),
        _ => None,
    }
}

/// One problem from `numbers` by random merges: (prompt, solution, answer), or `None`
/// when this draw's merges end outside `1..=max_target`.
fn construct(
    numbers: &[i64],
    ops: &[char],
    max_target: i64,
    r: &mut impl Rng,
) -> Option<(String, String, String)> {
    let mut vals: Vec<(i64, Expr)> = numbers.iter().map(|&n| (n, Expr::Num(n))).collect();
    let mut steps = Vec::new();
    while vals.len() > 1 {
        let i = r.random_range(0..vals.len());
        let mut j = r.random_range(0..vals.len() - 1);
        if j >= i {
            j += 1;
        }
        let op = ops[r.random_range(0..ops.len())];
        let (a, b) = (vals[i].0, vals[j].0);
        let v = apply(op, a, b)?;
        steps.push(format!("{a}{op}{b}={v}"));
        let (hi, lo) = (i.max(j), i.min(j));
        let eh = vals.remove(hi).1;
        let el = vals.remove(lo).1;
        let (ea, eb) = if i < j { (el, eh) } else { (eh, el) };
        vals.push((v, Expr::Op(op, Box::new(ea), Box::new(eb))));
    }
    let (target, expr) = vals.pop()?;
    if !(1..=max_target).contains(&target) {
        return None;
    }
    let list = numbers
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    Some((
        format!("Use {list} to make {target}:"),
        format!("{}|A:{}", steps.join("|"), show(&expr)),
        format!("{list}={target}"),
    ))
}

#[typetag::serde(name = "countdown")]
impl Task for Countdown {
    fn build(&self, seed: u64) -> anyhow::Result<TaskData> {
        ensure!(
            2 <= self.min_numbers && self.min_numbers <= self.max_numbers,
            "countdown: need 2 <= min_numbers <= max_numbers"
        );
        ensure!(
            self.max_number >= 1 && self.max_target >= 1,
            "countdown: max_number and max_target must be at least 1"
        );
        let ops: Vec<char> = self.ops.chars().collect();
        ensure!(
            !ops.is_empty() && ops.iter().all(|c| "+-*/".contains(*c)),
            "countdown: ops must be a non-empty subset of \"+-*/\", got {:?}",
            self.ops
        );
        let mut r = rng::rng(seed, &[0xC0DE]);
        let wanted = self.train + self.test;
        let mut seen = HashSet::new();
        let mut problems = Vec::with_capacity(wanted);
        let mut tries = 0usize;
        while problems.len() < wanted {
            tries += 1;
            ensure!(
                tries <= 200 * wanted + 1000,
                "countdown: cannot draw {wanted} distinct problems; raise max_number, max_target or max_numbers"
            );
            let n = r.random_range(self.min_numbers..=self.max_numbers);
            let numbers: Vec<i64> = (0..n)
                .map(|_| r.random_range(1..=self.max_number))
                .collect();
            let Some((prompt, solution, answer)) =
                construct(&numbers, &ops, self.max_target, &mut r)
            else {
                continue;
            };
            if !seen.insert(prompt.clone()) {
                continue;
            }
            problems.push(Problem {
                id: crate::split_id(problems.len(), self.train),
                prompt,
                solution,
                answer,
                difficulty: n as u32,
            });
        }
        let test = problems.split_off(self.train);
        Ok(TaskData {
            train: problems,
            test,
            tokenizer: Arc::new(CharTokenizer::new(ALPHABET)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(o: char, l: Expr, r: Expr) -> Expr {
        Expr::Op(o, Box::new(l), Box::new(r))
    }
    use Expr::Num;

    #[test]
    fn fewest_parentheses_by_hand() {
        // ((3*4)+6)-1: no brackets needed
        let e = op('-', op('+', op('*', Num(3), Num(4)), Num(6)), Num(1));
        assert_eq!(show(&e), "3*4+6-1");
        // 8-(3-1) keeps its brackets (= 6, not 8-3-1 = 4); (8-3)-1 does not need them
        assert_eq!(show(&op('-', Num(8), op('-', Num(3), Num(1)))), "8-(3-1)");
        assert_eq!(show(&op('-', op('-', Num(8), Num(3)), Num(1))), "8-3-1");
        // (2+3)*4 and 12/(6/2) = 4
        assert_eq!(show(&op('*', op('+', Num(2), Num(3)), Num(4))), "(2+3)*4");
        assert_eq!(show(&op('/', Num(12), op('/', Num(6), Num(2)))), "12/(6/2)");
        assert_eq!(show(&op('+', Num(1), op('*', Num(2), Num(3)))), "1+2*3");
    }

    #[test]
    fn merges_stay_whole_and_non_negative() {
        assert_eq!(apply('-', 3, 5), None);
        assert_eq!(apply('/', 7, 2), None);
        assert_eq!(apply('/', 7, 0), None);
        assert_eq!(apply('/', 8, 2), Some(4));
    }

    /// Evaluates a written step `a?b=c` and checks it.
    fn step_ok(s: &str) -> bool {
        let (lhs, c) = s.split_once('=').unwrap();
        let at = lhs[1..].find(['+', '-', '*', '/']).unwrap() + 1;
        let (a, b) = (lhs[..at].parse().unwrap(), lhs[at + 1..].parse().unwrap());
        apply(lhs.as_bytes()[at] as char, a, b) == Some(c.parse().unwrap())
    }

    #[test]
    fn problems_are_seeded_distinct_consistent_and_tokenizable() {
        let t = Countdown {
            train: 300,
            test: 50,
            ..Default::default()
        };
        let a = t.build(5).unwrap();
        assert_eq!(a.train, t.build(5).unwrap().train);
        let prompts: HashSet<&str> = a
            .train
            .iter()
            .chain(&a.test)
            .map(|p| p.prompt.as_str())
            .collect();
        assert_eq!(prompts.len(), 350);
        for p in a.train.iter().chain(&a.test) {
            a.tokenizer.encode(&p.prompt).unwrap();
            a.tokenizer.encode(&p.solution).unwrap();
            let (nums, target) = p.answer.split_once('=').unwrap();
            assert_eq!(p.prompt, format!("Use {nums} to make {target}:"));
            let (steps, _) = p.solution.split_once("|A:").unwrap();
            let steps: Vec<&str> = steps.split('|').collect();
            // n numbers take n − 1 merges, the last one giving the target
            assert_eq!(steps.len() as u32, p.difficulty - 1);
            assert!(steps.iter().all(|s| step_ok(s)), "{}", p.solution);
            assert!(steps.last().unwrap().ends_with(&format!("={target}")));
        }
        assert!(
            a.train.iter().any(|p| p.difficulty == 3) && a.train.iter().any(|p| p.difficulty == 4)
        );
    }

    #[test]
    fn bad_settings_are_errors() {
        let e = |t: Countdown| t.build(0).unwrap_err().to_string();
        assert!(
            e(Countdown {
                ops: "+^".into(),
                ..Default::default()
            })
            .contains("ops")
        );
        assert!(
            e(Countdown {
                min_numbers: 1,
                ..Default::default()
            })
            .contains("min_numbers")
        );
        // 2 numbers from 1..=1: only 1+1, 1*1, 1/1, 1-1 → at most two distinct targets
        let t = Countdown {
            min_numbers: 2,
            max_numbers: 2,
            max_number: 1,
            train: 5,
            test: 0,
            ..Default::default()
        };
        assert!(e(t).contains("cannot draw"));
    }
}
