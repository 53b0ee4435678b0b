//! reasoning-gym's countdown dump (`cargo xtask fetch reasoning-gym`, data/ is git-ignored;
//! skipped with a message when absent) read by the `jsonl` task with the mapping of
//! `recipes/countdown_reasoning_gym.yaml`: the answer `NUMBERS=TARGET` is built from
//! `metadata` by `answer_template`, and every shipped solution expression is judged correct
//! by the `countdown` verifier with an empty marker, while a perturbed one is not.

use std::path::PathBuf;

use foil_core::{Task, Verifier};
use foil_data::rows::AnswerExtract;
use foil_data::{DataFile, Jsonl};
use foil_verifiers::countdown::Countdown;

#[test]
fn shipped_countdown_solutions_verify() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/reasoning_gym/countdown.jsonl");
    if !path.exists() {
        eprintln!(
            "skipped: {} absent (run `cargo xtask fetch all`)",
            path.display()
        );
        return;
    }
    let d = Jsonl(DataFile {
        path: path.to_string_lossy().into_owned(),
        test_fraction: 0.0,
        prompt_field: "question".into(),
        answer_template: "{{ metadata.numbers | join(',') }}={{ metadata.target }}".into(),
        answer_extract: AnswerExtract::Field,
        solution_field: "answer".into(),
        id_field: "id".into(),
        ..Default::default()
    })
    .build(0)
    .unwrap();
    assert_eq!(d.train.len(), 500);
    let v = Countdown {
        marker: String::new(),
        use_all: true,
    };
    for p in &d.train {
        assert!(
            v.verify(p, &p.solution).correct,
            "{}: {:?} should reach {:?}",
            p.id,
            p.solution,
            p.answer
        );
        // the same expression with its first number changed by one misses the target
        // or uses a number that was not given
        let mut wrong = p.solution.clone();
        let at = wrong.find(|c: char| c.is_ascii_digit()).unwrap();
        let end = wrong[at..]
            .find(|c: char| !c.is_ascii_digit())
            .map_or(wrong.len(), |k| at + k);
        let n: i64 = wrong[at..end].parse().unwrap();
        wrong.replace_range(at..end, &(n + 1).to_string());
        assert!(!v.verify(p, &wrong).correct, "{}: {wrong:?}", p.id);
    }
}
