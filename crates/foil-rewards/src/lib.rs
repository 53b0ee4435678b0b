//! # foil-rewards
//!
//! Learned reward models (outcome, reference-based, process) and reward shaping. The
//! foundation ships rule verifiers only (`foil-verifiers`); learned reward models arrive
//! with the preference and reward-model work.
