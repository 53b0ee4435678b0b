//! `jsonl`: problems from a JSONL file (one JSON object per line), mapped to prompt,
//! answer and demonstration by recipe fields (see [`crate::rows`] for the mapping).
//!
//! ```yaml
//! # GSM8K shape: {"question": "...", "answer": "... #### 72"}
//! task: {type: jsonl, path: data-samples/gsm8k_sample.jsonl, test_fraction: 0.25,
//!        template: "Question: {{ question }}\nAnswer:", answer_extract: gsm8k_hash}
//! # MATH / MATH-500 shape: {"problem", "solution", "answer", "level", ...}
//! task: {type: jsonl, path: data-samples/math_sample.jsonl, prompt_field: problem,
//!        solution_field: solution, answer_extract: field, difficulty_field: level}
//! ```
//!
//! **Splits.** With `test_path`, train comes from `path` and test from `test_path`.
//! Without it, `test_fraction` of the records of `path` (rounded up, at least one when
//! the fraction is positive) are held out, chosen by a shuffle seeded from the run seed
//! (`rng::rng(seed, [0xDA7A])`); both splits keep file order. `limit` / `test_limit` keep
//! the first that many good records of each file (0 = all).
//!
//! **Bad lines.** A line that is not a JSON object, lacks a mapped field, fails its
//! template or answer extraction, or (with an explicit `alphabet`) holds a character
//! outside it, is an error naming the file, the line (1-based) and the field; with
//! `skip_bad_lines: true` it is skipped and counted (printed to stderr). A file left with
//! no records is an error.
//!
//! **Tokenizer.** The task's own tokenizer is a character tokenizer. `alphabet: ""` (the
//! default) builds it from printable ASCII, newline, and every other character the loaded
//! records use, so any file works with a model trained from scratch (`tiny_gpt`). An
//! explicit `alphabet` fixes the vocabulary and makes out-of-alphabet text a bad line.
//! A policy that brings its own tokenizer (`hf`: SmolLM2, Qwen2, ... from `tokenizer.json`
//! or GGUF) replaces the task's, and free text of any script goes through it.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, ensure};
use foil_core::{Problem, Task, TaskData, register_part, rng};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::char_tokenizer::CharTokenizer;
use crate::rows::{AnswerExtract, FieldMap, Mapper, Record, Records};

/// The recipe fields shared by the `jsonl` and `parquet` tasks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DataFile {
    /// The data file (relative paths are read from the working directory).
    pub path: String,
    /// A separate held-out file; empty: split `path` by `test_fraction`.
    pub test_path: String,
    /// Fraction of `path` held out when there is no `test_path`.
    pub test_fraction: f64,
    /// Keep the first this many good records of `path` (0 = all).
    pub limit: usize,
    /// Keep the first this many good records of `test_path` (0 = all).
    pub test_limit: usize,
    /// Skip and count bad records instead of failing on the first.
    pub skip_bad_lines: bool,
    /// The character tokenizer's alphabet; empty: printable ASCII + newline + what the
    /// data uses.
    pub alphabet: String,
    // the field mapping (crate::rows::FieldMap; repeated here since serde's
    // deny_unknown_fields does not combine with flatten)
    pub prompt_field: String,
    pub template: String,
    pub answer_field: String,
    pub answer_template: String,
    pub answer_extract: AnswerExtract,
    pub solution_field: String,
    pub solution_template: String,
    pub id_field: String,
    pub difficulty_field: String,
}

impl Default for DataFile {
    fn default() -> Self {
        let m = FieldMap::default();
        Self {
            path: String::new(),
            test_path: String::new(),
            test_fraction: 0.1,
            limit: 0,
            test_limit: 0,
            skip_bad_lines: false,
            alphabet: String::new(),
            prompt_field: m.prompt_field,
            template: m.template,
            answer_field: m.answer_field,
            answer_template: m.answer_template,
            answer_extract: m.answer_extract,
            solution_field: m.solution_field,
            solution_template: m.solution_template,
            id_field: m.id_field,
            difficulty_field: m.difficulty_field,
        }
    }
}

/// Reads one file: `(path, skip_bad_lines, limit, check)` → records.
pub type Reader = fn(
    &Path,
    bool,
    usize,
    &mut dyn FnMut(&Record) -> anyhow::Result<()>,
) -> anyhow::Result<Records>;

impl DataFile {
    pub fn field_map(&self) -> FieldMap {
        FieldMap {
            prompt_field: self.prompt_field.clone(),
            template: self.template.clone(),
            answer_field: self.answer_field.clone(),
            answer_template: self.answer_template.clone(),
            answer_extract: self.answer_extract,
            solution_field: self.solution_field.clone(),
            solution_template: self.solution_template.clone(),
            id_field: self.id_field.clone(),
            difficulty_field: self.difficulty_field.clone(),
        }
    }

