//! What the llama.cpp server tests share: where the model and a Python with
//! `llama_cpp.server` are (each test skips with a message without them), a free port and
//! the two arithmetic problems they sample.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use foil_core::Problem;

/// `models/SmolLM2-135M-Instruct.Q4_1.gguf`, or `None` after saying how to fetch it.
pub fn smollm2_gguf() -> Option<PathBuf> {
    let gguf = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../models/SmolLM2-135M-Instruct.Q4_1.gguf");
    if gguf.exists() {
        return Some(gguf);
    }
    eprintln!(
        "skipping: {} absent (cargo xtask fetch smollm2)",
        gguf.display()
    );
    None
}

/// A Python that imports `llama_cpp.server`: `$FOIL_LLAMA_PYTHON`, else the venv the
/// install instructions make (`~/llama-venv/bin/python`), else `python3`; `None` after
/// saying how to get one.
pub fn llama_server_python() -> Option<String> {
    let candidates: Vec<String> = match std::env::var("FOIL_LLAMA_PYTHON") {
        Ok(py) => vec![py],
        Err(_) => std::env::var("HOME")
            .map(|home| format!("{home}/llama-venv/bin/python"))
            .into_iter()
            .chain(["python3".to_string()])
            .collect(),
    };
    let found = candidates.into_iter().find(|py| {
        Command::new(py)
            .args(["-c", "import llama_cpp.server"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if found.is_none() {
        eprintln!(
            "skipping: no Python with llama_cpp.server (set FOIL_LLAMA_PYTHON to one; \
             pip install 'llama-cpp-python[server]')"
        );
    }
    found
}

/// A TCP port free right now on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `Q: What is 12 plus 30?` and `7 plus 8`.
pub fn problems() -> Vec<Problem> {
    [("a", 12, 30), ("b", 7, 8)]
        .iter()
        .map(|(id, x, y)| Problem {
            id: id.to_string(),
            prompt: format!("Q: What is {x} plus {y}?\nA:"),
            solution: String::new(),
            answer: (x + y).to_string(),
            difficulty: 0,
        })
        .collect()
}
