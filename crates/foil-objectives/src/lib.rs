//! # foil-objectives
//!
//! The differentiable training objectives a recipe names under `objective:`. Each turns a
//! [`foil_core::batch::PolicyBatch`] and the policy's [`foil_core::PolicyOutput`] into a
//! scalar [`foil_core::Loss`]:
//!
//! | `type` | loss |
//! |---|---|
//! | `ppo_clip` | PPO clipped surrogate, clip-higher, dual clip ([`PpoClip`]) |
//! | `gspo` | GSPO: the clipped surrogate on one length-normalised ratio per sequence ([`Gspo`]) |
//! | `kl` | KL penalty to the reference, k1/k2/k3 ([`Kl`]) |
//! | `dads_kl` | APO's DADS: the KL penalty down-weighted on the positives of hard groups ([`DadsKl`]) |
//! | `adaptive_kl` | KL penalty whose coefficient follows Ziegler et al.'s adaptive controller ([`AdaptiveKl`]) |
//! | `kl_in_reward` | KL folded into the reward: a KL-to-go penalty on `inner`'s advantages ([`KlInReward`]) |
//! | `entropy_mask` | `inner` with the advantage kept on the top-ρ entropy tokens only ([`EntropyMask`]) |
//! | `entropy` | entropy bonus ([`Entropy`]) |
//! | `nll` | negative log-likelihood / SFT ([`Nll`]) |
//! | `dpo` | DPO / IPO on (chosen, rejected) row pairs `2k, 2k+1` against the reference ([`Dpo`]) |
//! | `sdpo` | UV-CoT score-aware DPO: margin shifted by `γ·(s_w − s_l)` from the rows' advantages, optional SFT on chosen ([`Sdpo`]) |
//! | `d2o` | D²O: each negative against the mean log-ratio of its group's K self-samples ([`D2o`]) |
//! | `aft` | AFT: NLL on positives + constrained ranking term over a group's pairs (DC/BC), also DPO-style ([`Aft`]) |
//! | `safe_align` | SAFE-ALIGN: NLL on good responses minus bounded NLL on bad ones ([`SafeAlign`]) |
//! | `sum` | weighted sum of the above ([`Sum`]) |
//!
//! Per-token losses become scalars through [`Aggregate`]. `adaptive_kl` and `kl_in_reward`
//! (with `adaptive`) keep their coefficient behind a `Mutex` and checkpoint it through
//! `Objective::state` (`sum`, `entropy_mask` and `kl_in_reward` pass their terms' state on).

pub mod adaptive_kl;
pub mod aft;
pub mod aggregate;
pub mod d2o;
pub mod dads_kl;
pub mod dpo;
pub mod entropy;
pub mod entropy_mask;
pub mod gspo;
pub mod kl;
pub mod kl_in_reward;
pub mod nll;
pub mod ppo_clip;
pub mod safe_align;
pub mod sdpo;
pub mod sum;
#[cfg(test)]
mod testutil;

pub use adaptive_kl::{AdaptiveKl, KlTarget};
pub use aft::{Aft, Constraint, PairLoss};
pub use aggregate::{Aggregate, aggregate};
pub use d2o::{D2o, SelfSamples};
pub use dads_kl::DadsKl;
pub use dpo::{Dpo, DpoLoss};
pub use entropy::Entropy;
pub use entropy_mask::EntropyMask;
pub use gspo::Gspo;
pub use kl::{Kl, KlEstimator};
pub use kl_in_reward::KlInReward;
pub use nll::Nll;
pub use ppo_clip::PpoClip;
pub use safe_align::SafeAlign;
pub use sdpo::Sdpo;
pub use sum::Sum;
