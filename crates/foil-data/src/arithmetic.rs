//! `arithmetic`: chain arithmetic with explicit steps (the shared testbed "T0").
//!
//! A problem with operands `x_0 … x_k` and operators `∘_1 … ∘_k` is evaluated left to
//! right, every intermediate reduced modulo `m` (Euclidean remainder):
//!
//! ```text
//! v_0 = x_0,   v_i = (v_{i-1} ∘_i x_i) mod m,   answer = v_k
//! prompt:   Q:17+5-3=
//! solution: 17+5=22|22-3=19|A:19
//! ```
//!
//! Difficulty knobs: the number of operands (`min_operands..=max_operands`), the operand
//! range (`0..=max_operand`), the operator set and the modulus. Train and test problems are
//! drawn from one seeded stream and never share a prompt.
//!
//! Imperfect demonstrations, so that SFT learns a policy with something for RL to fix:
//! a fraction `demo_error_rate` of training demonstrations carries one wrong step
//! (propagated to the answer), and a fraction `demo_shortcut_rate` stops one step early and
//! answers the value before the last operation (`17+5=22|A:22` for `Q:17+5-3=`), a shortcut
//! that a verifier reward teaches the policy to drop. A fraction `demo_lucky_rate` has one
//! wrong written step whose value is *not* carried on: the next step and the answer use
//! the true value (`17+5=32|22-3=19|A:19`, or `17+5=22|22-3=18|A:19` for the last step), so
//! an answer-only verifier accepts it — the "lucky" answers with wrong steps that PROF's
//! process filter is meant to remove (arXiv 2509.03403).

use std::collections::HashSet;

use anyhow::ensure;
use foil_core::{Problem, Task, TaskData, register_part, rng};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::char_tokenizer::CharTokenizer;

/// Recipe part: `task: {type: arithmetic, max_operands: 3, train: 2000, test: 200}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Arithmetic {
    /// Fewest operands in a problem (≥ 2).
    pub min_operands: usize,
    /// Most operands in a problem.
    pub max_operands: usize,
    /// Operands are drawn uniformly from `0..=max_operand`.
    pub max_operand: i64,
    /// Operators to draw from, any of `+ - *`.
    pub ops: String,
    /// Every result is reduced modulo this (≥ 2).
    pub modulus: i64,
    /// Training problems.
    pub train: usize,
    /// Held-out test problems.
    pub test: usize,
    /// Fraction of training demonstrations with one wrong step.
    pub demo_error_rate: f64,
    /// Fraction of training demonstrations that skip the last step (a wrong shortcut).
    pub demo_shortcut_rate: f64,
    /// Fraction of training demonstrations with one wrong written step that is not carried
    /// on (right answer, wrong step).
    pub demo_lucky_rate: f64,
}

impl Default for Arithmetic {
    fn default() -> Self {
        Self {
            min_operands: 2,
            max_operands: 3,
            max_operand: 20,
            ops: "+-*".into(),
            modulus: 100,
            train: 2000,
            test: 200,
            demo_error_rate: 0.0,
            demo_shortcut_rate: 0.0,
            demo_lucky_rate: 0.0,
        }
    }
}

register_part!(
    Task,
    "arithmetic",
    Arithmetic,
    "chain arithmetic with explicit checkable steps (T0 testbed), seeded train/test split"
);

/// The characters every arithmetic text uses.
pub const ALPHABET: &str = "0123456789+-*=|:AQ";

/// Applies one operator, reduced modulo `m` into `0..m`.
pub fn apply(a: i64, op: char, b: i64, m: i64) -> i64 {
    let r = match op {
        '+' => a + b,
        '-' => a - b,
        '*' => a * b,
        _ => unreachable!("validated operator"),
    };
    r.rem_euclid(m)
}

/// The shortcut demonstration: every step but the last, then the value before the last
/// operation as the answer.
pub fn shortcut(operands: &[i64], ops: &[char], m: i64) -> String {
    let k = ops.len();
    let (full, _) = solve(&operands[..k], &ops[..k - 1], m, None);
    full
}

/// The step-by-step solution text of a problem, with an optional corrupted step
/// (`corrupt = Some((step, delta))` adds `delta` to that step's result).
pub fn solve(
    operands: &[i64],
    ops: &[char],
    m: i64,
    corrupt: Option<(usize, i64)>,
) -> (String, i64) {
    let mut v = operands[0];
    let mut steps = Vec::new();
    for (i, (&op, &x)) in ops.iter().zip(&operands[1..]).enumerate() {
        let mut r = apply(v, op, x, m);
        if let Some((s, d)) = corrupt
            && s == i
        {
            r = (r + d).rem_euclid(m);
        }
        steps.push(format!("{v}{op}{x}={r}"));
        v = r;
    }
    steps.push(format!("A:{v}"));
    (steps.join("|"), v)
}

