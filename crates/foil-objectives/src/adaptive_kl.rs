//! `adaptive_kl`: a KL penalty towards the reference whose weight β is steered towards a
//! target KL by the adaptive controller of Ziegler et al. 2019 ("Fine-Tuning Language
//! Models from Human Preferences", arXiv 1909.08593, §2.2; verl `AdaptiveKLController`).
//!
//! Each call (one optimizer step on one mini-batch of `n` completions) uses the current β,
//! then updates it from the KL it measured:
//!
//! ```text
//! k_t   = estimator(log π_ref − log π_θ)          per response token (k1 / k2 / k3, as `kl`)
//! loss  = β · aggregate(k)
//! KL    = token mean of k over the mini-batch     (detached)
//! e     = clip(KL / target − 1, −0.2, 0.2)
//! β    ← β · (1 + e · n / horizon)
//! ```
//!
//! `target` is a per-token KL (verl's convention, default 0.1 with `horizon` 10000 and
//! initial β 0.001), not Ziegler's per-sequence 6 nats. `n` counts the completions of each
//! mini-batch, so with `ppo_epochs: E` every rollout is counted E times (the effective
//! horizon is `horizon / E`).
//!
//! **State.** Objectives are called through `&self`, so β lives behind a `Mutex` inside
//! the part (it starts at `coef` on the first call). It is checkpointed through
//! [`Objective::state`] (`{"coef": β}` in `state.json`), so a run resumed with
//! `foil run --resume` continues with the β it had.

use std::sync::Mutex;

use anyhow::{Context, ensure};
use foil_core::batch::PolicyBatch;
use foil_core::{Loss, Objective, PolicyOutput};
use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, aggregate, masked_mean, scalar};
use crate::kl::KlEstimator;

/// Ziegler et al.'s proportional controller: `β · (1 + clip(kl/target − 1, ±0.2) · n/horizon)`.
/// A non-finite `kl` leaves β unchanged.
pub fn adapt(beta: f32, kl: f32, n: usize, target: f32, horizon: usize) -> f32 {
    if !kl.is_finite() {
        return beta;
    }
    let e = (f64::from(kl) / f64::from(target) - 1.0).clamp(-0.2, 0.2);
    (f64::from(beta) * (1.0 + e * n as f64 / horizon as f64)) as f32
}

/// The controller's target: recipe field `adaptive: {target: 0.1, horizon: 10000}` (used by
/// `kl_in_reward`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KlTarget {
    /// The KL per response token the controller steers towards.
    pub target: f32,
    /// Completions over which a full ±20% error moves β by ±20%.
    pub horizon: usize,
}

impl Default for KlTarget {
    fn default() -> Self {
        Self {
            target: 0.1,
            horizon: 10000,
        }
    }
}

impl KlTarget {
    pub(crate) fn check(&self, who: &str) -> anyhow::Result<()> {
        ensure!(
            self.target > 0.0 && self.horizon > 0,
            "{who}: the KL target must be > 0 and the horizon ≥ 1, got target = {}, horizon = {}",
            self.target,
            self.horizon
        );
        Ok(())
    }
}

/// The current β, behind a lock (`None` until the first call, then the part's `coef`).
#[derive(Debug, Default)]
pub struct CoefState(Mutex<Option<f32>>);

impl CoefState {
    /// The current value, or `init` if no call has set one yet.
    pub fn get(&self, init: f32) -> f32 {
        self.0.lock().map(|g| g.unwrap_or(init)).unwrap_or(init)
    }

    pub(crate) fn set(&self, v: f32) {
        if let Ok(mut g) = self.0.lock() {
            *g = Some(v);
        }
    }

    /// The value for a checkpoint (`None` until a call has set one).
    pub fn save(&self) -> Option<serde_json::Value> {
        let v = self.0.lock().ok().and_then(|g| *g)?;
        Some(serde_json::json!(v))
    }

    /// Sets the value from a checkpoint (`null` leaves it unset).
    pub fn load(&self, v: &serde_json::Value, who: &str) -> anyhow::Result<()> {
        if v.is_null() {
            return Ok(());
        }
        let x = v
            .as_f64()
            .with_context(|| format!("{who}: checkpointed coefficient `{v}` is not a number"))?;
        self.set(x as f32);
        Ok(())
    }
}

