//! # foil-verifiers
//!
//! Verifiers judge a response text against a [`foil_core::Problem`]:
//!
//! - [`Numeric`] (`numeric`): outcome check of the final answer after a marker.
//! - [`Steps`] (`steps`): exact per-step checker for chain-arithmetic (T0) responses.
//! - [`ProcessReward`] (`process_reward`): outcome from one verifier, per-step values from
//!   a noisy, optionally length-biased process checker; `blend: β` adds β · mean step value
//!   to the reward (PROF's input and its Blend baseline).

pub mod numeric;
pub mod process_reward;
pub mod steps;

pub use numeric::{Numeric, extract_answer, parse_leading_int};
pub use process_reward::ProcessReward;
pub use steps::{Chain, Op, Steps};
