//! `tiny_gpt`: a small pre-norm decoder-only transformer (GPT-2 layout; Radford et al.
//! 2019; nanoGPT), trained from scratch.
//!
//! ```text
//! h_0 = E_tok[x_t] + E_pos[p_t]                      p_t: position among real tokens
//! a_l = h_l + W_o · Attn(LN_1(h_l))                  Attn = softmax(QKᵀ/√d_h + M) V, per head
//! h_{l+1} = a_l + W_2 · GELU(W_1 · LN_2(a_l))
//! logits = W_head · LN_f(h_L)
//! ```
//!
//! `M` is 0 where the key is a real token at or before the query and −1e9 elsewhere
//! (causal mask plus padding mask), so a row's outputs do not depend on its padding.
//! Incremental decoding keeps each layer's keys and values (KV cache); its logits equal
//! those of a full forward pass (tested to 1e-4). On a CPU device the inference copy
//! prefills and decodes on the host (`crate::host::gpt`; equal to the burn path to 1e-4,
//! tested).

use std::path::Path;

use burn::module::{AutodiffModule, Module};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::optim::Optimizer;
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, DType, Int, Tensor};
use serde::{Deserialize, Serialize};

use foil_core::backend::{B as FB, Device, inner_device, materialize, train_device, with_seed};
use foil_core::batch::{SeqInput, to_vec};
use foil_core::policy::{DecodeCache, InferenceModel, OptimizerConfig, Policy};
use foil_core::{PolicyConfig, register_part};

use crate::host::gpt::{GptBlock, HostGpt};
use crate::host::gpt_train::{self, GptParams, GptPass, GptShape};
use crate::host::train::{HostInput, ParamRef, Pending, use_host_train};
use crate::host::{
    Dense, Norm, decode_tensors, prefill_repeated_tensors, prefill_tensors, use_host_decode,
};
use crate::precision::{Precision, working_copy};
use crate::trainable::{self, Adam, FusedAdamW, attend, causal_bias, key_bias, linear_rows};

/// The LayerNorms' ε (burn's and PyTorch's default).
const LN_EPS: f64 = 1e-5;

/// Recipe part: `policy: {type: tiny_gpt, d_model: 128, layers: 4, heads: 4, context: 96}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TinyGpt {
    /// Width of the residual stream.
    pub d_model: usize,
    /// Decoder blocks.
    pub layers: usize,
    /// Attention heads (must divide `d_model`).
    pub heads: usize,
    /// Longest sequence (prompt + response), i.e. learned positions.
    pub context: usize,
    /// MLP width as a multiple of `d_model`.
    pub mlp_ratio: usize,
    /// Extra initialisation seed, mixed with the run seed.
    pub init_seed: u64,
    /// `f32`, or `bf16`: mixed precision, bf16 passes over f32 master weights and AdamW
    /// state (`crate::precision`; for GPUs, where bf16 runs on tensor cores).
    pub precision: Precision,
}

impl Default for TinyGpt {
    fn default() -> Self {
        Self {
            d_model: 128,
            layers: 4,
            heads: 4,
            context: 96,
            mlp_ratio: 4,
            init_seed: 0,
            precision: Precision::F32,
        }
    }
}

register_part!(
    PolicyConfig,
    "tiny_gpt",
    TinyGpt,
    "small pre-norm GPT trained from scratch (GPT-2 layout, learned positions, KV cache)"
);

#[typetag::serde(name = "tiny_gpt")]
impl PolicyConfig for TinyGpt {
    fn build(
        &self,
        vocab_size: usize,
        device: &Device,
        seed: u64,
    ) -> anyhow::Result<Box<dyn Policy>> {
        Ok(Box::new(self.build_policy(vocab_size, device, seed)?))
    }
}

impl TinyGpt {
    /// The trainable policy on `device`'s autodiff device (what `build` boxes).
    fn build_policy(
        &self,
        vocab_size: usize,
        device: &Device,
        seed: u64,
    ) -> anyhow::Result<TinyGptPolicy> {
        anyhow::ensure!(
            self.heads > 0 && self.d_model.is_multiple_of(self.heads),
            "tiny_gpt: heads ({}) must divide d_model ({})",
            self.heads,
            self.d_model
        );
        anyhow::ensure!(
            self.layers > 0 && self.context > 1,
            "tiny_gpt: layers and context must be positive"
        );
        let train = train_device(device);
        let init = foil_core::rng::derive(seed, &[0x1417, self.init_seed]);
        let model = with_seed(&train, init, || {
            materialize(self.init_model(vocab_size, &train))
        });
        Ok(TinyGptPolicy {
            optim: FusedAdamW::default().init(),
            model: Some(model),
            // the host passes are f32: bf16 passes run through burn on any device
            host_train: use_host_train(&train) && self.precision == Precision::F32,
            precision: self.precision,
            pending: Pending::default(),
            device: train,
        })
    }

