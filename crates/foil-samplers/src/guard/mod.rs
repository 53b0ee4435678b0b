//! GUARD: generation-time unlearning as logits processors (methods.md §12; GUARD, "adaptive
//! restriction and detection", arXiv May 2025, id not verified in this session).
//!
//! Without touching the weights: a prompt classifier decides whether a prompt targets
//! forgotten content, the forgotten answer is retrieved, and while decoding, tokens that
//! would complete a forbidden token sequence of that answer are removed (hard, a trie) and
//! tokens that make the current word look like a forbidden word are penalised or pruned
//! (soft). Non-forget prompts decode normally.
//!
//! - [`forbidden_sequences`]: the hard trie matcher (also a stand-alone processor);
//! - [`similarity_penalty`]: the soft matcher (also a stand-alone processor);
//! - [`classifier`]: the prompt classifier and retrieval features;
//! - [`guard`]: the composite `guard` processor.
//!
//! Not reproduced: beam search (width 7; these processors act on the local sampler's
//! sampled or greedy decoding), SBERT embeddings (character n-gram features instead), an
//! MLP over the policy's hidden states (a logistic regression over prompt character
//! n-grams instead).

pub mod classifier;
pub mod forbidden_sequences;
#[allow(clippy::module_inception)]
pub mod guard;
pub mod similarity_penalty;

pub use classifier::PromptClassifier;
pub use forbidden_sequences::{ForbiddenSequences, Trie};
pub use guard::Guard;
pub use similarity_penalty::SimilarityPenalty;
