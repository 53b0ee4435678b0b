//! `copy_reverse`: copy or reverse a string of letters, a skill to check for forgetting.
//!
//! ```text
//! prompt:   copy:dbeac=        solution: A:dbeac     answer: dbeac
//! prompt:   reverse:dbeac=     solution: A:caebd     answer: caebd
//! ```
//!
//! A model trained on it (SFT) and then fine-tuned on another task can be evaluated on it
//! again to measure what the fine-tuning forgot (catastrophic forgetting; e.g. Luo et al.
//! 2023, arXiv 2308.08747). The answer is checked by the `exact` verifier (marker `A:`).
//! Strings are drawn uniformly from `letters` with a length in `min_len..=max_len`;
//! `mode: both` picks copy or reverse with probability ½. Difficulty is the length.
//! Problems come from `rng::rng(seed, [0xC0B7])`; train and test never share a prompt.

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::ensure;
use foil_core::{Problem, Task, TaskData, register_part, rng};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::char_tokenizer::CharTokenizer;

/// Which operation the problems ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Copy,
    Reverse,
    #[default]
    Both,
}

/// Recipe part: `task: {type: copy_reverse, mode: both, min_len: 3, max_len: 8}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CopyReverse {
    pub mode: Mode,
    /// The letters strings are made of (distinct, none of `:=`).
    pub letters: String,
    pub min_len: usize,
    pub max_len: usize,
    pub train: usize,
    pub test: usize,
}

impl Default for CopyReverse {
    fn default() -> Self {
        Self {
            mode: Mode::Both,
            letters: "abcdefghij".into(),
            min_len: 3,
            max_len: 8,
            train: 2000,
            test: 200,
        }
    }
}

register_part!(
    Task,
    "copy_reverse",
    CopyReverse,
    "copy or reverse a letter string (a skill for forgetting checks); exact verifier, marker A:"
);

/// (prompt, solution, answer) of one string.
fn render(reverse: bool, s: &str) -> (String, String, String) {
    let out: String = if reverse {
        s.chars().rev().collect()
    } else {
        s.to_string()
    };
    let verb = if reverse { "reverse" } else { "copy" };
    (format!("{verb}:{s}="), format!("A:{out}"), out)
}

#[typetag::serde(name = "copy_reverse")]
impl Task for CopyReverse {
    fn build(&self, seed: u64) -> anyhow::Result<TaskData> {
        let letters: Vec<char> = self.letters.chars().collect();
        ensure!(
            !letters.is_empty() && !letters.iter().any(|c| ":=".contains(*c)),
            "copy_reverse: letters must be non-empty and hold neither ':' nor '='"
        );
        ensure!(
            1 <= self.min_len && self.min_len <= self.max_len,
            "copy_reverse: need 1 <= min_len <= max_len"
        );
        let mut alphabet = String::from("copyrevs:=A");
        for c in &letters {
            if !alphabet.contains(*c) {
                alphabet.push(*c);
            }
        }
        let tokenizer = CharTokenizer::new(&alphabet)?;
        let mut r = rng::rng(seed, &[0xC0B7]);
        let wanted = self.train + self.test;
        let mut seen = HashSet::new();
        let mut problems = Vec::with_capacity(wanted);
        let mut tries = 0usize;
        while problems.len() < wanted {
            tries += 1;
            ensure!(
                tries <= 50 * wanted + 1000,
                "copy_reverse: cannot draw {wanted} distinct problems; raise max_len or add letters"
            );
            let len = r.random_range(self.min_len..=self.max_len);
            let s: String = (0..len)
                .map(|_| letters[r.random_range(0..letters.len())])
                .collect();
            let reverse = match self.mode {
                Mode::Copy => false,
                Mode::Reverse => true,
                Mode::Both => r.random_bool(0.5),
            };
            let (prompt, solution, answer) = render(reverse, &s);
            if !seen.insert(prompt.clone()) {
                continue;
            }
            problems.push(Problem {
                id: crate::split_id(problems.len(), self.train),
                prompt,
                solution,
                answer,
                difficulty: len as u32,
            });
        }
        let test = problems.split_off(self.train);
        Ok(TaskData {
            train: problems,
            test,
            tokenizer: Arc::new(tokenizer),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_by_hand() {
        assert_eq!(
            render(true, "dbeac"),
            ("reverse:dbeac=".into(), "A:caebd".into(), "caebd".into())
        );
        assert_eq!(render(false, "ab").1, "A:ab");
    }

    #[test]
    fn modes_lengths_and_seeds() {
        let t = CopyReverse {
            train: 300,
            test: 50,
            ..Default::default()
        };
        let a = t.build(2).unwrap();
        assert_eq!(a.train, t.build(2).unwrap().train);
        let mut reversed = 0;
        for p in a.train.iter().chain(&a.test) {
            let (verb, rest) = p.prompt.split_once(':').unwrap();
            let s = rest.strip_suffix('=').unwrap();
            assert_eq!(p.difficulty as usize, s.len());
            assert!((3..=8).contains(&s.len()));
            let want: String = if verb == "reverse" {
                reversed += 1;
                s.chars().rev().collect()
            } else {
                s.into()
            };
            assert_eq!(p.answer, want);
            a.tokenizer.encode(&p.prompt).unwrap();
            a.tokenizer.encode(&p.solution).unwrap();
        }
        // mode both: about half of 350 reversed (binomial sd ≈ 9.4; 120..230 is > 5 sd)
        assert!((120..230).contains(&reversed), "{reversed}");
        let only = CopyReverse {
            mode: Mode::Reverse,
            train: 20,
            test: 0,
            ..Default::default()
        };
        assert!(
            only.build(0)
                .unwrap()
                .train
                .iter()
                .all(|p| p.prompt.starts_with("reverse:"))
        );
        let bad = CopyReverse {
            letters: "a=".into(),
            ..Default::default()
        };
        assert!(bad.build(0).is_err());
    }
}
