//! # foil-data
//!
//! Tasks (where problems come from) and the tokenizers that cover them.

pub mod arithmetic;
pub mod bandit;
pub mod char_tokenizer;
pub mod dialogue_facts;
pub mod word_problems;

pub use arithmetic::Arithmetic;
pub use bandit::{Bandit, BanditTokenizer};
pub use char_tokenizer::CharTokenizer;
pub use dialogue_facts::{DialogueFacts, DialogueTokenizer};
pub use word_problems::WordProblems;
