//! # foil-samplers
//!
//! Rollout generation. `local` runs the policy in-process: batched, with a KV cache, and
//! without an autodiff graph.

pub mod best_of_n;
pub mod distribution;
pub mod local;

pub use best_of_n::BestOfN;
pub use distribution::Truncation;
pub use local::Local;
