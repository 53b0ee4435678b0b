//! The decoder shared by Llama 1/2/3, Qwen2/2.5, Mistral and SmolLM (transformers'
//! `modeling_llama.py` and its copies), parameterised by [`HfConfig`].
//!
//! ```text
//! h_0     = E[x]
//! a_l     = h_l + W_o · Attn(RoPE(W_q n), RoPE(W_k n), W_v n),   n = RMSNorm_1(h_l)
//! h_{l+1} = a_l + W_down · (SiLU(W_gate m) ⊙ W_up m),            m = RMSNorm_2(a_l)
//! logits  = W_head · RMSNorm_f(h_L)          (W_head = Eᵀ when embeddings are tied)
//! RMSNorm(x) = x / √(mean(x²) + ε) ⊙ g
//! Attn(Q, K, V) = softmax(Q Kᵀ / √d_h + M) V    with K, V shared by h/h_kv query heads
//! ```
//!
//! `M` is 0 where the key is a real token at or before the query and −1e9 elsewhere, and
//! rotary positions are each token's index among its row's real tokens, so a row's logits
//! do not depend on its padding (left or right). Field names follow the Hugging Face
//! checkpoint keys (`layers.N.self_attn.q_proj`, …) so weights load by name.

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig, RmsNorm, RmsNormConfig};
use burn::tensor::activation::{log_softmax, silu};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor};
use foil_core::backend::B as FB;
use foil_core::batch::to_vec;

use super::config::HfConfig;
use super::lora::{LoraConfig, LoraLinear};
use super::rope::{Rotation, inv_freq};
use crate::host::decoder::{HostDecoder, HostLayer};
use crate::host::decoder_train::{DecoderLayout, LayerIdx, ProjIdx};
use crate::host::train::ParamRef;
use crate::host::{Dense, Norm};
use crate::trainable::{causal_bias, fold_rows, key_bias, linear_rows};

/// Grouped-query self-attention.
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    pub q_proj: LoraLinear<B>,
    pub k_proj: LoraLinear<B>,
    pub v_proj: LoraLinear<B>,
    pub o_proj: LoraLinear<B>,
    #[module(skip)]
    heads: usize,
    #[module(skip)]
    kv_heads: usize,
    #[module(skip)]
    head_dim: usize,
}

/// SwiGLU feed-forward block.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    pub gate_proj: LoraLinear<B>,
    pub up_proj: LoraLinear<B>,
    pub down_proj: LoraLinear<B>,
}

/// One pre-norm decoder layer.
#[derive(Module, Debug)]
pub struct DecoderLayer<B: Backend> {
    pub self_attn: Attention<B>,
    pub mlp: Mlp<B>,
    pub input_layernorm: RmsNorm<B>,
    pub post_attention_layernorm: RmsNorm<B>,
}

/// The whole causal language model.
#[derive(Module, Debug)]
pub struct HfDecoder<B: Backend> {
    pub embed_tokens: Embedding<B>,
    pub layers: Vec<DecoderLayer<B>>,
    pub norm: RmsNorm<B>,
    /// Absent when the output projection is tied to the embeddings.
    pub lm_head: Option<Linear<B>>,
    #[module(skip)]
    inv_freq: Vec<f32>,
    #[module(skip)]
    context: usize,
}

/// Keys and values of one layer before head repetition, `[n, h_kv, t, d_h]`.
#[derive(Debug, Clone)]
struct LayerCache<B: Backend> {
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
}

/// Decode state: per-layer caches and the key bias `[n, 1, 1, t_keys]`.
pub struct HfCache<B: Backend> {
    layers: Vec<LayerCache<B>>,
    key_bias: Tensor<B, 4>,
}

impl<B: Backend> HfCache<B> {
    /// The cache of the rows `index` picks (`[rows']`, each an existing row; repeats
    /// allowed): every layer's keys and values and the key bias, gathered along rows.
    pub fn select_rows(&self, index: Tensor<B, 1, Int>) -> Self {
        Self {
            layers: self
                .layers
                .iter()
                .map(|c| LayerCache {
                    k: c.k.clone().select(0, index.clone()),
                    v: c.v.clone().select(0, index.clone()),
                })
                .collect(),
            key_bias: self.key_bias.clone().select(0, index),
        }
    }
}

fn proj<B: Backend>(d_in: usize, d_out: usize, bias: bool, device: &B::Device) -> LoraLinear<B> {
    LoraLinear::plain(LinearConfig::new(d_in, d_out).with_bias(bias).init(device))
}

