//! `parquet`: problems from a Parquet file, with the same recipe fields, field mapping,
//! splits, tokenizer and errors as the `jsonl` task ([`crate::jsonl_task::DataFile`],
//! [`crate::rows`]); only the reader differs. Needs foil-data's cargo feature `parquet`
//! (off by default: see docs/datasets.md).
//!
//! ```yaml
//! # GSM8K shape, as Hugging Face datasets ship it (data/test-00000-of-00001.parquet)
//! task: {type: parquet, path: data-samples/gsm8k_sample.parquet, test_fraction: 0.25}
//! # MATH / MATH-500 shape
//! task: {type: parquet, path: data-samples/math_sample.parquet, prompt_field: problem,
//!        solution_field: solution, answer_extract: field, difficulty_field: level}
//! ```
//!
//! **Rows → records.** Each row becomes the JSON object the JSONL path would read
//! (`parquet::record::Row::to_json_value`): strings stay strings, integers and floats
//! become JSON numbers, lists become arrays (so a ranking's `responses` works with
//! `solution_template: "{{ responses[0] }}"`), structs and maps become objects, binary
//! becomes base64 text. A null top-level field is left out of the record, as a missing
//! key would be in JSONL, so mapping it is the same error (`no field "answer"`).
//!
//! **Locations.** Rows are numbered from 1 across row groups; errors read
//! `FILE row N: bad record …`, and `skip_bad_lines` skips and counts bad rows as for JSONL.
//! A file that is not Parquet, or a row that cannot be decoded (a corrupt page), is an
//! error naming the file (and the row), whatever `skip_bad_lines` says.
//!
//! The sample files `data-samples/{gsm8k,math}_sample.parquet` are written
//! from the JSONL samples by [`crate::parquet_rows::write_jsonl_as_parquet`] (`cargo test -p foil-data
//! --features parquet -- --ignored write_parquet_samples`), and the tests check that the
//! `parquet` and `jsonl` tasks give identical problems.

use foil_core::{Task, TaskData, register_part};
use serde::{Deserialize, Serialize};

use crate::jsonl_task::DataFile;
use crate::parquet_rows::read_parquet;

/// Recipe part: `task: {type: parquet, path: FILE, ...}` (fields: [`DataFile`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(transparent)]
pub struct Parquet(pub DataFile);

register_part!(
    Task,
    "parquet",
    Parquet,
    "problems from a Parquet file (no arrow): the jsonl task's field mapping, errors with file and row"
);

#[typetag::serde(name = "parquet")]
impl Task for Parquet {
    fn build(&self, seed: u64) -> anyhow::Result<TaskData> {
        self.0.build_with("parquet", seed, read_parquet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonl_task::Jsonl;
    use crate::parquet_rows::{write_jsonl_as_parquet, write_table};
    use crate::rows::AnswerExtract;
    use crate::testutil::{obj, samples};
    use std::path::Path;

    /// The committed samples: regenerate with
    /// `cargo test -p foil-data -- --ignored write_parquet_samples`.
    #[test]
    #[ignore]
    fn write_parquet_samples() {
        for s in ["gsm8k_sample", "math_sample", "pref_arith_pairs"] {
            let n = write_jsonl_as_parquet(
                Path::new(&samples(&format!("{s}.jsonl"))),
                Path::new(&samples(&format!("{s}.parquet"))),
            )
            .unwrap();
            assert!(n > 0);
        }
    }

    #[test]
    fn parquet_and_jsonl_tasks_give_identical_problems() {
        let gsm = |ext: &str| DataFile {
            path: samples(&format!("gsm8k_sample.{ext}")),
            test_fraction: 0.25,
            template: "Question: {{ question }}\nAnswer:".into(),
            ..Default::default()
        };
        let (p, j) = (
            Parquet(gsm("parquet")).build(3).unwrap(),
            Jsonl(gsm("jsonl")).build(3).unwrap(),
        );
        // 8 rows, ceil(0.25 · 8) = 2 held out by the same seeded shuffle
        assert_eq!((p.train.len(), p.test.len()), (6, 2));
        assert_eq!((&p.train, &p.test), (&j.train, &j.test));
        assert_eq!(p.tokenizer.vocab_size(), j.tokenizer.vocab_size());
        let first = p
            .train
            .iter()
            .chain(&p.test)
            .find(|q| q.id == "gsm8k_sample:1");
        // row 1: 16 − 3 − 4 = 9 eggs at $2 → 18
        assert_eq!(first.unwrap().answer, "18");

        let math = |ext: &str| DataFile {
            path: samples(&format!("math_sample.{ext}")),
            test_fraction: 0.0,
            prompt_field: "problem".into(),
            solution_field: "solution".into(),
            answer_extract: AnswerExtract::Field,
            difficulty_field: "level".into(),
            id_field: "unique_id".into(),
            limit: 7,
            ..Default::default()
        };
        let (p, j) = (
            Parquet(math("parquet")).build(0).unwrap(),
            Jsonl(math("jsonl")).build(0).unwrap(),
        );
        assert_eq!(p.train.len(), 7);
        assert_eq!(p.train, j.train);
        assert!(p.train.iter().all(|q| (1..=5).contains(&q.difficulty)));
    }

    #[test]
    fn bad_rows_name_file_and_row_or_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.parquet");
        // row 2 has a null answer, row 3 an answer without "####"
        write_table(
            &path,
            &[
                obj(serde_json::json!({"question": "a", "answer": "#### 1"})),
                obj(serde_json::json!({"question": "b"})),
                obj(serde_json::json!({"question": "c", "answer": "3"})),
                obj(serde_json::json!({"question": "d", "answer": "#### 4"})),
            ],
        )
        .unwrap();
        let shown = path.display().to_string();
        let mut spec = DataFile {
            path: shown.clone(),
            test_fraction: 0.0,
            ..Default::default()
        };
        let e = format!("{:#}", Parquet(spec.clone()).build(0).unwrap_err());
        // the null is left out, so it reads as a missing field
        assert!(e.contains(&format!("{shown} row 2")), "{e}");
        assert!(
            e.contains("no field \"answer\" (the record has question)"),
            "{e}"
        );
        spec.skip_bad_lines = true;
        let d = Parquet(spec.clone()).build(0).unwrap();
        // rows 1 and 4 survive
        let ids: Vec<&str> = d.train.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["bad:1", "bad:4"]);
        // limit counts accepted rows: the first good one only
        spec.limit = 1;
        assert_eq!(Parquet(spec).build(0).unwrap().train.len(), 1);

        // not Parquet at all: an error naming the file, skip or not
        let jsonl = samples("gsm8k_sample.jsonl");
        let e = format!(
            "{:#}",
            Parquet(DataFile {
                path: jsonl.clone(),
                skip_bad_lines: true,
                ..Default::default()
            })
            .build(0)
            .unwrap_err()
        );
        assert!(
            e.contains(&jsonl) && e.contains("not a readable Parquet file"),
            "{e}"
        );
    }

    #[test]
    fn recipe_fields_parse() {
        let t: Box<dyn Task> = serde_json::from_str(
            r#"{"type": "parquet", "path": "x.parquet", "prompt_field": "problem", "answer_extract": "boxed"}"#,
        )
        .unwrap();
        assert!(format!("{t:?}").contains("Parquet") && format!("{t:?}").contains("Boxed"));
        assert!(
            serde_json::from_str::<Box<dyn Task>>(r#"{"type": "parquet", "paht": "x"}"#).is_err()
        );
    }
}
