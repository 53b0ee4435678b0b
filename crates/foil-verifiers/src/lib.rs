//! # foil-verifiers
//!
//! Verifiers judge a response text against a [`foil_core::Problem`]:
//!
//! - [`BanditReward`] (`bandit_reward`): the didactic bandit's reward
//!   `exp(−((a − peak)/width)²)` of one action token (Tajwar et al. 2024).
//! - [`Numeric`] (`numeric`): outcome check of the final answer after a marker.
//! - [`Exact`] (`exact`): the answer string after a marker compared exactly (trim/case options).
//! - [`Math`] (`math`): free-form math answers (boxed / `####` / "the answer is" / last
//!   number) checked for equivalence as Hugging Face math-verify does (docs/math-verifier.md).
//! - [`MultipleChoice`] (`multiple_choice`): an option letter.
//! - [`RegexVerifier`] (`regex`): a regex capture compared with the answer, or a match.
//! - [`Format`] (`format`): the whole response matches a format (`<think>…<answer>…`).
//! - [`TokenF1`] (`token_f1`): bag-of-words F1 vs the answer as a graded reward, exact
//!   word match as correctness (text-generation similarity, CONAN-EUS).
//! - [`Sum`] (`sum`): weighted sum of child verifiers; [`All`] (`all`): every child correct.
//! - [`Steps`] (`steps`): exact per-step checker for chain-arithmetic (T0) responses.
//! - [`ProcessReward`] (`process_reward`): outcome from one verifier, per-step values from
//!   a noisy, optionally length-biased process checker; `blend: β` adds β · mean step value
//!   to the reward (PROF's input and its Blend baseline).

pub mod all;
pub mod bandit_reward;
pub mod countdown;
pub mod exact;
pub mod format;
pub mod math;
pub mod multiple_choice;
pub mod numeric;
pub mod process_reward;
pub mod regex_match;
pub mod steps;
pub mod sum;
pub mod token_f1;

pub use all::All;
pub use bandit_reward::BanditReward;
pub use exact::Exact;
pub use format::Format;
pub use math::Math;
pub use multiple_choice::MultipleChoice;
pub use numeric::{Numeric, extract_answer, parse_leading_int};
pub use process_reward::ProcessReward;
pub use regex_match::RegexVerifier;
pub use steps::{Chain, Op, Steps};
pub use sum::Sum;
pub use token_f1::TokenF1;
