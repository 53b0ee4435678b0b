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
//!
//! `max_steps: 3` adds two three-step templates. `step_labels: true` writes each step as
//! its own labelled sentence (the vocabulary gains `:`), for process checks that need to
//! find the steps:
//!
//! ```text
//! solution: Step 1: Ava buys 3 * 5 = 15 cards. Step 2: Ava has 15 - 4 = 11 cards left.
//!           The answer is 11.
//! ```
//!
//! Settings without `max_steps: 3` or `step_labels` draw exactly the problems they drew
//! before these existed.

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
    /// 1 = one-step problems only; 2 = one- and two-step; 3 = one- to three-step.
    pub max_steps: u32,
    /// Write the solution as labelled steps (`Step 1: … Step 2: … The answer is N.`).
    pub step_labels: bool,
}

impl Default for WordProblems {
    fn default() -> Self {
        Self {
            train: 1000,
            test: 200,
            max_number: 20,
            max_steps: 2,
            step_labels: false,
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
#[cfg(test)]
fn render(
    template: usize,
    name: (&str, &str),
    item: &str,
    a: i64,
    b: i64,
    c: i64,
) -> (String, String, i64) {
    let (prompt, solution, _, answer) = render_steps(template, name, item, a, b, c);
    (prompt, solution, answer)
}

/// Steps written as labelled sentences: `Step 1: … Step 2: … The answer is N.`
fn labelled(steps: &[String], answer: i64) -> String {
    let mut out: Vec<String> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| format!("Step {}: {s}.", i + 1))
        .collect();
    out.push(format!("The answer is {answer}."));
    out.join(" ")
}

/// (prompt, solution, the steps for [`labelled`], answer) of one template.
fn render_steps(
    template: usize,
    name: (&str, &str),
    item: &str,
    a: i64,
    b: i64,
    c: i64,
) -> (String, String, Vec<String>, i64) {
    let (n, p) = name;
    match template {
        0 => {
            let r = a + b;
            (
                format!(
                    "{n} has {a} {item}. {p} buys {b} more. How many {item} does {n} have now?"
                ),
                format!("{n} has {a} + {b} = {r} {item}. The answer is {r}."),
                vec![format!("{n} has {a} + {b} = {r} {item}")],
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
                vec![format!("{n} has {hi} - {lo} = {r} {item} left")],
                r,
            )
        }
        2 => {
            let r = a * b;
            (
                format!("A box holds {a} {item}. How many {item} are in {b} boxes?"),
                format!("{b} boxes hold {b} * {a} = {r} {item}. The answer is {r}."),
                vec![format!("{b} boxes hold {b} * {a} = {r} {item}")],
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
                vec![
                    format!("{n} buys {a} * {b} = {total} {item}"),
                    format!("After giving away {c}, {n} has {total} - {c} = {r} {item}"),
                ],
                r,
            )
        }
        5 => {
            let pl = p.to_lowercase();
            let total = a * b;
            let more = total + c;
            let r = more - a;
            (
                format!(
                    "{n} buys {a} bags with {b} {item} in each bag and already had {c} {item}. Then {p} gives away {a} {item}. How many {item} does {n} have?"
                ),
                format!(
                    "{n} buys {a} * {b} = {total} {item}. With the {c} {pl} had, that is {total} + {c} = {more}. After giving away {a}, {n} has {more} - {a} = {r}. The answer is {r}."
                ),
                vec![
                    format!("{n} buys {a} * {b} = {total} {item}"),
                    format!("With the {c} {pl} had, {n} has {total} + {c} = {more} {item}"),
                    format!("After giving away {a}, {n} has {more} - {a} = {r} {item}"),
                ],
                r,
            )
        }
        6 => {
            let total = a * b;
            let c = c.min(total / 3);
            let twice = 2 * c;
            let r = total - c - twice;
            (
                format!(
                    "A shop has {a} boxes of {item} with {b} {item} in each box. It sells {c} {item} on Monday and twice as many on Tuesday. How many {item} are left?"
                ),
                format!(
                    "The shop has {a} * {b} = {total} {item}. On Tuesday it sells 2 * {c} = {twice}. Left are {total} - {c} - {twice} = {r}. The answer is {r}."
                ),
                vec![
                    format!("The shop has {a} * {b} = {total} {item}"),
                    format!("On Tuesday it sells 2 * {c} = {twice} {item}"),
                    format!("Left are {total} - {c} - {twice} = {r} {item}"),
                ],
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
                vec![
                    format!("{n} has {a} + {b} = {sum} {item}"),
                    format!("Doubled, that is 2 * {sum} = {r} {item}"),
                ],
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
            (1..=3).contains(&self.max_steps),
            "word_problems: max_steps must be 1, 2 or 3"
        );
        let mut r = rng::rng(seed, &[0x3017]);
        let wanted = self.train + self.test;
        let templates = match self.max_steps {
            1 => 3,
            2 => 5,
            _ => 7,
        };
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
            let (prompt, plain, steps, answer) = render_steps(t, name, item, a, b, c);
            let solution = if self.step_labels {
                labelled(&steps, answer)
            } else {
                plain
            };
            if !seen.insert(prompt.clone()) {
                continue;
            }
            problems.push(Problem {
                id: crate::split_id(problems.len(), self.train),
                prompt,
                solution,
                answer: answer.to_string(),
                difficulty: steps.len() as u32,
            });
        }
        let test = problems.split_off(self.train);
        Ok(TaskData {
            train: problems,
            test,
            // ':' goes last, so unlabelled settings keep their token ids
            tokenizer: Arc::new(CharTokenizer::new(&if self.step_labels {
                format!("{ALPHABET}:")
            } else {
                ALPHABET.to_string()
            })?),
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
    fn three_step_templates_and_labels_by_hand() {
        // 4 bags × 5 = 20, + 3 already had = 23, − 4 given away = 19
        let (_, plain, steps, r) = render_steps(5, ("Zoe", "She"), "shells", 4, 5, 3);
        assert_eq!(r, 19);
        assert!(plain.ends_with("23 - 4 = 19. The answer is 19."), "{plain}");
        assert_eq!(
            labelled(&steps, r),
            "Step 1: Zoe buys 4 * 5 = 20 shells. Step 2: With the 3 she had, Zoe has 20 + 3 = 23 shells. \
             Step 3: After giving away 4, Zoe has 23 - 4 = 19 shells. The answer is 19."
        );
        // 3 boxes × 6 = 18; Monday 4, Tuesday 2 × 4 = 8; 18 − 4 − 8 = 6
        assert_eq!(render_steps(6, ("Sam", "He"), "cards", 3, 6, 4).3, 6);
        // Monday's sales are capped at a third of the stock: 2 × 2 = 4, c = min(9, 4/3) = 1,
        // 4 − 1 − 2 = 1
        assert_eq!(render_steps(6, ("Sam", "He"), "cards", 2, 2, 9).3, 1);
        // the unlabelled text of the old templates is unchanged
        assert_eq!(
            render(4, ("Leo", "He"), "books", 6, 4, 1).1,
            "Leo has 6 + 4 = 10 books, then 2 * 10 = 20. The answer is 20."
        );
    }

    #[test]
    fn labelled_three_step_split_is_tokenizable_and_difficulty_counts_steps() {
        let t = WordProblems {
            train: 300,
            test: 30,
            max_steps: 3,
            step_labels: true,
            ..Default::default()
        };
        let d = t.build(1).unwrap();
        for p in d.train.iter().chain(&d.test) {
            d.tokenizer.encode(&p.solution).unwrap();
            assert_eq!(p.solution.matches("Step ").count() as u32, p.difficulty);
            assert!(
                p.solution
                    .ends_with(&format!("The answer is {}.", p.answer))
            );
        }
        assert!(d.train.iter().any(|p| p.difficulty == 3));
        // unlabelled max_steps 2 draws what it drew before step labels existed
        let old = WordProblems {
            train: 50,
            test: 0,
            ..Default::default()
        }
        .build(3)
        .unwrap();
        assert_eq!(old.tokenizer.vocab_size(), ALPHABET.chars().count() + 2);
        assert!(old.train.iter().all(|p| !p.solution.contains("Step")));
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