    /// An error naming `part` unless `precision` is f32: parts that use a `tiny_gpt` as
    /// a backbone (reward models, scorers, encoders) train it in f32 through their own
    /// code, where `precision: bf16` would be silently ignored.
    pub fn ensure_f32(&self, part: &str) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.precision == Precision::F32,
            "{part}: `precision: bf16` applies to policies; this model trains in f32 (remove the field)"
        );
        Ok(())
    }

    /// Builds a freshly initialised model on `device`.
    pub fn init_model<B: Backend>(&self, vocab: usize, device: &B::Device) -> TinyGptModel<B> {
        let d = self.d_model;
        TinyGptModel {
            tok: EmbeddingConfig::new(vocab, d).init(device),
            pos: EmbeddingConfig::new(self.context, d).init(device),
            blocks: (0..self.layers)
                .map(|_| Block {
                    ln1: LayerNormConfig::new(d).with_epsilon(LN_EPS).init(device),
                    qkv: LinearConfig::new(d, 3 * d).init(device),
                    proj: LinearConfig::new(d, d).init(device),
                    ln2: LayerNormConfig::new(d).with_epsilon(LN_EPS).init(device),
                    fc1: LinearConfig::new(d, self.mlp_ratio * d).init(device),
                    fc2: LinearConfig::new(self.mlp_ratio * d, d).init(device),
                    heads: self.heads,
                })
                .collect(),
            ln_f: LayerNormConfig::new(d).with_epsilon(LN_EPS).init(device),
            head: LinearConfig::new(d, vocab).init(device),
            context: self.context,
        }
    }
}

/// One pre-norm decoder block.
#[derive(Module, Debug)]
pub struct Block<B: Backend> {
    ln1: LayerNorm<B>,
    qkv: Linear<B>,
    proj: Linear<B>,
    ln2: LayerNorm<B>,
    fc1: Linear<B>,
    fc2: Linear<B>,
    heads: usize,
}

/// Keys and values of one layer, `[n, heads, t, d_head]`.
#[derive(Debug, Clone)]
struct LayerCache<B: Backend> {
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
}

impl<B: Backend> Block<B> {
    /// `x`: `[n, t, d]`; `bias`: additive attention mask broadcastable to
    /// `[n, heads, t, t_keys]`. With `cache`, keys/values are appended to it.
    fn forward(
        &self,
        x: Tensor<B, 3>,
        bias: Tensor<B, 4>,
        cache: Option<&mut LayerCache<B>>,
        fresh: &mut Option<LayerCache<B>>,
    ) -> Tensor<B, 3> {
        let [n, t, d] = x.dims();
        let h = self.heads;
        let dh = d / h;
        let qkv = linear_rows(&self.qkv, self.ln1.forward(x.clone()));
        let split = |i: usize| {
            qkv.clone()
                .slice([0..n, 0..t, i * d..(i + 1) * d])
                .reshape([n, t, h, dh])
                .swap_dims(1, 2)
        };
        let (q, mut k, mut v) = (split(0), split(1), split(2));
        match cache {
            Some(c) => {
                k = Tensor::cat(vec![c.k.clone(), k], 2);
                v = Tensor::cat(vec![c.v.clone(), v], 2);
                c.k = k.clone();
                c.v = v.clone();
            }
            None => {
                *fresh = Some(LayerCache {
                    k: k.clone(),
                    v: v.clone(),
                })
            }
        }
        let y = attend(q, k, v, bias).swap_dims(1, 2).reshape([n, t, d]);
        let x = x + linear_rows(&self.proj, y);
        let m = linear_rows(
            &self.fc2,
            burn::tensor::activation::gelu(linear_rows(&self.fc1, self.ln2.forward(x.clone()))),
        );
        x + m
    }
}

/// The `tiny_gpt` network.
#[derive(Module, Debug)]
pub struct TinyGptModel<B: Backend> {
    tok: Embedding<B>,
    pos: Embedding<B>,
    blocks: Vec<Block<B>>,
    ln_f: LayerNorm<B>,
    head: Linear<B>,
    context: usize,
}