    /// Builds the splits with `read` for the file format (`kind` names the task in errors).
    pub fn build_with(&self, kind: &str, seed: u64, read: Reader) -> anyhow::Result<TaskData> {
        ensure!(!self.path.is_empty(), "{kind}: set path");
        ensure!(
            (0.0..1.0).contains(&self.test_fraction),
            "{kind}: test_fraction must be in [0, 1), got {}",
            self.test_fraction
        );
        let mapper = Mapper::new(&self.field_map()).context(kind.to_string())?;
        let fixed: Option<Vec<char>> =
            (!self.alphabet.is_empty()).then(|| self.alphabet.chars().collect());
        let load = |path: &str, limit: usize| -> anyhow::Result<Vec<Problem>> {
            let mut problems = Vec::new();
            let mut check = |r: &Record| -> anyhow::Result<()> {
                let p = mapper.problem(r)?;
                if let Some(a) = &fixed {
                    for (name, text) in [
                        ("prompt", &p.prompt),
                        ("solution", &p.solution),
                        ("answer", &p.answer),
                    ] {
                        if let Some(c) = text.chars().find(|c| !a.contains(c)) {
                            anyhow::bail!(
                                "the {name} holds {c:?}, which is not in the alphabet {:?} \
                                 (leave alphabet empty to build it from the data, or use a \
                                 policy with its own tokenizer)",
                                self.alphabet
                            );
                        }
                    }
                }
                problems.push(p);
                Ok(())
            };
            let recs = read(Path::new(path), self.skip_bad_lines, limit, &mut check)?;
            if recs.skipped > 0 {
                eprintln!(
                    "{kind}: {path}: skipped {} bad record(s) of {}",
                    recs.skipped, recs.seen
                );
            }
            ensure!(
                !problems.is_empty(),
                "{path} holds no usable records ({} seen, {} skipped)",
                recs.seen,
                recs.skipped
            );
            Ok(problems)
        };
        let all = load(&self.path, self.limit)?;
        let (train, test) = if self.test_path.is_empty() {
            split(all, self.test_fraction, seed)
        } else {
            (all, load(&self.test_path, self.test_limit)?)
        };
        let tokenizer = match &fixed {
            Some(_) => {
                CharTokenizer::new(&self.alphabet).with_context(|| format!("{kind}: alphabet"))?
            }
            None => CharTokenizer::new(&data_alphabet(train.iter().chain(&test)))?,
        };
        Ok(TaskData {
            train,
            test,
            tokenizer: Arc::new(tokenizer),
        })
    }
}

/// Holds out `ceil(fraction · n)` problems picked by a seeded shuffle; both parts keep
/// their order.
pub fn split(all: Vec<Problem>, fraction: f64, seed: u64) -> (Vec<Problem>, Vec<Problem>) {
    let n = all.len();
    let k = ((fraction * n as f64).ceil() as usize).min(n);
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut rng::rng(seed, &[0xDA7A]));
    let mut held = vec![false; n];
    for &i in &idx[..k] {
        held[i] = true;
    }
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (p, h) in all.into_iter().zip(held) {
        if h { test.push(p) } else { train.push(p) }
    }
    (train, test)
}

/// Printable ASCII and newline, then every other character of the problems, sorted.
pub fn data_alphabet<'a>(problems: impl Iterator<Item = &'a Problem>) -> String {
    let mut extra = BTreeSet::new();
    for p in problems {
        for t in [&p.prompt, &p.solution, &p.answer] {
            extra.extend(t.chars().filter(|c| !(' '..='~').contains(c) && *c != '\n'));
        }
    }
    let mut a: String = (' '..='~').collect();
    a.push('\n');
    a.extend(extra);
    a
}

/// Recipe part: `task: {type: jsonl, path: FILE, ...}` (fields: [`DataFile`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(transparent)]
pub struct Jsonl(pub DataFile);

register_part!(
    Task,
    "jsonl",
    Jsonl,
    "problems from a JSONL file: prompt_field / template, answer_field + answer_extract (gsm8k_hash, boxed, ...), errors with file:line"
);

fn read_jsonl(
    path: &Path,
    skip: bool,
    limit: usize,
    check: &mut dyn FnMut(&Record) -> anyhow::Result<()>,
) -> anyhow::Result<Records> {
    crate::rows::read_jsonl(path, skip, limit, check)
}

