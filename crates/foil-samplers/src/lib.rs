//! # foil-samplers
//!
//! Rollout generation. `local` runs the policy in-process: batched, with a KV cache, and
//! without an autodiff graph.

pub mod best_of_n;
pub mod distribution;
pub mod local;
pub mod openai;
pub mod reflexion;
pub mod scoring;

pub use best_of_n::BestOfN;
pub use distribution::Truncation;
pub use local::Local;
pub use openai::OpenAi;
pub use reflexion::Reflexion;