/// Decode state: per-layer caches and the key bias `[n, 1, 1, t_keys]`.
struct GptCache<B: Backend> {
    layers: Vec<LayerCache<B>>,
    key_bias: Tensor<B, 4>,
}

impl<B: Backend> TinyGptModel<B> {
    fn embed(&self, tokens: Tensor<B, 2, Int>, positions: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let max = self.context as i64 - 1;
        self.tok.forward(tokens) + self.pos.forward(positions.clamp(0, max))
    }

    fn logits(&self, h: Tensor<B, 3>) -> Tensor<B, 3> {
        linear_rows(&self.head, self.ln_f.forward(h))
    }

    /// Logits `[n, t, V]` of a full pass.
    pub fn forward(
        &self,
        tokens: Tensor<B, 2, Int>,
        positions: Tensor<B, 2, Int>,
        valid: Tensor<B, 2, Bool>,
    ) -> Tensor<B, 3> {
        self.forward_with_cache(tokens, positions, valid).0
    }

    /// Final hidden states `LN_f(h_L)` `[n, t, d_model]` of a full pass: what the
    /// vocabulary head reads (`forward = W_head · hidden`). Other heads read them too,
    /// e.g. the scalar head of a learned reward model (`foil-rewards`).
    pub fn hidden(
        &self,
        tokens: Tensor<B, 2, Int>,
        positions: Tensor<B, 2, Int>,
        valid: Tensor<B, 2, Bool>,
    ) -> Tensor<B, 3> {
        let device = self.head.weight.val().device();
        let [n, t] = tokens.dims();
        let valid = Tensor::<B, 2>::zeros([n, t], &device).mask_fill(valid, 1.0);
        let bias = causal_bias(key_bias(valid), &device).cast(self.head.weight.val().dtype());
        let mut h = self.embed(tokens, positions);
        for b in &self.blocks {
            h = b.forward(h, bias.clone(), None, &mut None);
        }
        self.ln_f.forward(h)
    }

    /// Width of the residual stream.
    pub fn d_model(&self) -> usize {
        self.head.weight.dims()[0]
    }

    fn forward_with_cache(
        &self,
        tokens: Tensor<B, 2, Int>,
        positions: Tensor<B, 2, Int>,
        valid: Tensor<B, 2, Bool>,
    ) -> (Tensor<B, 3>, GptCache<B>) {
        // Int and Bool tensors carry no autodiff wrapper (and a float made from them is
        // a plain tensor), so the parameters say which device float activations live on.
        let device = self.head.weight.val().device();
        let [n, t] = tokens.dims();
        let valid = Tensor::<B, 2>::zeros([n, t], &device).mask_fill(valid, 1.0);
        let key_bias = key_bias(valid);
        // in the passes' dtype once here, not per layer (`precision: bf16`: bf16)
        let bias = causal_bias(key_bias.clone(), &device).cast(self.head.weight.val().dtype());
        let mut h = self.embed(tokens, positions);
        let mut layers = Vec::with_capacity(self.blocks.len());
        for b in &self.blocks {
            let mut fresh = None;
            h = b.forward(h, bias.clone(), None, &mut fresh);
            layers.push(fresh.expect("block fills its cache"));
        }
        let cache = GptCache { layers, key_bias };
        (self.logits(h), cache)
    }

    /// One decode step: `tokens`/`positions` are `[n, 1]`.
    fn decode(
        &self,
        cache: &mut GptCache<B>,
        tokens: Tensor<B, 2, Int>,
        positions: Tensor<B, 2, Int>,
    ) -> Tensor<B, 2> {
        let [n, _] = tokens.dims();
        let zero = Tensor::<B, 4>::zeros([n, 1, 1, 1], &cache.key_bias.device());
        cache.key_bias = Tensor::cat(vec![cache.key_bias.clone(), zero], 3);
        let mut h = self.embed(tokens, positions);
        for (b, c) in self.blocks.iter().zip(cache.layers.iter_mut()) {
            h = b.forward(h, cache.key_bias.clone(), Some(c), &mut None);
        }
        let v = self.head.weight.dims()[1];
        self.logits(h).reshape([n, v])
    }
}

