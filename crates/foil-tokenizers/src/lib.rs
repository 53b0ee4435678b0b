//! # foil-tokenizers
//!
//! Hugging Face tokenizers and chat templates for foil's pretrained policies.
//!
//! - [`HfTokenizer`] implements [`foil_core::tokenizer::Tokenizer`] over the `tokenizers`
//!   crate (pure Rust: `fancy-regex`, no oniguruma), loaded from a model directory
//!   ([`HfTokenizer::from_dir`]: `tokenizer.json`, `tokenizer_config.json`, …) or rebuilt
//!   from a GGUF file's vocabulary ([`HfTokenizer::from_gguf_vocab`], [`GgufVocab`]).
//! - [`PromptFormat`] (a recipe field) says whether prompts are encoded raw or through the
//!   model's chat template.
//! - [`ChatTemplate`] renders Jinja chat templates with `minijinja`, the way transformers'
//!   `apply_chat_template` does.
//!
//! Parity with transformers is checked against fixtures made by
//! `scripts/fixtures/make_tokenizer_fixtures.py` (`tests/fixtures/`).

pub mod chat_template;
mod gguf_build;
pub mod gguf_vocab;
pub mod hf;

pub use chat_template::{ChatMessage, ChatTemplate};
pub use gguf_vocab::GgufVocab;
pub use hf::{HfTokenizer, PromptFormat};
