//! `word_problems`: GSM8K-style grade-school word problems (Cobbe et al. 2021, "Training
//! Verifiers to Solve Math Word Problems"), generated from templates so that they need
//! no download. One or two arithmetic steps with small whole numbers:
//!
//! ```text
//! prompt:   Mia has 12 marbles. She buys 7 more. How many marbles does Mia have now?
//! solution: Mia has 12 + 7 = 19 marbles. The answer is 19.
//! answer:   19
//! ```
//!
//! The solution states each step and ends with "The answer is N." (the `numeric`
//! verifier's marker for this task is `"The answer is"`, or `last_number: true` for
//! free-form replies). Difficulty is the number of steps. Problems are drawn from
//! `rng::derive(seed, [0x3017])`: the same seed gives the same split.

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::ensure;
use foil_core::parts::TaskData;
use foil_core::{Problem, Task, register_part, rng};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::char_tokenizer::CharTokenizer;

/// Recipe part: `task: {type: word_problems, train: 500, test: 100, max_steps: 2}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WordProblems {
    /// Training problems.
    pub train: usize,
    /// Held-out problems (distinct prompts from the training ones).
    pub test: usize,
    /// Largest number in a problem statement.
    pub max_number: i64,
    /// 1 = one-step problems only; 2 = one- and two-step problems.
    pub max_steps: u32,
}

impl Default for WordProblems {
    fn default() -> Self {
        Self {
            train: 1000,
            test: 200,
            max_number: 20,
            max_steps: 2,
        }
    }
}

register_part!(
    Task,
    "word_problems",
    WordProblems,
    "GSM8K-style one- and two-step word problems from templates, answers after \"The answer is\""
);

const NAMES: [(&str, &str); 8] = [
    ("Mia", "She"),
    ("Tom", "He"),
    ("Ava", "She"),
    ("Leo", "He"),
    ("Zoe", "She"),
    ("Sam", "He"),
    ("Ivy", "She"),
    ("Max", "He"),
];

const ITEMS: [&str; 8] = [
    "marbles", "apples", "stickers", "pencils", "cookies", "books", "shells", "cards",
];

/// Characters any generated problem or solution uses (for the character tokenizer).
const ALPHABET: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,?+-*=/'";

/// One problem from a template index and its numbers: (prompt, solution, answer).
fn render(
    template: usize,
    name: (&str, &str),
    item: &str,
    a: i64,
    b: i64,
    c: i64,
) -> (String, String, i64) {
    let (n, p) = name;
    match template {
        0 => {
            let r = a + b;
            (
                format!(
                    "{n} has {a} {item}. {p} buys {b} more. How many {item} does {n} have now?"
                ),
                format!("{n} has {a} + {b} = {r} {item}. The answer is {r}."),
                r,
            )
        }
        1 => {
            let (hi, lo) = (a.max(b), a.min(b));
            let r = hi - lo;
            (
                format!(
                    "{n} had {hi} {item} and gave {lo} of them to a friend. How many {item} does {n} have left?"
                ),
                format!("{n} has {hi} - {lo} = {r} {item} left. The answer is {r}."),
                r,
            )
        }
        2 => {
            let r = a * b;
            (
                format!("A box holds {a} {item}. How many {item} are in {b} boxes?"),
                format!("{b} boxes hold {b} * {a} = {r} {item}. The answer is {r}."),
                r,
            )
        }
        3 => {
            let total = a * b;
            let c = c.min(total);
            let r = total - c;
            (
                format!(
                    "{n} buys {a} packs of {item} with {b} {item} in each pack, then gives away {c}. How many {item} does {n} have?"
                ),
                format!(
                    "{n} buys {a} * {b} = {total} {item}. After giving away {c}, {n} has {total} - {c} = {r}. The answer is {r}."
                ),
                r,
            )
        }
        _ => {
            let sum = a + b;
            let r = sum * 2;
            (
                format!(
                    "{n} has {a} {item} and {p} finds {b} more. Then the number of {item} doubles. How many {item} does {n} have?"
                ),
                format!(
                    "{n} has {a} + {b} = {sum} {item}, then 2 * {sum} = {r}. The answer is {r}."
                ),
                r,
            )
        }
    }
}

