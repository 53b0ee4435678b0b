//! # foil-plugin-recsys: Rel-MF as a plugin
//!
//! A worked example of a plugin crate (`docs/plugins.md` walks through it): it adds a
//! recipe stage, `relmf`, that runs Saito et al. 2020's "Unbiased Recommender Learning
//! from Missing-Not-At-Random Implicit Feedback" (Rel-MF; WSDM 2020, DOI
//! 10.1145/3336191.3371783; `../shared/docs/methods.md` §19) at small scale, without
//! touching any foil crate. foil sees the stage once a binary links this crate.
//!
//! The idea carries foil's theme, "negatives are signal", to implicit feedback: an
//! unclicked item is not a negative (it may never have been shown), so the pointwise loss
//! re-weights clicks by inverse exposure propensity `1/θ` (an unbiased estimate of the
//! loss on true relevance) and clips the propensity from below to cap the variance.
//!
//! | file | idea |
//! |---|---|
//! | [`data`] | synthetic MNAR log: `γ = σ(u·v)`, `θ_i = pop_i^p`, `Y ~ Bern(θγ)` |
//! | [`propensity`] | `θ̂_i = (n_i⁺ / max n⁺)^0.5`, `clip(θ̂, M, 1)` |
//! | [`model`] | `ŷ = σ(u_u · v_i)` (burn module) |
//! | [`loss`] | `Σ[(Y/s)(1 − ŷ)² + (1 − Y/s)ŷ²] / n + λ(‖U‖² + ‖V‖²)/2`; `naive`, `ips`, `clipped_ips` |
//! | [`dcg`] | DCG@K against the true relevance, all items and rare items |
//! | [`stage`] | the `relmf` stage: one experiment, recorded as an eval column |
//!
//! Why a stage and not a `PolicyConfig` + `Objective`: foil's `Policy` is a language model
//! (token log-probs over a vocabulary) and its `Objective`s read a `PolicyBatch` of
//! tokens; a recommender has neither. A `Stage` receives the whole run context and may do
//! anything with it, so the experiment lives in one stage and reports through the run's
//! metrics and eval table. The runner still builds the recipe's task and policy; a Rel-MF
//! recipe names the smallest ones and the stage ignores them (`recipes/relmf.yaml`).
//!
//! Registration: [`stage::RelMf`] derives `Serialize + Deserialize + Default`, its
//! `Stage` impl carries `#[typetag::serde(name = "relmf")]`, and `register_part!` lists
//! it for `foil list`. A binary links the crate with `use foil_plugin_recsys as _;` (the
//! `foil` binary does, in `crates/foil/src/lib.rs`).

pub mod data;
pub mod dcg;
pub mod loss;
pub mod model;
pub mod propensity;
pub mod stage;

pub use loss::Estimator;
pub use stage::RelMf;