impl<B: Backend> HfDecoder<B> {
    /// A randomly initialised decoder (weights are then loaded by name). `context` bounds
    /// the sequences it accepts.
    pub fn init(config: &HfConfig, context: usize, device: &B::Device) -> Self {
        let d = config.hidden_size;
        let q = config.num_attention_heads * config.head_dim;
        let kv = config.num_key_value_heads * config.head_dim;
        let f = config.intermediate_size;
        let norm = || {
            RmsNormConfig::new(d)
                .with_epsilon(config.rms_norm_eps)
                .init(device)
        };
        Self {
            embed_tokens: EmbeddingConfig::new(config.vocab_size, d).init(device),
            layers: (0..config.num_hidden_layers)
                .map(|_| DecoderLayer {
                    self_attn: Attention {
                        q_proj: proj(d, q, config.qkv_bias, device),
                        k_proj: proj(d, kv, config.qkv_bias, device),
                        v_proj: proj(d, kv, config.qkv_bias, device),
                        o_proj: proj(q, d, config.o_bias, device),
                        heads: config.num_attention_heads,
                        kv_heads: config.num_key_value_heads,
                        head_dim: config.head_dim,
                    },
                    mlp: Mlp {
                        gate_proj: proj(d, f, config.mlp_bias, device),
                        up_proj: proj(d, f, config.mlp_bias, device),
                        down_proj: proj(f, d, config.mlp_bias, device),
                    },
                    input_layernorm: norm(),
                    post_attention_layernorm: norm(),
                })
                .collect(),
            norm: norm(),
            lm_head: (!config.tie_word_embeddings).then(|| {
                LinearConfig::new(d, config.vocab_size)
                    .with_bias(false)
                    .init(device)
            }),
            inv_freq: inv_freq(config),
            context,
        }
    }

    /// Longest sequence accepted.
    pub fn context(&self) -> usize {
        self.context
    }