#[typetag::serde(name = "word_problems")]
impl Task for WordProblems {
    fn build(&self, seed: u64) -> anyhow::Result<TaskData> {
        ensure!(
            self.max_number >= 2,
            "word_problems: max_number must be at least 2"
        );
        ensure!(
            (1..=2).contains(&self.max_steps),
            "word_problems: max_steps must be 1 or 2"
        );
        let mut r = rng::rng(seed, &[0x3017]);
        let wanted = self.train + self.test;
        let templates = if self.max_steps == 1 { 3 } else { 5 };
        let mut seen = HashSet::new();
        let mut problems = Vec::with_capacity(wanted);
        let mut tries = 0usize;
        while problems.len() < wanted {
            tries += 1;
            ensure!(
                tries <= 50 * wanted + 1000,
                "word_problems: cannot draw {wanted} distinct problems; raise max_number"
            );
            let t = r.random_range(0..templates);
            let name = NAMES[r.random_range(0..NAMES.len())];
            let item = ITEMS[r.random_range(0..ITEMS.len())];
            let a = r.random_range(2..=self.max_number);
            let b = r.random_range(2..=self.max_number);
            let c = r.random_range(1..=self.max_number);
            let (prompt, solution, answer) = render(t, name, item, a, b, c);
            if !seen.insert(prompt.clone()) {
                continue;
            }
            let is_train = problems.len() < self.train;
            let index = if is_train {
                problems.len()
            } else {
                problems.len() - self.train
            };
            problems.push(Problem {
                id: format!("{}-{index:05}", if is_train { "train" } else { "test" }),
                prompt,
                solution,
                answer: answer.to_string(),
                difficulty: if t < 3 { 1 } else { 2 },
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

    #[test]
    fn templates_by_hand() {
        let (p, s, a) = render(0, ("Mia", "She"), "marbles", 12, 7, 1);
        assert_eq!(
            p,
            "Mia has 12 marbles. She buys 7 more. How many marbles does Mia have now?"
        );
        assert_eq!(s, "Mia has 12 + 7 = 19 marbles. The answer is 19.");
        assert_eq!(a, 19);
        // subtraction always takes the smaller from the larger: 15 − 4 = 11
        assert_eq!(render(1, ("Tom", "He"), "apples", 4, 15, 1).2, 11);
        // 3 packs × 5 = 15, give away 4 → 11
        assert_eq!(render(3, ("Ava", "She"), "cards", 3, 5, 4).2, 11);
        // give away more than there is: capped at the total, 2 × 2 − 4 = 0
        assert_eq!(render(3, ("Ava", "She"), "cards", 2, 2, 9).2, 0);
        // (6 + 4) × 2 = 20
        assert_eq!(render(4, ("Leo", "He"), "books", 6, 4, 1).2, 20);
    }

    #[test]
    fn split_is_seeded_distinct_and_tokenizable() {
        let t = WordProblems {
            train: 200,
            test: 50,
            ..Default::default()
        };
        let a = t.build(3).unwrap();
        let b = t.build(3).unwrap();
        assert_eq!(a.train, b.train);
        assert_eq!((a.train.len(), a.test.len()), (200, 50));
        let prompts: HashSet<&str> = a
            .train
            .iter()
            .chain(&a.test)
            .map(|p| p.prompt.as_str())
            .collect();
        assert_eq!(prompts.len(), 250);
        for p in a.train.iter().chain(&a.test) {
            a.tokenizer.encode(&p.prompt).unwrap();
            a.tokenizer.encode(&p.solution).unwrap();
            assert!(
                p.solution
                    .ends_with(&format!("The answer is {}.", p.answer))
            );
        }
        assert!(a.train.iter().any(|p| p.difficulty == 2));
    }
}
