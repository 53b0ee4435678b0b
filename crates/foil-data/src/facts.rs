//! `facts`: memorised (entity → attribute) facts, part of which is to be forgotten — the
//! small task of GUARD's tiny experiment (methods.md §12: "a tiny LM memorises synthetic
//! biographies; forget some").
//!
//! ```text
//! prompt:   who:zavoke=        solution: A:kelu     answer: kelu
//! ```
//!
//! Names are 6 letters and attributes 4, both consonant–vowel syllables drawn uniformly;
//! names are distinct. The first `forget` facts form the forget set (difficulty 1), the rest
//! the retain set (difficulty 0), so an `eval` with `by_difficulty: true` reports retain
//! accuracy as `pass@1_d0` and the forget leak rate as `pass@1_d1`. This is a memorisation
//! task: **train and test hold the same facts** (the policy is SFT-trained on all of them,
//! and unlearning is judged on what it memorised). The facts come from
//! `rng::rng(facts_seed, [0xFAC7])`, independent of the run seed, so that a forget file
//! (GUARD's `forget_path`, written by [`Facts::forget_jsonl`]) stays valid across seeds.
//! The answer is checked by the `exact` verifier (marker `A:`).

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::ensure;
use foil_core::{Problem, Task, TaskData, register_part, rng};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::char_tokenizer::CharTokenizer;

const CONSONANTS: &[u8] = b"bdfgklmnprstvz";
const VOWELS: &[u8] = b"aeiou";

/// Recipe part: `task: {type: facts, facts: 200, forget: 20}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Facts {
    /// Number of facts.
    pub facts: usize,
    /// The first this many are the forget set.
    pub forget: usize,
    /// Seed of the facts themselves (not the run seed).
    pub facts_seed: u64,
}

impl Default for Facts {
    fn default() -> Self {
        Self {
            facts: 200,
            forget: 20,
            facts_seed: 7,
        }
    }
}

register_part!(
    Task,
    "facts",
    Facts,
    "memorised entity → attribute facts, the first `forget` marked for unlearning (difficulty 1); train = test"
);

fn syllables(r: &mut impl Rng, n: usize) -> String {
    let mut s = String::with_capacity(2 * n);
    for _ in 0..n {
        s.push(CONSONANTS[r.random_range(0..CONSONANTS.len())] as char);
        s.push(VOWELS[r.random_range(0..VOWELS.len())] as char);
    }
    s
}

impl Facts {
    /// The facts: (prompt, solution, answer, is_forget).
    pub fn rows(&self) -> anyhow::Result<Vec<(String, String, String, bool)>> {
        ensure!(self.facts > 0, "facts: need at least one fact");
        ensure!(
            self.forget < self.facts,
            "facts: forget ({}) must be smaller than facts ({})",
            self.forget,
            self.facts
        );
        ensure!(self.facts <= 100_000, "facts: at most 100000 facts");
        let mut r = rng::rng(self.facts_seed, &[0xFAC7]);
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(self.facts);
        while out.len() < self.facts {
            let name = syllables(&mut r, 3);
            let attr = syllables(&mut r, 2);
            if !seen.insert(name.clone()) {
                continue;
            }
            let forget = out.len() < self.forget;
            out.push((format!("who:{name}="), format!("A:{attr}"), attr, forget));
        }
        Ok(out)
    }

    /// GUARD's forget file: one `{"prompt", "answer", "forget"}` JSON object per line.
    pub fn forget_jsonl(&self) -> anyhow::Result<String> {
        let mut s = String::new();
        for (prompt, _, answer, forget) in self.rows()? {
            s.push_str(
                &serde_json::json!({"prompt": prompt, "answer": answer, "forget": forget})
                    .to_string(),
            );
            s.push('\n');
        }
        Ok(s)
    }
}

#[typetag::serde(name = "facts")]
impl Task for Facts {
    fn build(&self, _seed: u64) -> anyhow::Result<TaskData> {
        let mut alphabet = String::from("who:=A");
        for c in CONSONANTS.iter().chain(VOWELS) {
            if !alphabet.contains(*c as char) {
                alphabet.push(*c as char);
            }
        }
        let tokenizer = CharTokenizer::new(&alphabet)?;
        let problems: Vec<Problem> = self
            .rows()?
            .into_iter()
            .enumerate()
            .map(|(i, (prompt, solution, answer, forget))| Problem {
                id: format!("{}-{i:05}", if forget { "forget" } else { "retain" }),
                prompt,
                solution,
                answer,
                difficulty: forget as u32,
            })
            .collect();
        Ok(TaskData {
            train: problems.clone(),
            test: problems,
            tokenizer: Arc::new(tokenizer),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_forget_and_retain_facts() {
        let f = Facts {
            facts: 10,
            forget: 3,
            facts_seed: 1,
        };
        let d = f.build(99).unwrap();
        assert_eq!(d.train, d.test);
        assert_eq!(d.train.len(), 10);
        // the first 3 are the forget set, difficulty 1
        let forget: Vec<u32> = d.train.iter().map(|p| p.difficulty).collect();
        assert_eq!(forget, vec![1, 1, 1, 0, 0, 0, 0, 0, 0, 0]);
        for p in &d.train {
            // who: + 6 letters + =, A: + 4 letters
            assert_eq!(p.prompt.len(), 11, "{p:?}");
            assert_eq!(p.solution, format!("A:{}", p.answer));
            assert_eq!(p.answer.len(), 4);
            let ids = d
                .tokenizer
                .encode(&format!("{}{}", p.prompt, p.solution))
                .unwrap();
            assert_eq!(
                d.tokenizer.decode(&ids),
                format!("{}{}", p.prompt, p.solution)
            );
        }
        // the run seed does not change the facts
        assert_eq!(f.build(1).unwrap().train, d.train);
        assert!(
            Facts {
                facts: 3,
                forget: 3,
                facts_seed: 1
            }
            .build(0)
            .is_err()
        );
    }

    #[test]
    fn the_shipped_forget_file_matches_the_default_task() {
        // data-samples/guard_facts.jsonl (recipes/guard.yaml's forget_path) must be what
        // the default `facts` task writes
        // (FOIL_WRITE_GUARD_FACTS=1 cargo test -p foil-data facts rewrites it)
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../data-samples/guard_facts.jsonl"
        );
        if std::env::var_os("FOIL_WRITE_GUARD_FACTS").is_some() {
            std::fs::write(path, Facts::default().forget_jsonl().unwrap()).unwrap();
        }
        let shipped = std::fs::read_to_string(path).unwrap();
        assert_eq!(shipped, Facts::default().forget_jsonl().unwrap());
        let lines: Vec<&str> = shipped.lines().collect();
        assert_eq!(lines.len(), 200);
        assert!(lines[0].contains("\"forget\":true") && lines[20].contains("\"forget\":false"));
    }
}
