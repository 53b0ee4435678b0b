//! The `openai` sampler against a real server: llama.cpp's (`llama-cpp-python[server]`,
//! PyPI, built from source) serving SmolLM2-135M-Instruct from `models/`.
//!
//! Skipped, with a message, unless both exist:
//! - a Python with `llama_cpp.server`: `$FOIL_LLAMA_PYTHON`, else `~/llama-venv/bin/python`,
//!   else `python3`
//!   (install: `python3 -m venv ~/llama-venv && ~/llama-venv/bin/pip install
//!   'llama-cpp-python[server]'`, ~15 min of C++ on 2 cores, so CI does not);
//! - `models/SmolLM2-135M-Instruct.Q4_1.gguf` (`cargo xtask fetch smollm2`).
//!
//! llama-cpp-python's server ignores `n` (one choice per request) and does not reproduce
//! a per-request `seed`, so the sampler runs with `n_per_request: 1` and the test checks
//! structure, not texts.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use foil_core::backend::parse_device;
use foil_core::{Finish, PolicyConfig, Sampler, Task, Tokenizer};
use foil_gguf::GgufFile;
use foil_samplers::openai::OpenAi;
use foil_tokenizers::HfTokenizer;

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn samples_from_llama_cpp_server_with_smollm2() {
    let Some(gguf) = common::smollm2_gguf() else {
        return;
    };
    let Some(py) = common::llama_server_python() else {
        return;
    };
    let port = common::free_port();
    let _server = Server(
        Command::new(&py)
            .args(["-m", "llama_cpp.server", "--model"])
            .arg(&gguf)
            .args([
                "--port",
                &port.to_string(),
                "--n_ctx",
                "512",
                "--n_threads",
                "2",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}/v1");
    let t = Instant::now();
    while ureq_get_ok(&format!("{base}/models")).is_none() {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    let file = GgufFile::open(&gguf).unwrap();
    let tok = HfTokenizer::from_gguf_vocab(&foil_models::hf::gguf::vocab(&file).unwrap()).unwrap();
    let problems = common::problems();
    let s = OpenAi {
        base_url: base,
        n: 3,
        n_per_request: 1,
        max_tokens: 12,
        stop: vec!["\n".into()],
        concurrency: 2,
        ..Default::default()
    };
    // the model is unused by a remote sampler; any inference model satisfies the signature
    let task = foil_data::Arithmetic {
        train: 1,
        test: 1,
        ..Default::default()
    }
    .build(0)
    .unwrap();
    let tiny = foil_models::TinyGpt {
        d_model: 16,
        layers: 1,
        heads: 2,
        context: 16,
        mlp_ratio: 2,
        init_seed: 0,
        precision: Default::default(),
    }
    .build(
        task.tokenizer.vocab_size(),
        &parse_device("cpu").unwrap(),
        0,
    )
    .unwrap()
    .inference();
    let groups = s.sample(tiny.as_ref(), &tok, &problems, 1).unwrap();
    assert_eq!(groups.len(), 2);
    for g in &groups {
        assert_eq!(g.completions.len(), 3);
        for c in &g.completions {
            assert!(
                !c.text.contains('\n'),
                "stopped at the newline: {:?}",
                c.text
            );
            // our tokenizer is SmolLM2's own, so the ids re-encode the text exactly
            let mut ids = tok.encode(&c.text).unwrap();
            if c.finish == Finish::Eos {
                ids.push(tok.eos_id());
            }
            assert_eq!(c.tokens, ids);
            assert!(c.tokens.len() <= 13);
            assert!(c.logprobs.iter().all(|l| l.is_finite() && *l <= 0.0));
            eprintln!(
                "{}: {:?} ({:?}, {} logprobs)",
                g.problem.id,
                c.text,
                c.finish,
                c.logprobs.len()
            );
        }
    }
    // with the same tokenizer, most completions carry the server's log-probabilities
    let with_lp = groups
        .iter()
        .flat_map(|g| &g.completions)
        .filter(|c| !c.logprobs.is_empty())
        .count();
    assert!(
        with_lp >= 3,
        "{with_lp} of 6 completions kept log-probabilities"
    );
}

/// `Some(())` when GET `url` answers 200.
fn ureq_get_ok(url: &str) -> Option<()> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into();
    agent
        .get(url)
        .call()
        .ok()
        .filter(|r| r.status() == 200)
        .map(|_| ())
}