impl TinyGptModel<FB> {
    /// The weights copied to the host, for [`HostGpt`]'s prefill and decode steps.
    pub fn to_host(&self) -> HostGpt {
        HostGpt {
            heads: self.blocks.first().map_or(1, |b| b.heads),
            context: self.context,
            tok: to_vec(self.tok.weight.val()),
            pos: to_vec(self.pos.weight.val()),
            blocks: self
                .blocks
                .iter()
                .map(|b| GptBlock {
                    ln1: Norm::from_layer_norm(&b.ln1, LN_EPS),
                    qkv: Dense::from_linear(&b.qkv),
                    proj: Dense::from_linear(&b.proj),
                    ln2: Norm::from_layer_norm(&b.ln2, LN_EPS),
                    fc1: Dense::from_linear(&b.fc1),
                    fc2: Dense::from_linear(&b.fc2),
                })
                .collect(),
            ln_f: Norm::from_layer_norm(&self.ln_f, LN_EPS),
            head: Dense::from_linear(&self.head),
        }
    }
}

impl TinyGptModel<FB> {
    /// Every parameter, in the order of [`GptParams::from_flat`].
    fn param_refs(&self) -> Vec<ParamRef<'_>> {
        fn linear(l: &Linear<FB>) -> [ParamRef<'_>; 2] {
            let bias = l.bias.as_ref().expect("tiny_gpt's linears have biases");
            [ParamRef::Matrix(&l.weight), ParamRef::Vector(bias)]
        }
        fn norm(n: &LayerNorm<FB>) -> [ParamRef<'_>; 2] {
            let beta = n.beta.as_ref().expect("tiny_gpt's LayerNorms have a β");
            [ParamRef::Vector(&n.gamma), ParamRef::Vector(beta)]
        }
        let mut refs = vec![
            ParamRef::Matrix(&self.tok.weight),
            ParamRef::Matrix(&self.pos.weight),
        ];
        for b in &self.blocks {
            refs.extend(norm(&b.ln1));
            refs.extend(linear(&b.qkv));
            refs.extend(linear(&b.proj));
            refs.extend(norm(&b.ln2));
            refs.extend(linear(&b.fc1));
            refs.extend(linear(&b.fc2));
        }
        refs.extend(norm(&self.ln_f));
        refs.extend(linear(&self.head));
        refs
    }
}

/// The trainable `tiny_gpt` with its AdamW state.
pub struct TinyGptPolicy {
    model: Option<TinyGptModel<FB>>,
    optim: Adam<TinyGptModel<FB>>,
    /// Forward and backward passes on the host (CPU devices; `crate::host::train`).
    host_train: bool,
    /// The host forward passes since the last step.
    pending: Pending<GptPass>,
    /// The dtype of burn's training passes (the weights stay f32).
    precision: Precision,
    device: Device,
}

impl TinyGptPolicy {
    fn model(&self) -> &TinyGptModel<FB> {
        self.model.as_ref().expect("model present between steps")
    }

    /// The logits of a host forward pass, as an autodiff leaf whose trace waits in
    /// `pending` for the step.
    fn host_forward(&self, input: &SeqInput) -> Tensor<FB, 3> {
        let (logits, x, trace) = self.host_pass(input);
        let vocab = logits.len() / (x.rows * x.t).max(1);
        self.pending
            .record(logits, [x.rows, x.t, vocab], &self.device, trace)
    }

    /// A host forward pass: its logits `[rows·t, vocab]`, its input and its trace.
    fn host_pass(&self, input: &SeqInput) -> (Vec<f32>, HostInput, GptPass) {
        let model = self.model();
        let params = GptParams::from_flat(model.param_refs().iter().map(ParamRef::read).collect());
        let shape = GptShape {
            heads: model.blocks.first().map_or(1, |b| b.heads),
            context: model.context,
            eps: LN_EPS as f32,
        };
        let x = HostInput::new(input);
        let (logits, trace) =
            gpt_train::forward_split(params, shape, &x.tokens, &x.positions, &x.valid, x.rows);
        (logits, x, trace)
    }

    /// The gradients of `loss`: burn's, plus the host backward pass of every pending host
    /// forward pass that `loss` depends on.
    fn gradients(&self, loss: Tensor<FB, 1>) -> burn::optim::GradientsParams {
        let model = self.model();
        let mut host: Option<GptParams> = None;
        let mut grads = self.pending.gradients(model, loss, |trace, d_logits| {
            let g = host.get_or_insert_with(|| trace.params().zeros_like());
            gpt_train::backward_split(trace, d_logits, g);
        });
        if let Some(host) = host {
            for (p, g) in model.param_refs().iter().zip(host.into_flat()) {
                p.register(g, &mut grads);
            }
        }
        grads
    }
}

