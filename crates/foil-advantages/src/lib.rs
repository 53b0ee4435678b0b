//! # foil-advantages
//!
//! Advantage estimators turn scored groups into per-completion credit. All of these are
//! critic-free; most return one [`foil_core::Credit::Sequence`] per completion:
//!
//! - [`Grpo`] (`grpo`): reward minus group mean, optionally divided by the group std
//!   (GRPO; `scale: none` is Dr. GRPO).
//! - [`Rloo`] (`rloo`): reward minus the mean of the other completions' rewards.
//! - [`Ngrpo`] (`ngrpo`): GRPO statistics with a virtual max-reward sample, so all-wrong
//!   groups get a negative advantage.
//! - [`Psr`] (`psr`), [`Nsr`] (`nsr`), [`WReinforce`] (`w_reinforce`): keep, exclude or
//!   weight completions by outcome sign, on ±1 or on any base estimator's advantages.
//! - [`ReinforcePp`] (`reinforce_pp`): REINFORCE++ — the (group-mean-baselined) return,
//!   whitened over every response token of the batch; per-token credit when discounted.
//! - [`Gtpo`] (`gtpo`): GTPO — r − group mean, completions above an entropy threshold
//!   zeroed, the rest shaped by −0.1·entropy; tokens of a shared prefix/suffix between
//!   positive and negative completions weighted ×2 on positives and ×0 on negatives
//!   (per-token credit; no KL, no reference model).
//! - [`Prof`] (`prof`): PROF's process-consistency filter — per group, drop the `remove`
//!   responses least consistent with a PRM's step values, keeping correct/incorrect
//!   balanced, then the `inner` estimator on the kept ones.
//! - [`Remax`] (`remax`): reward minus the reward of the greedy completion (ReMax), which
//!   the RL stage samples with `baseline_sampler`.
//! - Wrappers around an `inner` estimator, DAPO's overlong reward shaping:
//!   [`OverlongPenalty`] (`overlong_penalty`) adds the soft length penalty to the rewards
//!   first; [`TruncationMask`] (`truncation_mask`) excludes completions that hit
//!   `max_tokens` afterwards.
//! - [`Stcr`] (`stcr`): APO's length regulariser on negatives — an incorrect completion
//!   longer than the group's correct ones gets its `inner` advantage × `2 − base^(−Δlen)`.

mod group;
pub mod grpo;
pub mod gtpo;
pub mod ngrpo;
pub mod nsr;
mod outcome_sign;
pub mod overlong_penalty;
pub mod prof;
pub mod psr;
pub mod reinforce_pp;
pub mod remax;
pub mod rloo;
pub mod stcr;
pub mod truncation_mask;
pub mod w_reinforce;

pub use grpo::{Grpo, Scale};
pub use gtpo::Gtpo;
pub use ngrpo::Ngrpo;
pub use nsr::Nsr;
pub use overlong_penalty::OverlongPenalty;
pub use prof::Prof;
pub use psr::Psr;
pub use reinforce_pp::{Baseline, ReinforcePp};
pub use remax::Remax;
pub use rloo::Rloo;
pub use stcr::Stcr;
pub use truncation_mask::TruncationMask;
pub use w_reinforce::WReinforce;
