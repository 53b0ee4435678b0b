//! Hang guard: every verifier returns quickly on hostile responses (deep nesting, 1 MB
//! strings, unbalanced braces, many markers). The bound (1 s per input) is generous — a
//! hang or a quadratic blow-up, not speed, is what this catches; typical times measured
//! here are printed with `--nocapture` (see docs/math-verifier.md).

use std::time::{Duration, Instant};

use foil_core::{Problem, Verifier};

fn hostile() -> Vec<(String, String)> {
    let mb = 1 << 20;
    let mut v: Vec<(&str, String)> = vec![
        ("nested boxed", "\\boxed{".repeat(100_000)),
        (
            "nested boxed closed",
            format!("{}3{}", "\\boxed{".repeat(50_000), "}".repeat(50_000)),
        ),
        ("open braces", "{".repeat(mb)),
        ("close braces", "}".repeat(mb)),
        ("1 MB letters", "x".repeat(mb)),
        ("1 MB digits", "9".repeat(mb)),
        ("1 MB digits+commas", "1,".repeat(mb / 2)),
        ("1 MB spaces+digit", format!("{} 3", " ".repeat(mb))),
        (
            "parens",
            format!("{}3{}", "(".repeat(mb / 2), ")".repeat(mb / 2)),
        ),
        ("fracs", "\\frac{".repeat(mb / 6)),
        ("dollars", "$".repeat(mb)),
        ("dollar pairs", "$1$ ".repeat(mb / 4)),
        ("answers", "answer: 1 = ".repeat(mb / 12)),
        ("hashes", "####".repeat(mb / 4)),
        ("boxes", "\\boxed{1}".repeat(mb / 9)),
        ("powers", format!("\\boxed{{{}2}}", "2^".repeat(100_000))),
        ("sums", format!("\\boxed{{{}1}}", "1+".repeat(100_000))),
        (
            "commas in box",
            format!("\\boxed{{{}1}}", "1,".repeat(100_000)),
        ),
        ("percent", "%".repeat(mb)),
        ("backslashes", "\\".repeat(mb)),
        ("unicode", "é∞√π".repeat(mb / 10)),
        ("text cmds", "\\text{".repeat(mb / 6)),
        ("left right", "\\left(".repeat(mb / 6)),
        ("letters", "(B) ".repeat(mb / 4)),
        ("think tags", "<think>".repeat(mb / 7)),
        ("nul", "\0".repeat(mb)),
    ];
    // the same inputs behind a plausible prefix
    let extra: Vec<(&str, String)> = v
        .iter()
        .take(6)
        .map(|(n, s)| (*n, format!("The answer is {s}")))
        .collect();
    v.extend(extra);
    v.into_iter().map(|(n, s)| (n.to_string(), s)).collect()
}

#[test]
fn every_verifier_returns_quickly_on_hostile_output() {
    // reference the crate so its typetag registrations are linked in
    let _ = foil_verifiers::Math::default();
    let verifiers: Vec<Box<dyn Verifier>> = [
        r#"{"type":"math"}"#,
        r#"{"type":"multiple_choice"}"#,
        r#"{"type":"exact"}"#,
        r#"{"type":"regex"}"#,
        r#"{"type":"format"}"#,
        r#"{"type":"sum","verifiers":[{"verifier":{"type":"math"}},{"verifier":{"type":"format"},"weight":0.1}]}"#,
        r#"{"type":"all","verifiers":[{"type":"math"},{"type":"format"}]}"#,
    ]
    .iter()
    .map(|j| serde_json::from_str(j).expect("verifier json"))
    .collect();
    let golds = [
        "3",
        "B",
        r"\frac{1}{2}",
        r"\{1,2\}",
        "x^2+1",
        &"9".repeat(2000),
    ];
    let mut worst = (Duration::ZERO, String::new());
    for (name, response) in hostile() {
        for gold in golds {
            let p = Problem {
                id: "h".into(),
                prompt: String::new(),
                solution: String::new(),
                answer: gold.to_string(),
                difficulty: 0,
            };
            for v in &verifiers {
                let t = Instant::now();
                let _ = v.verify(&p, &response);
                let _ = v.extract(&response);
                let dt = t.elapsed();
                if dt > worst.0 {
                    worst = (dt, format!("{name} / gold {:.10} / {v:?}", gold));
                }
                assert!(dt < Duration::from_secs(1), "{name}: {dt:?} with {v:?}");
            }
        }
    }
    println!(
        "slowest hostile input: {:?} ({})",
        worst.0,
        worst.1.chars().take(160).collect::<String>()
    );
}