/// Number of rows with at least one response token.
pub(crate) fn rows(batch: &PolicyBatch) -> usize {
    batch.response_lengths.iter().filter(|&&l| l > 0).count()
}

/// `β · KL(π_θ‖π_ref)` with β adapted towards a target KL.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdaptiveKl {
    /// Initial weight β.
    pub coef: f32,
    /// Target KL per response token.
    pub target: f32,
    /// Completions over which a full ±20% error moves β by ±20%.
    pub horizon: usize,
    /// Per-token estimator.
    pub estimator: KlEstimator,
    /// How token estimates become one scalar.
    pub aggregate: Aggregate,
    /// The current β (not part of the recipe; checkpointed through `Objective::state`).
    #[serde(skip)]
    pub state: CoefState,
}

impl Default for AdaptiveKl {
    fn default() -> Self {
        let t = KlTarget::default();
        Self {
            coef: 0.001,
            target: t.target,
            horizon: t.horizon,
            estimator: KlEstimator::K3,
            aggregate: Aggregate::TokenMean,
            state: CoefState::default(),
        }
    }
}

impl AdaptiveKl {
    /// The β the next call will use.
    pub fn current_coef(&self) -> f32 {
        self.state.get(self.coef)
    }
}

#[typetag::serde(name = "adaptive_kl")]
impl Objective for AdaptiveKl {
    fn loss(&self, batch: &PolicyBatch, out: &PolicyOutput) -> anyhow::Result<Loss> {
        KlTarget {
            target: self.target,
            horizon: self.horizon,
        }
        .check("adaptive_kl")?;
        let reference = batch
            .ref_logprobs
            .clone()
            .context("adaptive_kl: the batch has no reference log-probs (ref_logprobs)")?;
        ensure!(
            reference.dims() == out.logprobs.dims(),
            "adaptive_kl: reference log-probs are {:?}, policy log-probs {:?}",
            reference.dims(),
            out.logprobs.dims()
        );
        let delta = (reference - out.logprobs.clone()) * batch.mask.clone();
        let k = self.estimator.estimate(delta);
        let kl = masked_mean(k.clone(), &batch.mask);
        let beta = self.current_coef();
        let value = aggregate(k, batch, self.aggregate).mul_scalar(beta);
        self.state
            .set(adapt(beta, kl, rows(batch), self.target, self.horizon));
        let metrics = vec![
            ("adaptive_kl/mean".to_string(), kl),
            ("adaptive_kl/coef".to_string(), beta),
            ("adaptive_kl/loss".to_string(), scalar(value.clone())),
        ];
        Ok(Loss { value, metrics })
    }

    fn state(&self) -> Option<serde_json::Value> {
        self.state.save().map(|c| serde_json::json!({ "coef": c }))
    }

    fn restore(&self, state: &serde_json::Value) -> anyhow::Result<()> {
        self.state.load(&state["coef"], "adaptive_kl")
    }

    fn needs_reference(&self) -> bool {
        true
    }
}

