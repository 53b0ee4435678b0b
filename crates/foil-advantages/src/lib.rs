//! # foil-advantages
//!
//! Advantage estimators turn scored groups into per-completion credit. All of these are
//! group-relative and critic-free; each returns one [`foil_core::Credit::Sequence`] per
//! completion:
//!
//! - [`Grpo`] (`grpo`): reward minus group mean, optionally divided by the group std
//!   (GRPO; `scale: none` is Dr. GRPO).
//! - [`Rloo`] (`rloo`): reward minus the mean of the other completions' rewards.
//! - [`Ngrpo`] (`ngrpo`): GRPO statistics with a virtual max-reward sample, so all-wrong
//!   groups get a negative advantage.
//! - [`Psr`] (`psr`), [`Nsr`] (`nsr`), [`WReinforce`] (`w_reinforce`): keep, exclude or
//!   weight completions by outcome sign, on ±1 or on any base estimator's advantages.

mod group;
pub mod grpo;
pub mod ngrpo;
pub mod nsr;
mod outcome_sign;
pub mod psr;
pub mod rloo;
pub mod w_reinforce;

pub use grpo::{Grpo, Scale};
pub use ngrpo::Ngrpo;
pub use nsr::Nsr;
pub use psr::Psr;
pub use rloo::Rloo;
pub use w_reinforce::WReinforce;