    /// Output vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.embed_tokens.weight.dims()[0]
    }

    /// Adds LoRA adapters to the targeted projections and freezes everything else.
    pub fn with_lora(self, lora: &LoraConfig, device: &B::Device) -> Self {
        let adapt = |l: LoraLinear<B>, name: &str| {
            if lora.targets(name) {
                l.with_adapter(lora.rank, lora.alpha, device)
            } else {
                LoraLinear::plain(l.base.no_grad())
            }
        };
        Self {
            embed_tokens: self.embed_tokens.no_grad(),
            layers: self
                .layers
                .into_iter()
                .map(|l| DecoderLayer {
                    self_attn: Attention {
                        q_proj: adapt(l.self_attn.q_proj, "q_proj"),
                        k_proj: adapt(l.self_attn.k_proj, "k_proj"),
                        v_proj: adapt(l.self_attn.v_proj, "v_proj"),
                        o_proj: adapt(l.self_attn.o_proj, "o_proj"),
                        ..l.self_attn
                    },
                    mlp: Mlp {
                        gate_proj: adapt(l.mlp.gate_proj, "gate_proj"),
                        up_proj: adapt(l.mlp.up_proj, "up_proj"),
                        down_proj: adapt(l.mlp.down_proj, "down_proj"),
                    },
                    input_layernorm: l.input_layernorm.no_grad(),
                    post_attention_layernorm: l.post_attention_layernorm.no_grad(),
                })
                .collect(),
            norm: self.norm.no_grad(),
            lm_head: self.lm_head.map(|h| h.no_grad()),
            ..self
        }
    }

    /// Applies `f` to every projection (used to drop or merge adapters).
    fn map_projections(&self, f: impl Fn(&LoraLinear<B>) -> LoraLinear<B>) -> Self {
        Self {
            embed_tokens: self.embed_tokens.clone(),
            layers: self
                .layers
                .iter()
                .map(|l| DecoderLayer {
                    self_attn: Attention {
                        q_proj: f(&l.self_attn.q_proj),
                        k_proj: f(&l.self_attn.k_proj),
                        v_proj: f(&l.self_attn.v_proj),
                        o_proj: f(&l.self_attn.o_proj),
                        heads: l.self_attn.heads,
                        kv_heads: l.self_attn.kv_heads,
                        head_dim: l.self_attn.head_dim,
                    },
                    mlp: Mlp {
                        gate_proj: f(&l.mlp.gate_proj),
                        up_proj: f(&l.mlp.up_proj),
                        down_proj: f(&l.mlp.down_proj),
                    },
                    input_layernorm: l.input_layernorm.clone(),
                    post_attention_layernorm: l.post_attention_layernorm.clone(),
                })
                .collect(),
            norm: self.norm.clone(),
            lm_head: self.lm_head.clone(),
            inv_freq: self.inv_freq.clone(),
            context: self.context,
        }
    }

    /// The base model: adapters removed, tensors shared.
    pub fn without_lora(&self) -> Self {
        self.map_projections(LoraLinear::without_adapter)
    }

    /// Adapters folded into the base weights (for export).
    pub fn merged(&self) -> Self {
        self.map_projections(|l| LoraLinear::plain(l.merged()))
    }

    /// Whether any projection carries an adapter.
    pub fn has_lora(&self) -> bool {
        self.layers
            .iter()
            .any(|l| l.self_attn.q_proj.has_adapter() || l.self_attn.v_proj.has_adapter())
            || self.layers.iter().any(|l| {
                [
                    &l.self_attn.k_proj,
                    &l.self_attn.o_proj,
                    &l.mlp.gate_proj,
                    &l.mlp.up_proj,
                    &l.mlp.down_proj,
                ]
                .iter()
                .any(|p| p.has_adapter())
            })
    }

    fn param_device(&self) -> B::Device {
        self.embed_tokens.weight.val().device()
    }

    fn logits(&self, h: Tensor<B, 3>) -> Tensor<B, 3> {
        let h = self.norm.forward(h);
        match &self.lm_head {
            Some(head) => linear_rows(head, h),
            None => fold_rows(h, |h| h.matmul(self.embed_tokens.weight.val().transpose())),
        }
    }

    /// Hidden states after the final norm's input (before the head), `[n, t, d]`, and the
    /// per-layer caches.
    fn trunk(
        &self,
        tokens: Tensor<B, 2, Int>,
        positions: Tensor<B, 2, Int>,
        valid: Tensor<B, 2, Bool>,
    ) -> (Tensor<B, 3>, HfCache<B>) {
        let device = self.param_device();
        let [n, t] = tokens.dims();
        let valid = Tensor::<B, 2>::zeros([n, t], &device).mask_fill(valid, 1.0);
        let key_bias = key_bias(valid);
        // mask and rotation tables in the passes' dtype once here, not per layer
        // (`precision: bf16`: the working copy's bf16)
        let dtype = self.embed_tokens.weight.val().dtype();
        let bias = causal_bias(key_bias.clone(), &device).cast(dtype);
        let rotation = Rotation::new(&self.inv_freq, positions, t, &device).cast(dtype);
        let mut h = self.embed_tokens.forward(tokens);
        let mut layers = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let (out, cache) = layer.forward(h, &rotation, bias.clone(), None);
            h = out;
            layers.push(cache);
        }
        (h, HfCache { layers, key_bias })
    }

    /// Logits `[n, t, V]` of a full pass.
    pub fn forward(
        &self,
        tokens: Tensor<B, 2, Int>,
        positions: Tensor<B, 2, Int>,
        valid: Tensor<B, 2, Bool>,
    ) -> Tensor<B, 3> {
        self.logits(self.trunk(tokens, positions, valid).0)
    }

    /// `log p(targets[:, j] | ≤ j)` for the first `T-1` columns, `[n, T-1]`, computing the
    /// head over at most `chunk_elems` logits at a time: the
    /// trunk runs once, then column chunks of `c = max(1, chunk_elems / (n·V))` go through
    /// the head, log-softmax and gather. Without autodiff, peak memory is `O(n·c·V)`
    /// instead of `O(n·T·V)`.
    pub fn token_logprobs_chunked(
        &self,
        tokens: Tensor<B, 2, Int>,
        positions: Tensor<B, 2, Int>,
        valid: Tensor<B, 2, Bool>,
        targets: Tensor<B, 2, Int>,
        chunk_elems: usize,
    ) -> Tensor<B, 2> {
        let (h, _) = self.trunk(tokens, positions, valid);
        let [n, t, d] = h.dims();
        let w = t - 1;
        let v = self.vocab_size();
        let c = (chunk_elems / (n * v).max(1)).max(1);
        let mut parts = Vec::with_capacity(w.div_ceil(c));
        let mut start = 0;
        while start < w {
            let end = (start + c).min(w);
            let logits = self.logits(h.clone().slice([0..n, start..end, 0..d]));
            let lsm = log_softmax(logits, 2);
            let idx = targets.clone().slice([0..n, start..end]).unsqueeze_dim(2);
            parts.push(lsm.gather(2, idx).squeeze_dim::<2>(2));
            start = end;
        }
        Tensor::cat(parts, 1)
    }

    /// Logits of the last column `[n, V]` and the cache to decode from.
    pub fn prefill(
        &self,
        tokens: Tensor<B, 2, Int>,
        positions: Tensor<B, 2, Int>,
        valid: Tensor<B, 2, Bool>,
    ) -> (Tensor<B, 2>, HfCache<B>) {
        let (h, cache) = self.trunk(tokens, positions, valid);
        let [n, t, d] = h.dims();
        let last = h.slice([0..n, t - 1..t, 0..d]);
        let v = self.vocab_size();
        (self.logits(last).reshape([n, v]), cache)
    }

    /// One decode step: `tokens`/`positions` are `[n, 1]`; returns logits `[n, V]`.
    pub fn decode(
        &self,
        cache: &mut HfCache<B>,
        tokens: Tensor<B, 2, Int>,
        positions: Tensor<B, 2, Int>,
    ) -> Tensor<B, 2> {
        let device = self.param_device();
        let [n, _] = tokens.dims();
        let zero = Tensor::<B, 4>::zeros([n, 1, 1, 1], &device);
        cache.key_bias = Tensor::cat(vec![cache.key_bias.clone(), zero], 3);
        let keys = cache.key_bias.dims()[3];
        let rotation = Rotation::new(&self.inv_freq, positions, keys, &device);
        let mut h = self.embed_tokens.forward(tokens);
        for (layer, c) in self.layers.iter().zip(cache.layers.iter_mut()) {
            let (out, _) = layer.forward(h, &rotation, cache.key_bias.clone(), Some(c));
            h = out;
        }
        let v = self.vocab_size();
        self.logits(h).reshape([n, v])
    }
}

