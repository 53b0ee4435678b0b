//! One gradient step of an objective on packed rows: shared by `sft` and `rl`.

use burn::tensor::{Tensor, TensorData};
use foil_core::batch::{
    HostPolicyBatch, PolicyBatch, SeqBatch, to_vec, token_entropy, token_logprobs,
};
use foil_core::policy::InferenceModel;
use foil_core::run::RunContext;
use foil_core::{Loss, Objective, PolicyOutput};

/// Per-token log-probs of the batch's targets under a frozen model, as a constant tensor on
/// the training device.
pub fn frozen_logprobs(
    model: &dyn InferenceModel,
    host: &HostPolicyBatch,
    batch: &PolicyBatch,
) -> Tensor<foil_core::backend::B, 2> {
    frozen_tensor(seq_logprobs(model, &host.seqs), batch)
}

/// `log π(token j+1 | tokens ≤ j)` of every row of `seqs` under `model`, on its device,
/// row-major `[n, t−1]` on the host.
pub fn seq_logprobs(model: &dyn InferenceModel, seqs: &SeqBatch) -> Vec<f32> {
    let input = seqs.to_input(&model.device());
    let targets = input.tokens.clone().slice([0..seqs.n, 1..seqs.t]);
    to_vec(model.token_logprobs(&input, targets))
}

/// `[n, t−1]` log-prob values as a constant tensor shaped and placed like `batch`'s.
pub fn frozen_tensor(values: Vec<f32>, batch: &PolicyBatch) -> Tensor<foil_core::backend::B, 2> {
    Tensor::from_data(
        TensorData::new(values, [batch.n, batch.width]),
        &batch.mask.device(),
    )
}

/// Forward, loss, finiteness check and optimizer step. Returns the loss and its metrics.
pub fn objective_step(
    ctx: &mut RunContext,
    objective: &dyn Objective,
    batch: &PolicyBatch,
    step: usize,
    lr: f64,
) -> anyhow::Result<Vec<(String, f32)>> {
    let (logprobs, entropy) = if objective.needs_entropy() {
        let logits = ctx.policy.forward(&batch.input);
        let entropy = token_entropy(logits.clone());
        (token_logprobs(logits, batch.targets.clone()), Some(entropy))
    } else {
        let input = &batch.input;
        (
            ctx.policy.token_logprobs(input, batch.targets.clone()),
            None,
        )
    };
    let loss = objective.loss(batch, &PolicyOutput { logprobs, entropy })?;
    let value = finite_value(&loss).map_err(|nf| ctx.non_finite(step, nf.value, nf.detail))?;
    ctx.policy.step(loss.value, lr)?;
    Ok(step_metrics(value, loss.metrics))
}

/// A loss that is not finite: its value and its terms' metrics, for the error message.
pub struct NonFinite {
    /// The loss.
    pub value: f32,
    /// Its metrics as `name=value, …`.
    pub detail: String,
}

/// The value of `loss`, or what makes the step refuse it.
pub(crate) fn finite_value(loss: &Loss) -> Result<f32, NonFinite> {
    let value = to_vec(loss.value.clone())[0];
    if value.is_finite() {
        return Ok(value);
    }
    let detail = loss
        .metrics
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ");
    Err(NonFinite { value, detail })
}

/// What a step logs: `loss` first, then the objective's metrics.
pub(crate) fn step_metrics(value: f32, metrics: Vec<(String, f32)>) -> Vec<(String, f32)> {
    let mut out = vec![("loss".to_string(), value)];
    out.extend(metrics);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use foil_core::backend::parse_device;
    use foil_core::batch::{to_vec, token_logprobs};
    use foil_core::policy::{OptimizerConfig, Policy};
    use foil_core::{PolicyConfig, PolicyOutput};
    use foil_objectives::PpoClip;

    fn policy() -> Box<dyn Policy> {
        let mut p = foil_models::TinyGpt {
            d_model: 16,
            layers: 1,
            heads: 2,
            context: 16,
            mlp_ratio: 2,
            init_seed: 0,
            precision: Default::default(),
        }
        .build(12, &parse_device("cpu").unwrap(), 3)
        .unwrap();
        p.reset_optimizer(&OptimizerConfig::adamw(1e-2));
        p
    }

    /// One PPO-clip update with `old` log-probs from `old_from` (or none: π_old = sg[π_θ]);
    /// returns the loss and the log-probs of the batch after the update.
    fn update(old_from: Option<&dyn Policy>) -> (f32, Vec<f32>) {
        let rows: Vec<(&[u32], &[u32], Vec<f32>)> = vec![
            (&[1, 2], &[3, 4, 5], vec![1.0; 3]),
            (&[1, 6], &[7, 8], vec![-0.5; 2]),
            (&[2], &[9, 10, 11, 3], vec![0.25; 4]),
        ];
        let host = HostPolicyBatch::new(&rows, 0);
        let mut p = policy();
        let mut batch = host.to_device(&p.device(), 4);
        if let Some(o) = old_from {
            batch.old_logprobs = Some(frozen_logprobs(o.inference().as_ref(), &host, &batch));
        }
        let logprobs = token_logprobs(p.forward(&batch.input), batch.targets.clone());
        let loss = PpoClip::default()
            .loss(
                &batch,
                &PolicyOutput {
                    logprobs,
                    entropy: None,
                },
            )
            .unwrap();
        let value = to_vec(loss.value.clone())[0];
        p.step(loss.value, 1e-2).unwrap();
        let after = to_vec(token_logprobs(
            p.forward(&batch.input),
            batch.targets.clone(),
        ));
        (value, after)
    }

    /// rl skips the old-log-prob pass when a batch gets one update: that must give the same
    /// loss and the same step as computing π_old with a separate frozen forward pass.
    #[test]
    fn single_update_without_old_logprobs_matches_a_frozen_old_pass() {
        let same = policy(); // the same seed and init as the policy being updated
        let (l_old, after_old) = update(Some(same.as_ref()));
        let (l_none, after_none) = update(None);
        // ratio 1 either way: loss = −Σ A·m / Σ m over the 9 response tokens
        // = −(3·1 − 2·0.5 + 4·0.25) / 9 = −3/9
        assert!((l_old + 1.0 / 3.0).abs() < 1e-5, "{l_old}");
        assert!((l_none - l_old).abs() < 1e-6, "{l_none} vs {l_old}");
        for (a, b) in after_old.iter().zip(&after_none) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        // a stale π_old (another init) gives a different loss: the comparison can fail
        let mut other = foil_models::TinyGpt {
            d_model: 16,
            layers: 1,
            heads: 2,
            context: 16,
            mlp_ratio: 2,
            init_seed: 1,
            precision: Default::default(),
        }
        .build(12, &parse_device("cpu").unwrap(), 3)
        .unwrap();
        other.reset_optimizer(&OptimizerConfig::adamw(1e-2));
        let (l_stale, _) = update(Some(other.as_ref()));
        assert!((l_stale - l_old).abs() > 1e-4, "{l_stale} vs {l_old}");
    }
}