impl Policy for TinyGptPolicy {
    fn forward(&self, input: &SeqInput) -> Tensor<FB, 3> {
        if self.host_train {
            return self.host_forward(input);
        }
        working_copy(self.model(), self.precision)
            .forward(
                input.tokens.clone(),
                input.positions.clone(),
                input.key_valid.clone(),
            )
            .cast(DType::F32)
    }

    fn token_logprobs(&self, input: &SeqInput, targets: Tensor<FB, 2, Int>) -> Tensor<FB, 2> {
        if !self.host_train {
            return foil_core::batch::token_logprobs(self.forward(input), targets);
        }
        let (logits, x, trace) = self.host_pass(input);
        let targets = crate::host::ids(targets);
        self.pending
            .record_logprobs(logits, x.t, &targets, &self.device, trace)
    }

    fn step(&mut self, loss: Tensor<FB, 1>, lr: f64) -> anyhow::Result<()> {
        let grads = self.gradients(loss);
        let model = self.model.take().expect("model present between steps");
        self.model = Some(self.optim.step(lr, model, grads));
        Ok(())
    }

    fn step_synced(
        &mut self,
        loss: Tensor<FB, 1>,
        lr: f64,
        sync: &mut dyn foil_core::grad_sync::GradientSync,
    ) -> anyhow::Result<()> {
        let grads = self.gradients(loss);
        trainable::step_synced(&mut self.model, &mut self.optim, grads, lr, sync)
    }

    fn reset_optimizer(&mut self, config: &OptimizerConfig) {
        self.optim = trainable::adamw(config);
    }

    fn inference(&self) -> Box<dyn InferenceModel> {
        Box::new(GptInference::new(
            self.model().valid(),
            inner_device(&self.device),
        ))
    }

    fn save(&self, dir: &Path) -> anyhow::Result<()> {
        trainable::save(self.model(), &self.optim, dir, "tiny_gpt")
    }

    fn load(&mut self, dir: &Path) -> anyhow::Result<()> {
        let model = self.model.take().expect("model present");
        let optim = std::mem::replace(&mut self.optim, FusedAdamW::default().init());
        let (model, optim) = trainable::load(model, optim, dir, &self.device, "tiny_gpt")?;
        self.pending.clear();
        self.model = Some(model);
        self.optim = optim;
        Ok(())
    }

    fn num_params(&self) -> usize {
        Module::<FB>::num_params(self.model())
    }

    fn device(&self) -> Device {
        self.device.clone()
    }
}

/// A gradient-free copy of the weights on the inner device, and on the host when that
/// device is a CPU (`host`: prefill and decode steps run there).
struct GptInference {
    model: TinyGptModel<FB>,
    host: Option<HostGpt>,
    device: Device,
}

impl GptInference {
    fn new(model: TinyGptModel<FB>, device: Device) -> Self {
        let on_host = use_host_decode(&device);
        Self::with_host(model, device, on_host)
    }

    fn with_host(model: TinyGptModel<FB>, device: Device, on_host: bool) -> Self {
        let host = on_host.then(|| model.to_host());
        Self {
            model,
            host,
            device,
        }
    }
}

impl InferenceModel for GptInference {
    fn forward(&self, input: &SeqInput) -> Tensor<FB, 3> {
        self.model.forward(
            input.tokens.clone(),
            input.positions.clone(),
            input.key_valid.clone(),
        )
    }

    fn prefill(&self, input: &SeqInput) -> (Tensor<FB, 2>, DecodeCache) {
        if let Some(host) = &self.host {
            return prefill_tensors(host, input, &self.device);
        }
        let (logits, cache) = self.model.forward_with_cache(
            input.tokens.clone(),
            input.positions.clone(),
            input.key_valid.clone(),
        );
        let [n, t, v] = logits.dims();
        let last = logits.slice([0..n, t - 1..t, 0..v]).reshape([n, v]);
        (last, Box::new(cache))
    }

    fn prefill_repeated(
        &self,
        input: &SeqInput,
        repeats: &[usize],
    ) -> (Tensor<FB, 2>, DecodeCache) {
        match &self.host {
            Some(host) => prefill_repeated_tensors(host, input, repeats, &self.device),
            None => self.prefill(&input.repeat_rows(repeats)),
        }
    }