/// The "lucky" demonstration: the correct solution except that step `step`'s written
/// result is off by `delta` (mod `m`); the following steps and the answer use the true
/// value.
pub fn lucky(operands: &[i64], ops: &[char], m: i64, step: usize, delta: i64) -> String {
    let mut v = operands[0];
    let mut steps = Vec::new();
    for (i, (&op, &x)) in ops.iter().zip(&operands[1..]).enumerate() {
        let r = apply(v, op, x, m);
        let written = if i == step {
            (r + delta).rem_euclid(m)
        } else {
            r
        };
        steps.push(format!("{v}{op}{x}={written}"));
        v = r;
    }
    steps.push(format!("A:{v}"));
    steps.join("|")
}

impl Arithmetic {
    fn validate(&self) -> anyhow::Result<()> {
        ensure!(
            self.min_operands >= 2,
            "arithmetic: min_operands must be at least 2"
        );
        ensure!(
            self.max_operands >= self.min_operands,
            "arithmetic: max_operands ({}) is below min_operands ({})",
            self.max_operands,
            self.min_operands
        );
        ensure!(self.modulus >= 2, "arithmetic: modulus must be at least 2");
        ensure!(
            self.max_operand >= 0,
            "arithmetic: max_operand must be non-negative"
        );
        ensure!(
            !self.ops.is_empty() && self.ops.chars().all(|c| "+-*".contains(c)),
            "arithmetic: ops must be a non-empty subset of \"+-*\", got {:?}",
            self.ops
        );
        ensure!(
            (0.0..=1.0).contains(&self.demo_error_rate)
                && (0.0..=1.0).contains(&self.demo_shortcut_rate)
                && (0.0..=1.0).contains(&self.demo_lucky_rate)
                && self.demo_error_rate + self.demo_shortcut_rate + self.demo_lucky_rate <= 1.0,
            "arithmetic: demo_error_rate, demo_shortcut_rate and demo_lucky_rate must be in [0, 1] and sum to at most 1"
        );
        Ok(())
    }
}

