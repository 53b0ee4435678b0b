//! # foil-trainers
//!
//! Stages a recipe chains (`sft`, `rl`, `eval`, `per_step`, `rft`, `preference`), the group filters of the RL loop, and the
//! runner that executes a recipe with metrics, checkpoints and resume.

pub mod cooper;
pub mod data_parallel;
pub mod drop_solved;
pub mod dynamic_sampling;
pub mod eval;
pub mod pairs_jsonl;
pub mod per_step;
pub mod per_step_pairs;
pub mod per_step_values;
pub mod preference;
pub mod rft;
pub mod rl;
pub mod runner;
pub mod sft;
pub mod train_step;

pub use drop_solved::DropSolved;
pub use dynamic_sampling::DynamicSampling;
pub use eval::Eval;
pub use per_step::{PerStep, PerStepMode};
pub use preference::{Preference, PreferenceMode, TrainOn};
pub use rft::Rft;
pub use rl::Rl;
pub use runner::{RunOptions, RunSummary, run};
pub use sft::Sft;
