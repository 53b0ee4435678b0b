//! # foil-objectives
//!
//! The differentiable training objectives a recipe names under `objective:`. Each turns a
//! [`foil_core::batch::PolicyBatch`] and the policy's [`foil_core::PolicyOutput`] into a
//! scalar [`foil_core::Loss`]:
//!
//! | `type` | loss |
//! |---|---|
//! | `ppo_clip` | PPO clipped surrogate, clip-higher, dual clip ([`PpoClip`]) |
//! | `kl` | KL penalty to the reference, k1/k2/k3 ([`Kl`]) |
//! | `entropy` | entropy bonus ([`Entropy`]) |
//! | `nll` | negative log-likelihood / SFT ([`Nll`]) |
//! | `sum` | weighted sum of the above ([`Sum`]) |
//!
//! Per-token losses become scalars through [`Aggregate`].

pub mod aggregate;
pub mod entropy;
pub mod kl;
pub mod nll;
pub mod ppo_clip;
pub mod sum;
#[cfg(test)]
mod testutil;

pub use aggregate::{Aggregate, aggregate};
pub use entropy::Entropy;
pub use kl::{Kl, KlEstimator};
pub use nll::Nll;
pub use ppo_clip::PpoClip;
pub use sum::Sum;
