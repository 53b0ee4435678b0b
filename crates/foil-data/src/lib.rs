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
#[cfg(test)]
mod testutil;
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

/// The id of the problem at position `k` of a generated list whose first `train` entries
/// become the training split: `train-00042` for k = 42 < train, else `test-{k − train}`.
pub fn split_id(k: usize, train: usize) -> String {
    if k < train {
        format!("train-{k:05}")
    } else {
        format!("test-{:05}", k - train)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn split_ids_number_each_split_from_zero() {
        // train = 3: positions 0, 2 are train-00000, train-00002; 3 → test-00000, 7 → test-00004
        assert_eq!(super::split_id(0, 3), "train-00000");
        assert_eq!(super::split_id(2, 3), "train-00002");
        assert_eq!(super::split_id(3, 3), "test-00000");
        assert_eq!(super::split_id(7, 3), "test-00004");
    }
}