#[typetag::serde(name = "arithmetic")]
impl Task for Arithmetic {
    fn build(&self, seed: u64) -> anyhow::Result<TaskData> {
        self.validate()?;
        let ops: Vec<char> = self.ops.chars().collect();
        let mut r = rng::rng(seed, &[0xA417]);
        let mut seen = HashSet::new();
        let mut problems = Vec::new();
        let wanted = self.train + self.test;
        let mut tries = 0usize;
        while problems.len() < wanted {
            tries += 1;
            ensure!(
                tries <= 50 * wanted + 1000,
                "arithmetic: cannot draw {wanted} distinct problems with these knobs; \
                 raise max_operand or max_operands"
            );
            let k = r.random_range(self.min_operands..=self.max_operands);
            let xs: Vec<i64> = (0..k)
                .map(|_| r.random_range(0..=self.max_operand))
                .collect();
            let os: Vec<char> = (1..k).map(|_| ops[r.random_range(0..ops.len())]).collect();
            let mut prompt = format!("Q:{}", xs[0]);
            for (o, x) in os.iter().zip(&xs[1..]) {
                prompt.push_str(&format!("{o}{x}"));
            }
            prompt.push('=');
            if !seen.insert(prompt.clone()) {
                continue;
            }
            let (gold, answer) = solve(&xs, &os, self.modulus, None);
            let is_train = problems.len() < self.train;
            let u: f64 = if is_train { r.random() } else { 1.0 };
            let solution = if u < self.demo_error_rate {
                let step = r.random_range(0..os.len());
                let delta = r.random_range(1..self.modulus);
                solve(&xs, &os, self.modulus, Some((step, delta))).0
            } else if u < self.demo_error_rate + self.demo_shortcut_rate {
                shortcut(&xs, &os, self.modulus)
            } else if u < self.demo_error_rate + self.demo_shortcut_rate + self.demo_lucky_rate {
                let step = r.random_range(0..os.len());
                let delta = r.random_range(1..self.modulus);
                lucky(&xs, &os, self.modulus, step, delta)
            } else {
                gold
            };
            problems.push(Problem {
                id: crate::split_id(problems.len(), self.train),
                prompt,
                solution,
                answer: answer.to_string(),
                difficulty: k as u32,
            });
        }
        let test = problems.split_off(self.train);
        Ok(TaskData {
            train: problems,
            test,
            tokenizer: std::sync::Arc::new(CharTokenizer::new(ALPHABET)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_left_to_right_modulo() {
        // 17+5 = 22; 22-3 = 19; 19*6 = 114 → 14 (mod 100)
        let (s, a) = solve(&[17, 5, 3, 6], &['+', '-', '*'], 100, None);
        assert_eq!(s, "17+5=22|22-3=19|19*6=14|A:14");
        assert_eq!(a, 14);
        // 3-9 = -6 → 94 (Euclidean remainder)
        assert_eq!(apply(3, '-', 9, 100), 94);
    }

    #[test]
    fn corrupted_step_propagates() {
        // step 0 gets +10: 17+5 = 22 → 32; 32-3 = 29
        let (s, a) = solve(&[17, 5, 3], &['+', '-'], 100, Some((0, 10)));
        assert_eq!(s, "17+5=32|32-3=29|A:29");
        assert_eq!(a, 29);
    }

    #[test]
    fn shortcut_skips_the_last_step() {
        // 17+5 = 22, then "-3" is skipped: the shortcut answers 22
        assert_eq!(shortcut(&[17, 5, 3], &['+', '-'], 100), "17+5=22|A:22");
        // two operands: no step at all, the first operand is the answer
        assert_eq!(shortcut(&[4, 5], &['*'], 100), "A:4");
    }

    #[test]
    fn split_is_seeded_disjoint_and_sized() {
        let t = Arithmetic {
            train: 300,
            test: 50,
            ..Default::default()
        };
        let a = t.build(1).unwrap();
        let b = t.build(1).unwrap();
        let c = t.build(2).unwrap();
        assert_eq!(a.train, b.train);
        assert_ne!(a.train, c.train);
        assert_eq!((a.train.len(), a.test.len()), (300, 50));
        let train: HashSet<_> = a.train.iter().map(|p| &p.prompt).collect();
        assert!(a.test.iter().all(|p| !train.contains(&p.prompt)));
        for p in a.train.iter().chain(&a.test) {
            assert!(p.solution.ends_with(&format!("A:{}", p.answer)));
            assert!(a.tokenizer.encode(&p.prompt).is_ok());
        }
    }

    #[test]
    fn demo_error_rate_corrupts_that_share_of_demonstrations() {
        let t = Arithmetic {
            train: 1000,
            test: 10,
            demo_error_rate: 0.3,
            ..Default::default()
        };
        let d = t.build(5).unwrap();
        let wrong = d
            .train
            .iter()
            .filter(|p| !p.solution.ends_with(&format!("A:{}", p.answer)))
            .count();
        // Binomial(1000, 0.3): mean 300, sd ≈ 14.5
        assert!((240..=360).contains(&wrong), "{wrong}");
    }

    #[test]
    fn shortcut_rate_shortens_that_share_of_demonstrations() {
        let t = Arithmetic {
            train: 1000,
            test: 10,
            demo_shortcut_rate: 0.5,
            ..Default::default()
        };
        let d = t.build(6).unwrap();
        let short = d
            .train
            .iter()
            .filter(|p| p.solution.matches('|').count() + 1 < p.difficulty as usize)
            .count();
        // Binomial(1000, 0.5): mean 500, sd ≈ 16
        assert!((430..=570).contains(&short), "{short}");
        assert!(
            d.test
                .iter()
                .all(|p| p.solution.ends_with(&format!("A:{}", p.answer)))
        );
    }

    #[test]
    fn lucky_demonstrations_have_a_wrong_step_and_the_right_answer() {
        // 17+5 = 22 written as 22+10 = 32, but 22 is carried on: 22-3 = 19, A:19.
        assert_eq!(
            lucky(&[17, 5, 3], &['+', '-'], 100, 0, 10),
            "17+5=32|22-3=19|A:19"
        );
        // last step: 22-3 = 19 written as 19+99 = 118 → 18 (mod 100); the answer stays 19.
        assert_eq!(
            lucky(&[17, 5, 3], &['+', '-'], 100, 1, 99),
            "17+5=22|22-3=18|A:19"
        );
        let t = Arithmetic {
            train: 1000,
            test: 10,
            demo_lucky_rate: 0.4,
            ..Default::default()
        };
        let d = t.build(7).unwrap();
        let gold = |p: &Problem| {
            let c = p.prompt.trim_start_matches("Q:").trim_end_matches('=');
            let xs: Vec<i64> = c
                .split(['+', '-', '*'])
                .map(|x| x.parse().unwrap())
                .collect();
            let os: Vec<char> = c.chars().filter(|c| "+-*".contains(*c)).collect();
            solve(&xs, &os, 100, None).0
        };
        let mut lucky_count = 0;
        for p in &d.train {
            // every demonstration keeps the right answer
            assert!(p.solution.ends_with(&format!("A:{}", p.answer)), "{p:?}");
            lucky_count += usize::from(p.solution != gold(p));
        }
        // Binomial(1000, 0.4): mean 400, sd ≈ 15.5
        assert!((330..=470).contains(&lucky_count), "{lucky_count}");
        // defaults unchanged: no lucky demonstrations
        let d = Arithmetic::default().build(7).unwrap();
        assert!(d.train.iter().all(|p| p.solution == gold(p)));
    }

    #[test]
    fn impossible_knobs_are_an_error_not_a_hang() {
        let t = Arithmetic {
            max_operand: 1,
            max_operands: 2,
            ops: "+".into(),
            train: 10,
            test: 10,
            ..Default::default()
        };
        assert!(t.build(0).unwrap_err().to_string().contains("cannot draw"));
    }
}