    fn decode(
        &self,
        cache: &mut DecodeCache,
        tokens: Tensor<FB, 2, Int>,
        positions: Tensor<FB, 2, Int>,
    ) -> Tensor<FB, 2> {
        if let Some(host) = &self.host {
            return decode_tensors(host, cache, tokens, positions, &self.device);
        }
        let cache = cache
            .downcast_mut::<GptCache<FB>>()
            .expect("a tiny_gpt cache handed back to tiny_gpt");
        self.model.decode(cache, tokens, positions)
    }

    fn device(&self) -> Device {
        self.device.clone()
    }

    fn context(&self) -> usize {
        self.model.context
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::train::testing;
    use burn::tensor::TensorData;
    use foil_core::backend::parse_device;
    use foil_core::backend::{materialize, with_seed};
    use foil_core::batch::{SeqBatch, to_vec};

    fn small() -> TinyGpt {
        TinyGpt {
            d_model: 32,
            layers: 2,
            heads: 4,
            context: 32,
            mlp_ratio: 2,
            init_seed: 3,
            precision: Default::default(),
        }
    }

    /// Both decode paths, the host one (CPU default) and burn's (GPUs), against the full
    /// forward pass.
    #[test]
    fn kv_cache_decoding_matches_full_forward() {
        let device = parse_device("cpu").unwrap();
        let weights = with_seed(&device, 5, || {
            materialize(small().init_model::<FB>(11, &device))
        });
        for on_host in [true, false] {
            let model = GptInference::with_host(weights.clone(), device.clone(), on_host);
            assert_eq!(model.host.is_some(), on_host);
            decoding_matches_full_forward(&model);
        }
    }

    fn decoding_matches_full_forward(model: &dyn InferenceModel) {
        let device = model.device();
        // two prompts of different length → left padding in row 1
        let prompts = vec![vec![1u32, 2, 3, 4], vec![5u32, 6]];
        let continuation = [[7u32, 8, 9], [10, 1, 2]];
        let pre = SeqBatch::left_padded(&prompts, 0);
        let (mut logits, mut cache) = model.prefill(&pre.to_input(&device));
        let mut decoded = vec![to_vec(logits.clone())];
        for step in 0..3 {
            let toks: Vec<i64> = continuation.iter().map(|c| c[step] as i64).collect();
            let pos: Vec<i64> = prompts.iter().map(|p| (p.len() + step) as i64).collect();
            let tt = Tensor::from_data(TensorData::new(toks, [2, 1]), &device);
            let pp = Tensor::from_data(TensorData::new(pos, [2, 1]), &device);
            logits = model.decode(&mut cache, tt, pp);
            decoded.push(to_vec(logits.clone()));
        }
        // the full pass over prompt + continuation, laid out the same way
        let rows: Vec<(&[u32], &[u32])> = prompts
            .iter()
            .zip(continuation.iter())
            .map(|(p, c)| (p.as_slice(), &c[..]))
            .collect();
        let (full, p) = SeqBatch::prompt_response(&rows, 0);
        let all = to_vec(model.forward(&full.to_input(&device)));
        let v = 11;
        for (step, got) in decoded.iter().enumerate() {
            for row in 0..2 {
                let col = p - 1 + step;
                let want = &all[(row * full.t + col) * v..(row * full.t + col + 1) * v];
                let have = &got[row * v..(row + 1) * v];
                for (a, b) in want.iter().zip(have) {
                    assert!((a - b).abs() < 1e-4, "step {step} row {row}: {a} vs {b}");
                }
            }
        }
    }

    /// `small()` as a policy on the CPU, training on the host or through burn's autodiff.
    fn policy_on(host_train: bool) -> TinyGptPolicy {
        policy_in(host_train, Precision::F32)
    }

    fn policy_in(host_train: bool, precision: Precision) -> TinyGptPolicy {
        let device = train_device(&parse_device("cpu").unwrap());
        let model = with_seed(&device, 7, || {
            materialize(small().init_model::<FB>(11, &device))
        });
        TinyGptPolicy {
            model: Some(model),
            optim: FusedAdamW::default().init(),
            host_train,
            pending: Pending::default(),
            precision,
            device,
        }
    }

    /// `−Σ w·log π / 11` over left-padded rows of three lengths, weights of both signs
    /// (`crate::host::train::testing::weighted_nll`).
    fn weighted_nll(policy: &TinyGptPolicy, fused: bool) -> Tensor<FB, 1> {
        let rows: Vec<(&[u32], &[u32])> = vec![
            (&[1, 2, 3], &[4, 5, 6, 7]),
            (&[8], &[9, 10]),
            (&[2, 4], &[6, 8, 10, 1, 3]),
        ];
        let weight = |i: usize| ((i % 5) as f32 - 1.5) / 2.0;
        testing::weighted_nll(policy, &rows, fused, weight, 11.0)
    }

    /// The host training path back-propagates what burn's autodiff does: every parameter's
    /// gradient within 1e-4 of the tensor's largest (left padding, learned positions and
    /// all four heads included). Flipping a sign or dropping a term in any backward of
    /// `host::gpt_train` breaks this.
    #[test]
    fn host_gradients_match_burn_autodiff() {
        for fused in [false, true] {
            host_gradients_match(fused);
        }
    }

    fn host_gradients_match(fused: bool) {
        let (host, burn) = (policy_on(true), policy_on(false));
        let got = host.gradients(weighted_nll(&host, fused));
        let want = trainable::gradients(burn.model(), weighted_nll(&burn, false));
        let refs = (host.model().param_refs(), burn.model().param_refs());
        let what = format!("fused {fused}");
        let trained = testing::assert_same_gradients(&refs.0, &got, &refs.1, &want, &what);
        assert_eq!(trained, 2 + 12 * 2 + 4);
    }

    /// One AdamW step through either path leaves the same weights.
    #[test]
    fn host_and_burn_steps_give_the_same_weights() {
        let mut policies = [policy_on(true), policy_on(false)];
        for p in &mut policies {
            p.reset_optimizer(&OptimizerConfig::adamw(1e-2));
            let loss = weighted_nll(p, true);
            p.step(loss, 1e-2).unwrap();
        }
        let [a, b] = &policies;
        for (x, y) in a.model().param_refs().iter().zip(&b.model().param_refs()) {
            for (u, v) in x.read().iter().zip(&y.read()) {
                assert!((u - v).abs() < 1e-5, "{u} vs {v}");
            }
        }
        assert!(a.pending.passes_is_empty());
    }

    /// `precision: bf16` computes in bf16 and updates f32 weights:
    /// - its logits are f32 and near the f32 policy's (bf16 keeps 8 significant bits,
    ///   a relative 2⁻⁹ per rounding: within 2% of the largest logit after a few layers),
    ///   but not equal to them, which they would be if the passes stayed f32;
    /// - its gradients point the same way as the f32 policy's (cosine > 0.99 per tensor);
    /// - after an AdamW step the weights are still f32 and moved.
    #[test]
    fn bf16_mixed_precision_trains_f32_weights_with_bf16_passes() {
        let (f32p, mut bf16p) = (
            policy_in(false, Precision::F32),
            policy_in(false, Precision::Bf16),
        );
        let gap = testing::relative_logit_gap(&f32p, &bf16p);
        assert!(
            gap > 1e-6 && gap < 2e-2,
            "max |Δlogit| / max |logit| = {gap}"
        );
        let input = SeqBatch::left_padded(&[vec![1, 2]], 0).to_input(&bf16p.device());
        assert_eq!(
            bf16p.forward(&input).dtype(),
            DType::F32,
            "logits reach the loss in f32"
        );

        let want = trainable::gradients(f32p.model(), weighted_nll(&f32p, false));
        let got = trainable::gradients(bf16p.model(), weighted_nll(&bf16p, false));
        let (a, b) = (f32p.model().param_refs(), bf16p.model().param_refs());
        let cosines = testing::gradient_cosines(&a, &want, &b, &got);
        assert_eq!(cosines.len(), 2 + 12 * 2 + 4);
        assert!(cosines.iter().all(|&c| c > 0.99), "{cosines:?}");

        let before = bf16p.model().param_refs()[0].read();
        bf16p.reset_optimizer(&OptimizerConfig::adamw(1e-2));
        let loss = weighted_nll(&bf16p, false);
        bf16p.step(loss, 1e-2).unwrap();
        let model = bf16p.model();
        assert_eq!(model.tok.weight.val().dtype(), DType::F32);
        assert_eq!(model.blocks[0].qkv.weight.val().dtype(), DType::F32);
        let after = model.param_refs()[0].read();
        assert!(before.iter().zip(&after).any(|(x, y)| x != y));
    }

    /// The host training path is f32: `precision: bf16` sends a CPU policy through
    /// burn's autodiff instead.
    #[test]
    fn bf16_precision_leaves_the_host_path() {
        let cpu = parse_device("cpu").unwrap();
        for (precision, on_host) in [(Precision::F32, true), (Precision::Bf16, false)] {
            let p = TinyGpt {
                precision,
                ..small()
            }
            .build_policy(11, &cpu, 0)
            .unwrap();
            assert_eq!(p.host_train, on_host, "{precision:?}");
        }
    }

    #[test]
    fn hidden_states_are_what_the_vocabulary_head_reads() {
        let device = parse_device("cpu").unwrap();
        let model = with_seed(&device, 5, || {
            materialize(small().init_model::<FB>(11, &device))
        });
        let input = SeqBatch::left_padded(&[vec![1, 2, 3], vec![4]], 0).to_input(&device);
        let (tokens, positions, valid) = (input.tokens, input.positions, input.key_valid);
        let hidden = model.hidden(tokens.clone(), positions.clone(), valid.clone());
        assert_eq!(hidden.dims(), [2, 3, 32]);
        assert_eq!(model.d_model(), 32);
        let via_head = to_vec(model.head.forward(hidden));
        let logits = to_vec(model.forward(tokens, positions, valid));
        for (a, b) in via_head.iter().zip(&logits) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    /// The inference copy attends with burn's fused `attention` op, the trained model with
    /// separate ops (autodiff): both must give the same logits, padding and causality
    /// included.
    #[test]
    fn fused_inference_attention_matches_the_trained_forward() {
        let device = parse_device("cpu").unwrap();
        let policy = small().build(11, &device, 0).unwrap();
        let batch = SeqBatch::left_padded(&[vec![1, 2, 3, 4, 5], vec![6, 7]], 0);
        let trained = policy.forward(&batch.to_input(&train_device(&device)));
        let fused = policy.inference().forward(&batch.to_input(&device));
        let (a, b) = (to_vec(trained), to_vec(fused));
        assert_eq!(a.len(), 2 * 5 * 11);
        // row 1's three pad columns attend to nothing real; compare the real positions
        for row in 0..2 {
            let first = if row == 0 { 0 } else { 3 };
            for col in first..5 {
                for k in 0..11 {
                    let i = (row * 5 + col) * 11 + k;
                    assert!(
                        (a[i] - b[i]).abs() < 1e-4,
                        "row {row} col {col}: {} vs {}",
                        a[i],
                        b[i]
                    );
                }
            }
        }
    }

    #[test]
    fn inference_copy_is_off_the_autodiff_device() {
        let device = parse_device("cpu").unwrap();
        let policy = small().build(11, &device, 0).unwrap();
        let m = policy.inference();
        let out = m.forward(&SeqBatch::left_padded(&[vec![1, 2]], 0).to_input(&device));
        assert_eq!(out.device(), device);
        assert!(!out.is_require_grad());
    }

    #[test]
    fn padding_does_not_change_a_rows_logits() {
        let device = parse_device("cpu").unwrap();
        let model = small().build(11, &device, 0).unwrap().inference();
        let alone =
            to_vec(model.forward(&SeqBatch::left_padded(&[vec![5, 6]], 0).to_input(&device)));
        let padded =
            to_vec(model.forward(
                &SeqBatch::left_padded(&[vec![1, 2, 3, 4], vec![5, 6]], 0).to_input(&device),
            ));
        // row 1 of the padded batch, last two columns == the lone row
        let got = &padded[(4 + 2) * 11..(4 + 4) * 11];
        for (a, b) in alone.iter().zip(got) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }

    #[test]
    fn save_then_load_restores_identical_outputs() {
        let device = parse_device("cpu").unwrap();
        let a = small().build(11, &device, 0).unwrap();
        let mut b = TinyGpt {
            init_seed: 99,
            ..small()
        }
        .build(11, &device, 0)
        .unwrap();
        let input = SeqBatch::left_padded(&[vec![1, 2, 3]], 0).to_input(&train_device(&device));
        assert_ne!(to_vec(a.forward(&input)), to_vec(b.forward(&input)));
        let dir = tempfile::tempdir().unwrap();
        a.save(dir.path()).unwrap();
        b.load(dir.path()).unwrap();
        assert_eq!(to_vec(a.forward(&input)), to_vec(b.forward(&input)));
    }
}