foil_core::register_part!(
    Objective,
    "adaptive_kl",
    AdaptiveKl,
    "KL penalty whose coef adapts towards a target KL (Ziegler et al. 2019 controller); β is checkpointed"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{batch, close, dev, t2};

    const LN2: f32 = std::f32::consts::LN_2;

    #[test]
    fn beta_survives_a_checkpoint_inside_a_sum() {
        let b = batch(&[[1.0]], &[[0.0]], None, Some(&[[0.0]]), 1);
        let out = PolicyOutput {
            logprobs: t2(&[[-LN2]], &dev()),
            entropy: None,
        };
        let recipe = "type: sum\nterms:\n  - {type: ppo_clip}\n  - {type: adaptive_kl, coef: 0.1, target: 0.1, horizon: 100}\n";
        let make = || -> Box<dyn Objective> { serde_saphyr::from_str(recipe).unwrap() };
        let a = make();
        // nothing has moved yet: nothing to save
        assert_eq!(a.state(), None);
        // KL = 2 − ln 2 − 1 = 0.306853 > target → e = +0.2, n = 1 → β = 0.1·(1 + 0.2/100) = 0.1002
        a.loss(&b, &out).unwrap();
        let saved = a.state().unwrap();
        let coef = saved[1]["coef"].as_f64().unwrap() as f32;
        close(coef, 0.1002);
        assert!(saved[0].is_null());
        // a fresh objective restored from the JSON uses 0.1002 on its next call
        let restored = make();
        let json: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(&saved).unwrap()).unwrap();
        restored.restore(&json).unwrap();
        let l = restored.loss(&b, &out).unwrap();
        let beta = l
            .metrics
            .iter()
            .find(|(k, _)| k == "adaptive_kl/coef")
            .unwrap()
            .1;
        close(beta, 0.1002);
        // a state for another recipe shape is a clear error
        let e = make()
            .restore(&serde_json::json!([null]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("state for 1 terms, the recipe has 2"), "{e}");
    }

    #[test]
    fn controller_by_hand() {
        // target 0.1, horizon 100, n = 2 completions:
        // KL 0.3  → e = clip(3 − 1) = +0.2  → β = 0.1·(1 + 0.2·2/100) = 0.1004
        // KL 0.05 → e = clip(0.5 − 1) = −0.2 → β = 0.1·(1 − 0.004) = 0.0996
        // KL 0.11 → e = 0.1              → β = 0.1·(1 + 0.002) = 0.1002
        // KL 0.1  → e = 0                → β unchanged
        close(adapt(0.1, 0.3, 2, 0.1, 100), 0.1004);
        close(adapt(0.1, 0.05, 2, 0.1, 100), 0.0996);
        close(adapt(0.1, 0.11, 2, 0.1, 100), 0.1002);
        close(adapt(0.1, 0.1, 2, 0.1, 100), 0.1);
        close(adapt(0.1, f32::NAN, 2, 0.1, 100), 0.1);
    }

    #[test]
    fn uses_the_current_coef_then_adapts_it() {
        // two rows, one response token each; δ = ref − logp = ln 2 on both:
        // k3 = 2 − ln 2 − 1 = 0.306853 per token, KL (token mean) = 0.306853
        let b = batch(
            &[[1.0, 0.0], [0.0, 1.0]],
            &[[0.0; 2]; 2],
            None,
            Some(&[[0.0, 0.0], [0.0, 0.0]]),
            1,
        );
        let out = PolicyOutput {
            logprobs: t2(&[[-LN2, -9.0], [-9.0, -LN2]], &dev()),
            entropy: None,
        };
        let p = AdaptiveKl {
            coef: 0.1,
            target: 0.1,
            horizon: 100,
            ..AdaptiveKl::default()
        };
        // call 1: β = 0.1 → loss 0.0306853; KL/target − 1 = 2.07 → e = +0.2, n = 2
        //         → β = 0.1·(1 + 0.2·2/100) = 0.1004
        let l = p.loss(&b, &out).unwrap();
        close(scalar(l.value), 0.030_685_3);
        close(l.metrics[0].1, 0.306_853);
        close(l.metrics[1].1, 0.1);
        close(p.current_coef(), 0.1004);
        // call 2: loss = 0.1004 · 0.306853 = 0.0308080; β = 0.1004 · 1.004 = 0.1008016
        let l = p.loss(&b, &out).unwrap();
        close(scalar(l.value), 0.030_808_0);
        close(l.metrics[1].1, 0.1004);
        close(p.current_coef(), 0.100_801_6);
    }

    #[test]
    fn recipe_fields_and_state_are_separate() {
        let o: Box<dyn Objective> = serde_saphyr::from_str(
            "type: adaptive_kl\ncoef: 0.05\ntarget: 0.2\nhorizon: 500\nestimator: k1\n",
        )
        .unwrap();
        assert!(o.needs_reference());
        let s = format!("{o:?}");
        assert!(
            s.contains("coef: 0.05") && s.contains("horizon: 500"),
            "{s}"
        );
        // the state is not a recipe field
        assert!(
            serde_saphyr::from_str::<Box<dyn Objective>>("type: adaptive_kl\nstate: 1\n").is_err()
        );
        assert_eq!(
            foil_core::registry::defaults_of::<AdaptiveKl>(),
            foil_core::serde_json::json!({"coef": 0.001f32, "target": 0.1f32, "horizon": 10000,
                               "estimator": "k3", "aggregate": "token_mean"})
        );
        let bad = AdaptiveKl {
            target: 0.0,
            ..AdaptiveKl::default()
        };
        let b = batch(&[[1.0]], &[[0.0]], None, Some(&[[0.0]]), 1);
        let out = PolicyOutput {
            logprobs: t2(&[[0.0]], &dev()),
            entropy: None,
        };
        assert!(bad.loss(&b, &out).is_err());
    }
}
