//! # foil-rewards
//!
//! Learned reward models: a `tiny_gpt` backbone with a scalar head ([`scorer`]), trained
//! by the `reward_model` stage ([`stage`]) with a Bradley–Terry ([`bradley_terry`]),
//! pointwise ([`pointwise`]) or per-step process ([`process`]) loss on data made from the
//! run or read from JSONL ([`data`]), evaluated by held-out pairwise accuracy and AUC
//! ([`metrics`]), and used through the `reward_model` verifier and the `learned`
//! `RewardModel` part ([`verifier`]); Cooper's reference-based reward model, co-updated
//! during RL ([`verify_rm`]). See `docs/reward-models.md`.

pub mod bradley_terry;
pub mod data;
pub mod metrics;
pub mod pointwise;
pub mod process;
pub mod scorer;
pub mod simamr;
pub mod simamr_stage;
pub mod stage;
pub mod triplets;
pub mod verifier;
pub mod verify_rm;

pub use bradley_terry::BradleyTerry;
pub use data::{Dataset, Item};
pub use scorer::{LoadedRewardModel, RewardModelMeta, RmKind, TrainableScorer};
pub use simamr_stage::{DialogueEvaluator, Negatives};
pub use stage::{RewardModelStage, RmInit, RmLossKind};
pub use verifier::{Combine, LearnedRewardModel, Output, RewardModelVerifier};
pub use verify_rm::{Cooper, ShortBias};
