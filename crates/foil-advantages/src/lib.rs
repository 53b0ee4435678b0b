//! # foil-advantages
//!
//! Advantage estimators turn scored groups into per-completion credit. All of these are
//! group-relative and critic-free; each returns one [`foil_core::Credit::Sequence`] per
//! completion:
//!
//! - [`Grpo`] (`grpo`): reward minus group mean, optionally divided by the group std
//!   (GRPO; `scale: none` is Dr. GRPO).
//! - [`Rloo`] (`rloo`): reward minus the mean of the other completions' rewards.

mod group;
pub mod grpo;
pub mod rloo;

pub use grpo::{Grpo, Scale};
pub use rloo::Rloo;
