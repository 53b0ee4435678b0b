//! # foil-core
//!
//! The shared vocabulary of foil: data types that flow through the loop
//! (`Problem` → `Group` → `ScoredGroup` → credit → `PolicyBatch`), the part traits that
//! recipes name (`Task`, `Verifier`, `AdvantageEstimator`, `Filter`, `Objective`,
//! `Sampler`, `PolicyConfig`, `Stage`), the registry behind `foil list`, the recipe schema
//! with located errors, the backend/device selection, and the run context (metrics,
//! checkpoints) that stages share.
//!
//! Every part trait is a [`typetag`] trait object: a recipe's `{type: name, ...}` becomes a
//! `Box<dyn Trait>`. Tensor-touching traits use the single concrete backend [`backend::B`].

pub mod backend;
pub mod batch;
pub mod checkpoint;
pub mod error;
pub mod grad_sync;
pub mod metrics;
pub mod parts;
pub mod policy;
pub mod recipe;
pub mod registry;
pub mod rng;
pub mod run;
pub mod tokenizer;
pub mod types;

pub use error::{FoilError, Result};
pub use parts::*;
pub use policy::*;
pub use tokenizer::Tokenizer;
pub use types::*;

/// Re-exported so that part crates use exactly the same versions.
pub use {anyhow, burn, inventory, serde, serde_json, typetag};
