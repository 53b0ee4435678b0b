//! The policy interface: a trainable language model with its optimizer, and the
//! gradient-free snapshot used for rollouts, evaluation and the frozen reference.

use std::any::Any;
use std::path::Path;

use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::backend::{B, Device};
use crate::batch::SeqInput;

/// Optimizer settings of a training stage. A new stage starts a fresh optimizer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum OptimizerConfig {
    /// AdamW (Loshchilov & Hutter 2019) with optional per-parameter gradient-norm clipping
    /// (burn's `GradientClippingConfig::Norm`, applied to each parameter tensor).
    Adamw {
        lr: f64,
        #[serde(default = "default_beta1")]
        beta1: f32,
        #[serde(default = "default_beta2")]
        beta2: f32,
        #[serde(default)]
        weight_decay: f32,
        #[serde(default)]
        grad_clip: Option<f32>,
        /// Linear warm-up over this many steps, then constant.
        #[serde(default)]
        warmup_steps: usize,
    },
}

fn default_beta1() -> f32 {
    0.9
}
fn default_beta2() -> f32 {
    0.999
}

impl OptimizerConfig {
    /// AdamW with defaults and the given learning rate.
    pub fn adamw(lr: f64) -> Self {
        OptimizerConfig::Adamw {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            weight_decay: 0.0,
            grad_clip: Some(1.0),
            warmup_steps: 0,
        }
    }

    /// Learning rate at (0-based) `step`: linear warm-up then constant.
    pub fn lr_at(&self, step: usize) -> f64 {
        match self {
            OptimizerConfig::Adamw {
                lr, warmup_steps, ..
            } => {
                if *warmup_steps == 0 || step >= *warmup_steps {
                    *lr
                } else {
                    lr * (step + 1) as f64 / *warmup_steps as f64
                }
            }
        }
    }
}

/// A trainable policy on the training (autodiff) device, owning its optimizer state.
pub trait Policy: Send {
    /// Logits `[n, T, V]` for every column of `input`, with the autodiff graph.
    fn forward(&self, input: &SeqInput) -> Tensor<B, 3>;
    /// `log π(targets[:, j] | columns ≤ j)` for the first `T-1` columns, `[n, T-1]`, with
    /// the autodiff graph: what objectives read when they need no entropy. Policies that
    /// train on the host override it so that the `[n, T, V]` logits never reach burn.
    fn token_logprobs(&self, input: &SeqInput, targets: Tensor<B, 2, Int>) -> Tensor<B, 2> {
        crate::batch::token_logprobs(self.forward(input), targets)
    }
    /// Back-propagates `loss`, applies one optimizer step with learning rate `lr`.
    fn step(&mut self, loss: Tensor<B, 1>, lr: f64) -> anyhow::Result<()>;
    /// Data-parallel step: back-propagates this replica's `loss`, replaces every gradient
    /// by its mean over the replicas through `sync` (same parameters in the same order on
    /// every replica), then applies the same optimizer step as [`Policy::step`].
    fn step_synced(
        &mut self,
        _loss: Tensor<B, 1>,
        _lr: f64,
        _sync: &mut dyn crate::grad_sync::GradientSync,
    ) -> anyhow::Result<()> {
        anyhow::bail!(
            "policy {} does not support data-parallel training",
            std::any::type_name::<Self>()
        )
    }
    /// Replaces the optimizer (and its state) with a fresh one.
    fn reset_optimizer(&mut self, config: &OptimizerConfig);
    /// A gradient-free snapshot of the current weights on the inner device.
    fn inference(&self) -> Box<dyn InferenceModel>;
    /// Writes weights and optimizer state into `dir` (which exists and is empty).
    fn save(&self, dir: &Path) -> anyhow::Result<()>;
    /// Reads what [`Policy::save`] wrote.
    fn load(&mut self, dir: &Path) -> anyhow::Result<()>;
    /// Number of scalar parameters.
    fn num_params(&self) -> usize;
    /// The training device.
    fn device(&self) -> Device;
    /// A frozen reference the policy provides for free, e.g. the base model under LoRA
    /// adapters. `None`: the trainer snapshots the weights at the start of the stage.
    fn reference(&self) -> Option<Box<dyn InferenceModel>> {
        None
    }
    /// Writes the policy as a Hugging Face model directory (safetensors, config.json,
    /// tokenizer files) that transformers and vLLM load.
    fn export(&self, _dir: &Path) -> anyhow::Result<()> {
        anyhow::bail!("this policy cannot be exported as a Hugging Face model directory")
    }
    /// Writes the policy as one GGUF file at `path` that llama.cpp serves (adapters
    /// merged, matrices stored as `dtype`, tokenizer metadata included).
    fn export_gguf(&self, _path: &Path, _dtype: GgufDtype) -> anyhow::Result<()> {
        anyhow::bail!("this policy cannot be exported as a GGUF file")
    }
}

/// How a GGUF export stores its matrices (1-D norms and biases stay f32 either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GgufDtype {
    #[default]
    F32,
    /// Half precision: half the bytes; llama.cpp computes in f32 from them.
    F16,
}

/// KV cache of an ongoing decode, owned by the caller and handed back at each step.
pub type DecodeCache = Box<dyn Any + Send>;

/// A frozen model: full forward passes and incremental decoding with a KV cache.
pub trait InferenceModel: Send + Sync {
    /// Logits `[n, T, V]`, no autodiff graph.
    fn forward(&self, input: &SeqInput) -> Tensor<B, 3>;
    /// Runs the (left-padded) prompts and returns the logits of their last column
    /// `[n, V]` with the cache to continue from.
    fn prefill(&self, input: &SeqInput) -> (Tensor<B, 2>, DecodeCache);
    /// [`prefill`](Self::prefill) of `input` with row `i` repeated `repeats[i]` times, in
    /// order (`Σ repeats` rows out): what a sampler asks when one prompt starts several
    /// completions. The default repeats the rows and prefills them all; models whose rows
    /// do not interact override it to prefill each prompt once and copy its cache (a GRPO
    /// group of 8 completions then prefills its prompt once, not 8 times).
    fn prefill_repeated(&self, input: &SeqInput, repeats: &[usize]) -> (Tensor<B, 2>, DecodeCache) {
        self.prefill(&input.repeat_rows(repeats))
    }
    /// Appends one token per row at the given positions and returns the next logits
    /// `[n, V]`.
    fn decode(
        &self,
        cache: &mut DecodeCache,
        tokens: Tensor<B, 2, Int>,
        positions: Tensor<B, 2, Int>,
    ) -> Tensor<B, 2>;
    /// The device its tensors live on.
    fn device(&self) -> Device;
    /// The longest sequence (prompt + response) it accepts.
    fn context(&self) -> usize;
    /// `log π(targets[:, j] | columns ≤ j)` for the first `T-1` columns, `[n, T-1]`.
    /// Models with a large vocabulary override this to work through the columns in
    /// chunks, so that `[n, T, V]` logits never exist at once.
    fn token_logprobs(&self, input: &SeqInput, targets: Tensor<B, 2, Int>) -> Tensor<B, 2> {
        crate::batch::token_logprobs(self.forward(input), targets)
    }
}
