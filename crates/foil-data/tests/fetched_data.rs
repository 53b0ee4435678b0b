//! The JSONL that `cargo xtask fetch all` writes into `data/` loads through the `jsonl`
//! task with the mappings docs/datasets.md gives. Each file is skipped, with a message,
//! when it has not been fetched (data/ is git-ignored).

use std::path::PathBuf;

use foil_core::Task;
use foil_data::rows::AnswerExtract;
use foil_data::{DataFile, Jsonl};

fn data(rel: &str) -> Option<String> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data")
        .join(rel);
    if p.exists() {
        Some(p.to_string_lossy().into_owned())
    } else {
        eprintln!(
            "skipped: {} absent (run `cargo xtask fetch all`)",
            p.display()
        );
        None
    }
}

#[test]
fn gsm8k_test100_loads_with_hash_answers() {
    let Some(path) = data("gsm8k_test100/test.jsonl") else {
        return;
    };
    let d = Jsonl(DataFile {
        path,
        test_fraction: 0.25,
        template: "Question: {{ question }}\nAnswer:".into(),
        ..Default::default()
    })
    .build(1)
    .unwrap();
    // 100 items, ceil(0.25 · 100) = 25 held out
    assert_eq!((d.train.len(), d.test.len()), (75, 25));
    for p in d.train.iter().chain(&d.test) {
        assert!(p.answer.parse::<f64>().is_ok(), "{}: {:?}", p.id, p.answer);
        assert!(p.solution.contains("####"));
        d.tokenizer.encode(&p.prompt).unwrap();
    }
}

#[test]
fn champ_loads_270_problems() {
    let Some(path) = data("champ/all.jsonl") else {
        return;
    };
    let d = Jsonl(DataFile {
        path,
        test_fraction: 0.0,
        prompt_field: "problem".into(),
        solution_field: "solution".into(),
        answer_extract: AnswerExtract::Field,
        id_field: "id".into(),
        ..Default::default()
    })
    .build(0)
    .unwrap();
    assert_eq!(d.train.len(), 270);
    assert!(
        d.train
            .iter()
            .any(|p| p.id == "P_Combinatorics_1" && p.answer == "239")
    );
}

#[test]
fn reasoning_gym_dumps_load() {
    for name in ["countdown", "gsm_symbolic", "basic_arithmetic"] {
        let Some(path) = data(&format!("reasoning_gym/{name}.jsonl")) else {
            continue;
        };
        let d = Jsonl(DataFile {
            path,
            test_fraction: 0.1,
            answer_extract: AnswerExtract::Field,
            id_field: "id".into(),
            ..Default::default()
        })
        .build(0)
        .unwrap();
        // 500 items, ceil(0.1 · 500) = 50 held out
        assert_eq!((d.train.len(), d.test.len()), (450, 50), "{name}");
    }
}
