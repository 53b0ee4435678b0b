//! # foil-verifiers
//!
//! Verifiers judge a response text against a [`foil_core::Problem`]:
//!
//! - [`BanditReward`] (`bandit_reward`): the didactic bandit's reward
//!   `exp(−((a − peak)/width)²)` of one action token (Tajwar et al. 2024).
//! - [`Numeric`] (`numeric`): outcome check of the final answer after a marker.
//! - [`Exact`] (`exact`): the answer string after a marker compared exactly (trim/case options).
//! - [`Steps`] (`steps`): exact per-step checker for chain-arithmetic (T0) responses.
//! - [`ProcessReward`] (`process_reward`): outcome from one verifier, per-step values from
//!   a noisy, optionally length-biased process checker; `blend: β` adds β · mean step value
//!   to the reward (PROF's input and its Blend baseline).

pub mod bandit_reward;
pub mod countdown;
pub mod exact;
pub mod numeric;
pub mod process_reward;
pub mod steps;

pub use bandit_reward::BanditReward;
pub use exact::Exact;
pub use numeric::{Numeric, extract_answer, parse_leading_int};
pub use process_reward::ProcessReward;
pub use steps::{Chain, Op, Steps};
