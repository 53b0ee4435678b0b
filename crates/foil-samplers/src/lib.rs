//! # foil-samplers
//!
//! Rollout generation. `local` runs the policy in-process: batched, with a KV cache, and
//! without an autodiff graph.

pub mod best_of_n;
pub mod distribution;
pub mod guard;
pub mod local;
pub mod openai;
pub mod rag;
pub mod rag_corpus;
pub mod rag_poison;
pub mod reflexion;
pub mod retriever_bm25;
pub mod retriever_embedding;
pub mod scoring;

pub use best_of_n::BestOfN;
pub use distribution::Truncation;
pub use guard::{ForbiddenSequences, Guard, SimilarityPenalty};
pub use local::Local;
pub use openai::OpenAi;
pub use rag::Rag;
pub use reflexion::Reflexion;
pub use retriever_bm25::Bm25;
pub use retriever_embedding::PolicyEmbedding;

#[cfg(test)]
mod testutil;
