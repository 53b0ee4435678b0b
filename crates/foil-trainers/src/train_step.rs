//! One gradient step of an objective on packed rows: shared by `sft` and `rl`.

use burn::tensor::{Tensor, TensorData};
use foil_core::batch::{HostPolicyBatch, PolicyBatch, to_vec, token_entropy, token_logprobs};
use foil_core::policy::InferenceModel;
use foil_core::run::RunContext;
use foil_core::{Objective, PolicyOutput};

/// Per-token log-probs of the batch's targets under a frozen model, as a constant tensor on
/// the training device.
pub fn frozen_logprobs(
    model: &dyn InferenceModel,
    host: &HostPolicyBatch,
    batch: &PolicyBatch,
) -> Tensor<foil_core::backend::B, 2> {
    let input = host.seqs.to_input(&model.device());
    let targets = input.tokens.clone().slice([0..host.seqs.n, 1..host.seqs.t]);
    let lp = to_vec(model.token_logprobs(&input, targets));
    Tensor::from_data(
        TensorData::new(lp, [batch.n, batch.width]),
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
    let logits = ctx.policy.forward(&batch.input);
    let entropy = objective
        .needs_entropy()
        .then(|| token_entropy(logits.clone()));
    let logprobs = token_logprobs(logits, batch.targets.clone());
    let loss = objective.loss(batch, &PolicyOutput { logprobs, entropy })?;
    let value = to_vec(loss.value.clone())[0];
    if !value.is_finite() {
        let detail = loss
            .metrics
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(ctx.non_finite(step, value, detail));
    }
    ctx.policy.step(loss.value, lr)?;
    let mut metrics = vec![("loss".to_string(), value)];
    metrics.extend(loss.metrics);
    Ok(metrics)
}