impl HfDecoder<FB> {
    /// Every parameter tensor in a flat list, with the layout that says which is which
    /// (`crate::host::decoder_train`).
    pub(crate) fn host_params(&self) -> (DecoderLayout, Vec<ParamRef<'_>>) {
        let mut refs = Vec::new();
        fn push<'a>(refs: &mut Vec<ParamRef<'a>>, r: ParamRef<'a>) -> usize {
            refs.push(r);
            refs.len() - 1
        }
        fn proj<'a>(refs: &mut Vec<ParamRef<'a>>, l: &'a LoraLinear<FB>) -> ProjIdx {
            let w = push(refs, ParamRef::Matrix(&l.base.weight));
            let b = l
                .base
                .bias
                .as_ref()
                .map(|b| push(refs, ParamRef::Vector(b)));
            let lora = match (&l.lora_a, &l.lora_b) {
                (Some(a), Some(b)) => Some((
                    push(refs, ParamRef::Matrix(a)),
                    push(refs, ParamRef::Matrix(b)),
                    l.scale,
                )),
                _ => None,
            };
            ProjIdx { w, b, lora }
        }
        let embed = push(&mut refs, ParamRef::Matrix(&self.embed_tokens.weight));
        let layers = self
            .layers
            .iter()
            .map(|l| LayerIdx {
                attn_norm: push(&mut refs, ParamRef::Vector(&l.input_layernorm.gamma)),
                q: proj(&mut refs, &l.self_attn.q_proj),
                k: proj(&mut refs, &l.self_attn.k_proj),
                v: proj(&mut refs, &l.self_attn.v_proj),
                o: proj(&mut refs, &l.self_attn.o_proj),
                mlp_norm: push(
                    &mut refs,
                    ParamRef::Vector(&l.post_attention_layernorm.gamma),
                ),
                gate: proj(&mut refs, &l.mlp.gate_proj),
                up: proj(&mut refs, &l.mlp.up_proj),
                down: proj(&mut refs, &l.mlp.down_proj),
            })
            .collect();
        let norm = push(&mut refs, ParamRef::Vector(&self.norm.gamma));
        let head = self
            .lm_head
            .as_ref()
            .map(|h| push(&mut refs, ParamRef::Matrix(&h.weight)));
        let first = &self.layers[0].self_attn;
        let layout = DecoderLayout {
            embed,
            layers,
            norm,
            head,
            heads: first.heads,
            kv_heads: first.kv_heads,
            head_dim: first.head_dim,
            inv_freq: self.inv_freq.clone(),
            eps: self.norm.epsilon as f32,
        };
        (layout, refs)
    }

    /// The weights, adapters merged, copied to the host for [`HostDecoder`]'s prefill and
    /// decode steps.
    pub fn to_host(&self) -> HostDecoder {
        use rayon::prelude::*;
        let m = self.merged();
        let dense = |l: &LoraLinear<FB>| Dense::from_linear(&l.base);
        let first = &m.layers[0].self_attn;
        HostDecoder {
            heads: first.heads,
            kv_heads: first.kv_heads,
            head_dim: first.head_dim,
            context: m.context,
            inv_freq: m.inv_freq.clone(),
            embed: to_vec(m.embed_tokens.weight.val()),
            // layer by layer on rayon's threads: each copy and repack is independent
            layers: m
                .layers
                .par_iter()
                .map(|l| HostLayer {
                    attn_norm: Norm::from_rms_norm(&l.input_layernorm),
                    q: dense(&l.self_attn.q_proj),
                    k: dense(&l.self_attn.k_proj),
                    v: dense(&l.self_attn.v_proj),
                    o: dense(&l.self_attn.o_proj),
                    mlp_norm: Norm::from_rms_norm(&l.post_attention_layernorm),
                    gate: dense(&l.mlp.gate_proj),
                    up: dense(&l.mlp.up_proj),
                    down: dense(&l.mlp.down_proj),
                })
                .collect(),
            norm: Norm::from_rms_norm(&m.norm),
            head: match &m.lm_head {
                Some(head) => Dense::from_linear(head),
                None => Dense::tied(&m.embed_tokens.weight),
            },
        }
    }
}

