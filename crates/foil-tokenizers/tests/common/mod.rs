//! Shared helpers of the integration tests: fixture paths and JSON loading.

#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::Value;

/// `tests/fixtures/` (made by `scripts/fixtures/make_tokenizer_fixtures.py`).
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// `models/tokenizer-refs/` (git-ignored; written by the same script), or
/// `$FOIL_TOKENIZER_REFS`.
pub fn refs_dir() -> PathBuf {
    std::env::var_os("FOIL_TOKENIZER_REFS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/tokenizer-refs")
        })
}

pub fn read_json(path: impl AsRef<std::path::Path>) -> Value {
    let path = path.as_ref();
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

pub fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("an id list")
        .iter()
        .map(|x| x.as_u64().expect("an id") as u32)
        .collect()
}

/// The pinned `strftime_now` time of the chat-template fixtures.
pub fn pinned_now(doc: &Value) -> chrono::NaiveDateTime {
    chrono::NaiveDateTime::parse_from_str(doc["now"].as_str().expect("now"), "%Y-%m-%dT%H:%M:%S")
        .expect("an ISO time")
}
