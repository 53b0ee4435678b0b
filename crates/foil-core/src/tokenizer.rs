//! The tokenizer interface every policy and sampler uses.

/// Text ↔ token ids. Implementations: the character tokenizer of procedural tasks
/// (`foil-data`), and later Hugging Face `tokenizer.json` files.
pub trait Tokenizer: Send + Sync + std::fmt::Debug {
    /// Number of ids, specials included.
    fn vocab_size(&self) -> usize;
    /// Encodes text (no special tokens added). Errors on a character the vocabulary lacks.
    fn encode(&self, text: &str) -> anyhow::Result<Vec<u32>>;
    /// Decodes ids, skipping special tokens.
    fn decode(&self, ids: &[u32]) -> String;
    /// End-of-sequence id.
    fn eos_id(&self) -> u32;
    /// Padding id (never a target).
    fn pad_id(&self) -> u32;
}
