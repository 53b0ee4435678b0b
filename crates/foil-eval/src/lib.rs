//! # foil-eval
//!
//! Evaluation metrics as plain functions:
//!
//! - [`pass_at_k`], [`mean_pass_at_k`]: the unbiased pass@k estimator (Chen et al. 2021).
//! - [`maj_at_k`]: majority vote over the first k answers (Wang et al. 2023).

pub mod maj_at_k;
pub mod pass_at_k;

pub use maj_at_k::maj_at_k;
pub use pass_at_k::{mean_pass_at_k, pass_at_k};
