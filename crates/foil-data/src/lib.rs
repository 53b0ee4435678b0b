//! # foil-data
//!
//! Tasks (where problems come from) and the tokenizers that cover them.

pub mod arithmetic;
pub mod bandit;
pub mod char_tokenizer;
pub mod copy_reverse;
pub mod countdown;
pub mod counter_narratives;
pub mod dialogue_facts;
pub mod facts;
pub mod instructions;
pub mod jsonl_task;
#[cfg(feature = "parquet")]
pub mod parquet_rows;
#[cfg(feature = "parquet")]
pub mod parquet_task;
pub mod rows;
pub mod vpi;
pub mod vpi_filter;
pub mod vpi_judge;
pub mod word_problems;

pub use arithmetic::Arithmetic;
pub use bandit::{Bandit, BanditTokenizer};
pub use char_tokenizer::CharTokenizer;
pub use copy_reverse::CopyReverse;
pub use countdown::Countdown;
pub use counter_narratives::CounterNarratives;
pub use dialogue_facts::{DialogueFacts, DialogueTokenizer};
pub use facts::Facts;
pub use instructions::Instructions;
pub use jsonl_task::{DataFile, Jsonl};
#[cfg(feature = "parquet")]
pub use parquet_task::Parquet;
pub use vpi::VpiPoison;
pub use vpi_filter::VpiFilter;
pub use vpi_judge::VpiBehaviour;
pub use word_problems::WordProblems;
