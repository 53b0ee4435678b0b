//! # foil-models
//!
//! Policies. `tiny_gpt` is a small pre-norm decoder trained from scratch, used by the
//! procedural tasks and the reproduction checks.

pub mod adamw;
pub mod host;
pub mod precision;
pub mod tiny_gpt;
pub mod trainable;

pub use tiny_gpt::{TinyGpt, TinyGptModel};
pub mod hf;
