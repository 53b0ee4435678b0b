//! # foil-samplers
//!
//! Rollout generation. `local` runs the policy in-process: batched, with a KV cache, and
//! without an autodiff graph.

pub mod distribution;
pub mod local;

pub use distribution::Truncation;
pub use local::Local;
