//! Cooper (Hong et al. 2025, "Cooper: Co-Optimizing Policy and Reward Models in
//! Reinforcement Learning for Large Language Models", arXiv 2508.05613; methods.md §13):
//! the `rl` stage's hook for a reward model that is trained alongside the policy.
//!
//! ```text
//! rl step with `reward_model: {type: cooper, …}` (one Cooper step):
//!   groups    ← sampler(π_θ, problems)
//!   rule      ← verifier(groups)                 rule verdicts: `accuracy`, y⁺ picking
//!   r_i       ← reward_model.judge(q, ref, y_i)  learned reward (VerifyRM-style input)
//!   (1) policy: GRPO advantage of r, objective step (as without the hook)
//!   (2) reward model: y⁺ = a rollout `rule` marks correct, y⁻ = y⁺ with its final answer
//!       perturbed (checked rule-incorrect), one step on
//!       L_RM = −log σ(s(q,ref,y⁺) − s(q,ref,y⁻))          (reward_model.update)
//! ```
//!
//! Step (1) with GRPO and step (2)'s positives from a high-precision rule verifier are
//! [secondary] (project page); the exact contrastive loss is [recon] ("contrastive
//! learning to maximise score differences" → Bradley–Terry); the negatives come from an
//! assistant LLM in the paper and from a programmatic answer perturbation here [recon,
//! methods.md's tiny experiment]. The implementation of the hook (`cooper`) is in
//! `foil-rewards` (`verify_rm.rs`), which owns the reward-model network; this trait keeps
//! the `rl` stage free of it. With the hook, the stage logs per step `reward` (the
//! learned reward the policy maximises), `accuracy` (the rule verifier's), `rm_acc` (share
//! of the step's fresh samples where the learned verdict `σ(s) > ½` agrees with the rule
//! verifier) and the hook's own metrics (`rm_loss`, `rm_pairs`, `rm_pair_acc`).
//!
//! Checkpoints: when one is due the hook saves its weights and optimizer state and
//! returns where ([`UpdatableReward::checkpoint`]); the `rl` stage state is then
//! `{"objective": …, "reward_model": …}`, and a resumed stage hands the second part back
//! to [`UpdatableReward::prepare`], so the co-updated model continues where it stopped.

use foil_core::run::RunContext;
use foil_core::{Problem, ScoredGroup, Verdict, Verifier};
use serde_json::Value;

/// A learned reward that judges the `rl` stage's rollouts and may be updated every step.
#[typetag::serde(tag = "type")]
pub trait UpdatableReward: std::fmt::Debug + Send + Sync {
    /// Loads the model: from its configured source when `state` is `None` (stage start),
    /// else from what [`UpdatableReward::checkpoint`] returned (resume).
    fn prepare(&self, ctx: &RunContext, state: Option<&Value>) -> anyhow::Result<()>;

    /// Verdicts of `responses` to `problem` (reward and `correct`).
    fn judge(&self, problem: &Problem, responses: &[&str]) -> anyhow::Result<Vec<Verdict>>;

    /// The reward model's update after the policy's step `step`, on all of the step's
    /// fresh groups with the `rule` verifier's verdicts. Returns metrics to log.
    fn update(
        &self,
        ctx: &RunContext,
        step: usize,
        judged: &[ScoredGroup],
        rule: &dyn Verifier,
    ) -> anyhow::Result<Vec<(String, f64)>>;

    /// Saves weights and optimizer state after `steps_done` steps of the stage; returns
    /// the value a resume passes to [`UpdatableReward::prepare`].
    fn checkpoint(&self, ctx: &RunContext, steps_done: usize) -> anyhow::Result<Value>;

    /// Writes the final model when the stage ends.
    fn finish(&self, ctx: &RunContext) -> anyhow::Result<()>;
}

/// Whether the runner writes a checkpoint after `step` (0-based; as
/// [`RunContext::end_step`] decides, called before it).
pub fn checkpoint_due(ctx: &RunContext, step: usize) -> bool {
    (ctx.checkpoint_every > 0 && (step + 1).is_multiple_of(ctx.checkpoint_every))
        || ctx.stop_after.is_some_and(|s| ctx.steps_run + 1 >= s)
}

/// The `rl` stage state with a reward model: `{"objective": o, "reward_model": r}`.
pub fn join_state(objective: Option<Value>, reward_model: Value) -> Value {
    serde_json::json!({ "objective": objective, "reward_model": reward_model })
}

/// Splits a resumed `rl` stage state into the objective's and the reward model's parts
/// (without a reward model the whole state is the objective's).
pub fn split_state(with_rm: bool, state: Option<Value>) -> (Option<Value>, Option<Value>) {
    match (with_rm, state) {
        (false, s) => (s, None),
        (true, Some(Value::Object(mut m))) if m.contains_key("reward_model") => {
            let o = m.remove("objective").filter(|v| !v.is_null());
            (o, m.remove("reward_model").filter(|v| !v.is_null()))
        }
        (true, s) => (s, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stage_state_round_trips_and_plain_states_pass_through() {
        let s = join_state(Some(json!({"beta": 0.1})), json!({"path": "x"}));
        let (o, r) = split_state(true, Some(s));
        assert_eq!(o, Some(json!({"beta": 0.1})));
        assert_eq!(r, Some(json!({"path": "x"})));
        let (o, r) = split_state(true, Some(join_state(None, json!(1))));
        assert_eq!((o, r), (None, Some(json!(1))));
        // without the hook, or a state without the hook's key: all of it is the objective's
        let (o, r) = split_state(false, Some(json!({"reward_model": 1})));
        assert_eq!((o, r), (Some(json!({"reward_model": 1})), None));
        let (o, r) = split_state(true, Some(json!({"beta": 2})));
        assert_eq!((o, r), (Some(json!({"beta": 2})), None));
    }
}
