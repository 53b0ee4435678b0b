//! The `local` sampler on SmolLM2-135M-Instruct (`cargo xtask fetch smollm2`), on the CPU:
//! 8 chat prompts, `N` completions each (default 1) of at most 64 tokens (temperature 1;
//! a row that samples the end token stops), `THREADS` row groups (default 0: one per
//! core). Prints the tokens and tokens per second of three calls.
//!
//! `cargo run --profile dev -p foil-benches --example smollm2_sample`
use std::time::Instant;

use foil_core::{PolicyConfig, Problem, Sampler};
use foil_samplers::Local;

fn main() -> anyhow::Result<()> {
    foil::link_all();
    foil::keep_freed_pages();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models/SmolLM2-135M-Instruct.Q4_1.gguf");
    anyhow::ensure!(
        path.exists(),
        "{} is missing: run `cargo xtask fetch smollm2`",
        path.display()
    );
    let hf: foil_models::hf::policy::Hf = serde_json::from_value(serde_json::json!({
        "path": path, "prompt": {"chat": {}}
    }))?;
    let tokenizer = hf.tokenizer()?.expect("the GGUF carries its tokenizer");
    let device = foil_core::backend::parse_device("cpu")?;
    let model = hf.load_inference(&device)?;
    let problems: Vec<Problem> = (0..8)
        .map(|i| Problem {
            id: format!("p{i}"),
            prompt: format!("Write a short story about the number {i}."),
            solution: String::new(),
            answer: String::new(),
            difficulty: 0,
        })
        .collect();
    let threads: usize = std::env::var("THREADS").map_or(Ok(0), |t| t.parse())?;
    let n: usize = std::env::var("N").map_or(Ok(1), |t| t.parse())?;
    let sampler = Local {
        n,
        temperature: 1.0,
        max_tokens: 64,
        threads,
        ..Default::default()
    };
    for call in 0..3 {
        let t = Instant::now();
        let groups = sampler.sample(model.as_ref(), tokenizer.as_ref(), &problems, call)?;
        let tokens: usize = groups
            .iter()
            .flat_map(|g| &g.completions)
            .map(|c| c.tokens.len())
            .sum();
        let s = t.elapsed().as_secs_f64();
        println!(
            "call {call} (n {n}, threads {threads}): {tokens} tokens in {s:.2} s, {:.0} tokens/s",
            tokens as f64 / s
        );
    }
    Ok(())
}