impl<B: Backend> DecoderLayer<B> {
    fn forward(
        &self,
        x: Tensor<B, 3>,
        rotation: &Rotation<B>,
        bias: Tensor<B, 4>,
        cache: Option<&mut LayerCache<B>>,
    ) -> (Tensor<B, 3>, LayerCache<B>) {
        let (a, fresh) = self.self_attn.forward(
            self.input_layernorm.forward(x.clone()),
            rotation,
            bias,
            cache,
        );
        let x = x + a;
        let m = self
            .mlp
            .forward(self.post_attention_layernorm.forward(x.clone()));
        (x + m, fresh)
    }
}

impl<B: Backend> Mlp<B> {
    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let g = silu(self.gate_proj.forward(x.clone()));
        self.down_proj.forward(g * self.up_proj.forward(x))
    }
}

impl<B: Backend> Attention<B> {
    /// `x`: `[n, t, d]` (normalised). With `cache`, keys/values are appended to it; the
    /// returned cache holds this call's keys/values (the whole history when cached).
    fn forward(
        &self,
        x: Tensor<B, 3>,
        rotation: &Rotation<B>,
        bias: Tensor<B, 4>,
        cache: Option<&mut LayerCache<B>>,
    ) -> (Tensor<B, 3>, LayerCache<B>) {
        let [n, t, _] = x.dims();
        let (h, hk, dh) = (self.heads, self.kv_heads, self.head_dim);
        // rotated token-major [n, t, heads, dh] (contiguous), then heads first
        let split = |y: Tensor<B, 3>, k: usize| y.reshape([n, t, k, dh]);
        let q = rotation
            .apply(split(self.q_proj.forward(x.clone()), h))
            .swap_dims(1, 2);
        let mut k = rotation
            .apply(split(self.k_proj.forward(x.clone()), hk))
            .swap_dims(1, 2);
        let mut v = split(self.v_proj.forward(x), hk).swap_dims(1, 2);
        if let Some(c) = cache {
            k = Tensor::cat(vec![c.k.clone(), k], 2);
            v = Tensor::cat(vec![c.v.clone(), v], 2);
            c.k = k.clone();
            c.v = v.clone();
        }
        let fresh = LayerCache {
            k: k.clone(),
            v: v.clone(),
        };
        let (k, v) = (repeat_kv(k, h / hk), repeat_kv(v, h / hk));
        // fused without autodiff, separate ops under it (trainable::attend)
        let y = crate::trainable::attend(q, k, v, bias)
            .swap_dims(1, 2)
            .reshape([n, t, h * dh]);
        (self.o_proj.forward(y), fresh)
    }
}

/// `[n, h_kv, t, d]` → `[n, h_kv·g, t, d]`, each key/value head serving `g` query heads
/// (query head `i` reads key head `i / g`, as in transformers' `repeat_kv`).
fn repeat_kv<B: Backend>(x: Tensor<B, 4>, groups: usize) -> Tensor<B, 4> {
    if groups == 1 {
        return x;
    }
    let [n, hk, t, d] = x.dims();
    x.unsqueeze_dim::<5>(2)
        .repeat_dim(2, groups)
        .reshape([n, hk * groups, t, d])
}
