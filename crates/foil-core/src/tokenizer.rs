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
    /// Padding id (never a target). It may equal the end-of-sequence id (many Hugging
    /// Face tokenizers have no pad token); samplers then still allow it as an output.
    fn pad_id(&self) -> u32;
    /// Encodes a problem's prompt as the policy should see it: a model's tokenizer may
    /// add its beginning-of-sequence token or render its chat template here.
    fn encode_prompt(&self, prompt: &str) -> anyhow::Result<Vec<u32>> {
        self.encode(prompt)
    }
    /// Whether `id` ends a response (instruct models often have several end tokens).
    fn is_eos(&self, id: u32) -> bool {
        id == self.eos_id()
    }
}