#[typetag::serde(name = "jsonl")]
impl Task for Jsonl {
    fn build(&self, seed: u64) -> anyhow::Result<TaskData> {
        self.0.build_with("jsonl", seed, read_jsonl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::samples;
    use std::io::Write;

    fn file(lines: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new()
            .suffix(".jsonl")
            .tempfile()
            .unwrap();
        f.write_all(lines.as_bytes()).unwrap();
        f
    }

    #[test]
    fn gsm8k_sample_loads_and_splits_by_seed() {
        let t = Jsonl(DataFile {
            path: samples("gsm8k_sample.jsonl"),
            test_fraction: 0.25,
            ..Default::default()
        });
        let a = t.build(1).unwrap();
        // 8 records, ceil(0.25 · 8) = 2 held out
        assert_eq!((a.train.len(), a.test.len()), (6, 2));
        assert_eq!(a.train, t.build(1).unwrap().train);
        let ids: BTreeSet<&str> = a
            .train
            .iter()
            .chain(&a.test)
            .map(|p| p.id.as_str())
            .collect();
        assert_eq!(ids.len(), 8);
        // line 1 of the sample: 16 − 3 − 4 = 9 eggs sold at $2 → 18
        let first = a
            .train
            .iter()
            .chain(&a.test)
            .find(|p| p.id == "gsm8k_sample:1")
            .unwrap();
        assert_eq!(first.answer, "18");
        assert!(first.solution.ends_with("#### 18"));
        for p in a.train.iter().chain(&a.test) {
            a.tokenizer.encode(&p.prompt).unwrap();
            a.tokenizer.encode(&p.solution).unwrap();
        }
    }

    #[test]
    fn math_sample_maps_problem_solution_answer() {
        let t = Jsonl(DataFile {
            path: samples("math_sample.jsonl"),
            test_path: samples("math_sample.jsonl"),
            test_limit: 2,
            prompt_field: "problem".into(),
            solution_field: "solution".into(),
            answer_extract: AnswerExtract::Field,
            difficulty_field: "level".into(),
            id_field: "unique_id".into(),
            ..Default::default()
        });
        let d = t.build(0).unwrap();
        assert_eq!(d.test.len(), 2);
        assert!(d.train.len() >= 6);
        for p in &d.train {
            // every sample solution boxes its answer
            assert_eq!(
                crate::rows::boxed(&p.solution).as_deref(),
                Some(p.answer.as_str())
            );
            assert!((1..=5).contains(&p.difficulty));
        }
    }

    #[test]
    fn bad_lines_name_file_line_and_field_or_are_skipped() {
        let f = file(
            "{\"question\": \"a\", \"answer\": \"#### 1\"}\n\n\
             {\"question\": \"b\", \"answr\": \"#### 2\"}\n\
             not json\n\
             {\"question\": \"c\", \"answer\": \"#### 3\"}\n",
        );
        let path = f.path().to_string_lossy().into_owned();
        let mut spec = DataFile {
            path: path.clone(),
            ..Default::default()
        };
        let e = format!("{:#}", Jsonl(spec.clone()).build(0).unwrap_err());
        // the blank line 2 still counts for numbering: the bad record is on line 3
        assert!(e.contains(&format!("{path} line 3")), "{e}");
        assert!(e.contains("no field \"answer\""), "{e}");
        spec.skip_bad_lines = true;
        let d = Jsonl(spec).build(0).unwrap();
        // lines 1 and 5 survive; ceil(0.1 · 2) = 1 held out
        assert_eq!(d.train.len() + d.test.len(), 2);
    }

    #[test]
    fn fixed_alphabet_rejects_other_characters_at_their_line() {
        let f = file(
            "{\"question\": \"2+2\", \"answer\": \"#### 4\"}\n\
             {\"question\": \"café?\", \"answer\": \"#### 4\"}\n",
        );
        let path = f.path().to_string_lossy().into_owned();
        let spec = DataFile {
            path: path.clone(),
            alphabet: "0123456789+#? abcdefghijklmnopqrstuvwxyz".into(),
            test_fraction: 0.0,
            ..Default::default()
        };
        let e = format!("{:#}", Jsonl(spec.clone()).build(0).unwrap_err());
        assert!(e.contains(&format!("{path} line 2")), "{e}");
        assert!(e.contains("'é'"), "{e}");
        // without a fixed alphabet the data's characters join printable ASCII
        let d = Jsonl(DataFile {
            alphabet: String::new(),
            ..spec
        })
        .build(0)
        .unwrap();
        // 95 printable ASCII + newline + 'é' + pad + eos
        assert_eq!(d.tokenizer.vocab_size(), 95 + 1 + 1 + 2);
        assert!(d.test.is_empty());
    }

    #[test]
    fn recipe_fields_deserialise_and_unknown_ones_fail() {
        let t: Box<dyn Task> = serde_json::from_str(
            r#"{"type": "jsonl", "path": "x.jsonl", "prompt_field": "problem", "answer_extract": "boxed"}"#,
        )
        .unwrap();
        assert!(format!("{t:?}").contains("Boxed"));
        assert!(
            serde_json::from_str::<Box<dyn Task>>(r#"{"type": "jsonl", "paht": "x"}"#).is_err()
        );
        let e = format!(
            "{:#}",
            Jsonl(DataFile {
                path: "/no/such.jsonl".into(),
                ..Default::default()
            })
            .build(0)
            .unwrap_err()
        );
        assert!(e.contains("/no/such.jsonl"), "{e}");
    }
}
