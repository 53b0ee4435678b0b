//! # foil-verifiers
//!
//! Verifiers judge a response text against a [`foil_core::Problem`]:
//!
//! - [`Numeric`] (`numeric`): outcome check of the final answer after a marker.
//! - [`Steps`] (`steps`): exact per-step checker for chain-arithmetic (T0) responses.

pub mod numeric;
pub mod steps;

pub use numeric::{Numeric, extract_answer, parse_leading_int};
pub use steps::{Chain, Op, Steps};
