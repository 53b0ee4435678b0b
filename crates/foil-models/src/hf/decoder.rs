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
use super::rope::{RopeTables, Rotation, inv_freq};
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

/// What a pass over `t` columns leaves to decode from: each layer's keys and values
/// `[n, h_kv, t, d_h]` and the key bias `[n, 1, 1, t]`.
type Filled<B> = (Vec<LayerCache<B>>, Tensor<B, 4>);

/// Key columns a decode cache grows by: its keys, values and key bias hold a multiple of
/// this many columns, the filled ones first.
///
/// Why: on a GPU every new tensor shape is a new kernel launch configuration, and every
/// new matmul shape a new autotune search (cubek-matmul keys each matmul on its sizes
/// rounded up to a power of two and on the power of two dividing the row stride). A
/// cache that grew by one column per step changed the shapes of both attention matmuls at
/// every step (about 27 autotune keys over 128 new tokens from a 16-token prompt); one
/// that grows by blocks keeps them fixed for 64 steps at a time (3 capacities, 6 keys).
/// The unfilled columns are zeros behind a key bias of −1e9, so they get exactly zero
/// attention weight: the logits are those of a cache holding only the filled columns.
pub const CACHE_BLOCK: usize = 64;

/// Decode state: per-layer caches `[n, h_kv, capacity, d_h]` whose first `len` columns
/// are filled, the key bias `[n, 1, 1, capacity]` (0 for real keys, −1e9 for padding and
/// for the unfilled columns), and the rotary tables for positions `0..capacity`.
pub struct HfCache<B: Backend> {
    layers: Vec<LayerCache<B>>,
    key_bias: Tensor<B, 4>,
    len: usize,
    rope: RopeTables<B>,
}

impl<B: Backend> HfCache<B> {
    /// A cache holding a prefill's `len` columns (`layers` and `key_bias` that wide),
    /// padded to the next multiple of [`CACHE_BLOCK`].
    fn new(layers: Vec<LayerCache<B>>, key_bias: Tensor<B, 4>, inv_freq: &[f32]) -> Self {
        let len = key_bias.dims()[3];
        let capacity = len.div_ceil(CACHE_BLOCK).max(1) * CACHE_BLOCK;
        let device = key_bias.device();
        let mut cache = Self {
            layers,
            key_bias,
            len,
            rope: RopeTables::new(inv_freq, capacity, &device),
        };
        cache.pad(capacity - len);
        cache
    }

    /// Columns held, filled or not.
    pub fn capacity(&self) -> usize {
        self.key_bias.dims()[3]
    }

    /// Filled columns: the prompt's and one per decode step since.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no column is filled (never after a prefill).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `extra` unfilled columns more, and the rotary tables to match.
    fn grow(&mut self, extra: usize, inv_freq: &[f32]) {
        self.pad(extra);
        self.rope = RopeTables::new(inv_freq, self.capacity(), &self.key_bias.device());
    }

    /// `extra` unfilled columns more: zero keys and values behind a key bias of −1e9.
    fn pad(&mut self, extra: usize) {
        if extra == 0 {
            return;
        }
        let device = self.key_bias.device();
        let [n, _, _, _] = self.key_bias.dims();
        let pad = |x: Tensor<B, 4>| {
            let [n, hk, _, dh] = x.dims();
            let zeros = Tensor::<B, 4>::zeros([n, hk, extra, dh], &device).cast(x.dtype());
            Tensor::cat(vec![x, zeros], 2)
        };
        for c in &mut self.layers {
            c.k = pad(c.k.clone());
            c.v = pad(c.v.clone());
        }
        let masked = Tensor::<B, 4>::full([n, 1, 1, extra], -1e9, &device);
        self.key_bias = Tensor::cat(vec![self.key_bias.clone(), masked], 3);
    }

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
            len: self.len,
            rope: self.rope.clone(),
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
    /// per-layer keys and values with the key bias `[n, 1, 1, t]`.
    fn trunk(
        &self,
        tokens: Tensor<B, 2, Int>,
        positions: Tensor<B, 2, Int>,
        valid: Tensor<B, 2, Bool>,
    ) -> (Tensor<B, 3>, Filled<B>) {
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
        (h, (layers, key_bias))
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
        let (h, (layers, key_bias)) = self.trunk(tokens, positions, valid);
        let [n, t, d] = h.dims();
        let last = h.slice([0..n, t - 1..t, 0..d]);
        let v = self.vocab_size();
        let cache = HfCache::new(layers, key_bias, &self.inv_freq);
        (self.logits(last).reshape([n, v]), cache)
    }

    /// One decode step: `tokens`/`positions` are `[n, 1]`; returns logits `[n, V]`. The
    /// step's keys and values go to the cache's next free column (the cache grows by
    /// [`CACHE_BLOCK`] columns when full), so between growths every step runs on the same
    /// shapes.
    pub fn decode(
        &self,
        cache: &mut HfCache<B>,
        tokens: Tensor<B, 2, Int>,
        positions: Tensor<B, 2, Int>,
    ) -> Tensor<B, 2> {
        let device = self.param_device();
        let [n, _] = tokens.dims();
        if cache.len == cache.capacity() {
            cache.grow(CACHE_BLOCK, &self.inv_freq);
        }
        let at = cache.len;
        let filled = Tensor::<B, 4>::zeros([n, 1, 1, 1], &device);
        cache.key_bias = take(&mut cache.key_bias, &filled)
            .slice_assign([0..n, 0..1, 0..1, at..at + 1], filled.clone());
        // the mask and rotation in the pass's dtype once per step, not per layer
        let dtype = self.embed_tokens.weight.val().dtype();
        let rotation = cache.rope.rotation(positions).cast(dtype);
        let bias = cache.key_bias.clone().cast(dtype);
        let mut h = self.embed_tokens.forward(tokens);
        for (layer, c) in self.layers.iter().zip(cache.layers.iter_mut()) {
            let (out, _) = layer.forward(h, &rotation, bias.clone(), Some((c, at)));
            h = out;
        }
        cache.len += 1;
        let v = self.vocab_size();
        self.logits(h).reshape([n, v])
    }
}

/// `slot`'s tensor, with `stand_in` left there: the tensor's only handle, which an
/// operation such as `slice_assign` may then write in place instead of copying.
fn take<B: Backend, const D: usize>(
    slot: &mut Tensor<B, D>,
    stand_in: &Tensor<B, D>,
) -> Tensor<B, D> {
    std::mem::replace(slot, stand_in.clone())
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
        cache: Option<(&mut LayerCache<B>, usize)>,
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
    /// `x`: `[n, t, d]` (normalised). Returns the output and this call's keys and values.
    ///
    /// With `cache` (a decode step, `t = 1`): the keys and values are written to the
    /// cache's column `at`, and the query attends to all of the cache's columns (`bias`
    /// masks the unfilled ones). Its `h` query heads are laid out as `g = h/h_kv` query
    /// rows of each of the `h_kv` key heads, `[n, h_kv, g, d_h]`: a free reshape of the
    /// token-major queries, so the cached keys and values are read as they are, not
    /// repeated `g` times first.
    fn forward(
        &self,
        x: Tensor<B, 3>,
        rotation: &Rotation<B>,
        bias: Tensor<B, 4>,
        cache: Option<(&mut LayerCache<B>, usize)>,
    ) -> (Tensor<B, 3>, LayerCache<B>) {
        let [n, t, _] = x.dims();
        let (h, hk, dh) = (self.heads, self.kv_heads, self.head_dim);
        // rotated token-major [n, t, heads, dh] (contiguous), then heads first
        let split = |y: Tensor<B, 3>, k: usize| y.reshape([n, t, k, dh]);
        let q = rotation.apply(split(self.q_proj.forward(x.clone()), h));
        let k = rotation
            .apply(split(self.k_proj.forward(x.clone()), hk))
            .swap_dims(1, 2);
        let v = split(self.v_proj.forward(x), hk).swap_dims(1, 2);
        let fresh = LayerCache {
            k: k.clone(),
            v: v.clone(),
        };
        if let Some((c, at)) = cache {
            assert_eq!(t, 1, "a decode step writes one column");
            let column = [0..n, 0..hk, at..at + 1, 0..dh];
            c.k = take(&mut c.k, &k).slice_assign(column.clone(), k);
            c.v = take(&mut c.v, &v).slice_assign(column, v);
            let y = crate::trainable::attend(
                q.reshape([n, hk, h / hk, dh]),
                c.k.clone(),
                c.v.clone(),
                bias,
            );
            return (self.o_proj.forward(y.reshape([n, 1, h * dh])), fresh);
        }
        let (k, v) = (repeat_kv(k, h / hk), repeat_kv(v, h / hk));
        // fused without autodiff, separate ops under it (trainable::attend)
        let y = crate::trainable::attend(q.swap_dims(1, 2), k, v, bias)
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

#[cfg(test)]
mod tests {
    use super::*;
    use foil_core::backend::Device;
    use foil_core::batch::SeqBatch;
    use serde_json::json;

    /// A random decoder with grouped key/value heads (4 query heads, 2 key heads).
    fn gqa_decoder(device: &Device) -> HfDecoder<FB> {
        let config = HfConfig::from_json(&json!({
            "model_type": "qwen2", "vocab_size": 50, "hidden_size": 32,
            "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "rope_theta": 10000.0
        }))
        .unwrap();
        foil_core::backend::with_seed(device, 7, || HfDecoder::init(&config, 256, device))
    }

    /// Decoding 70 tokens after left-padded prompts of 5 and 3 tokens gives, at every
    /// step, the logits of one full forward pass over prompt and response: across the
    /// cache's growth from 64 to 128 columns (prompt 5 + 70 = 75 columns), with grouped
    /// query heads reading the cache unrepeated, and padding masked.
    #[test]
    fn decode_through_a_growing_cache_matches_the_full_pass() {
        let device = foil_core::backend::parse_device("cpu").unwrap();
        let model = gqa_decoder(&device);
        let prompts = [vec![3u32, 14, 15, 9, 26], vec![5, 35, 8]];
        let steps = 70;
        let responses: Vec<Vec<u32>> = (0..2)
            .map(|r| {
                (0..steps)
                    .map(|s| ((s * 7 + r * 11 + 1) % 50) as u32)
                    .collect()
            })
            .collect();
        let pairs: Vec<(&[u32], &[u32])> = prompts
            .iter()
            .zip(&responses)
            .map(|(p, r)| (p.as_slice(), r.as_slice()))
            .collect();
        let (full, p) = SeqBatch::prompt_response(&pairs, 0);
        let full = full.to_input(&device);
        let want = to_vec(model.forward(full.tokens, full.positions, full.key_valid));
        let v = 50;
        let t = p + steps;
        let column = |row: usize, col: usize| &want[(row * t + col) * v..(row * t + col + 1) * v];
        let scale = want.iter().fold(0f32, |m, x| m.max(x.abs()));
        let check = |got: Vec<f32>, col: usize, what: &str| {
            for row in 0..2 {
                for (j, (a, b)) in got[row * v..(row + 1) * v]
                    .iter()
                    .zip(column(row, col))
                    .enumerate()
                {
                    assert!(
                        (a - b).abs() <= 1e-4 * scale,
                        "{what}, row {row}, logit {j}: {a} vs {b}"
                    );
                }
            }
        };

        let prompt = SeqBatch::left_padded(&prompts, 0).to_input(&device);
        let (logits, mut cache) = model.prefill(prompt.tokens, prompt.positions, prompt.key_valid);
        assert_eq!((cache.len(), cache.capacity()), (p, CACHE_BLOCK));
        check(to_vec(logits), p - 1, "prefill");
        for s in 0..steps {
            let tokens: Vec<i64> = responses.iter().map(|r| r[s] as i64).collect();
            let positions: Vec<i64> = prompts.iter().map(|q| (q.len() + s) as i64).collect();
            let logits = model.decode(
                &mut cache,
                Tensor::from_data(burn::tensor::TensorData::new(tokens, [2, 1]), &device),
                Tensor::from_data(burn::tensor::TensorData::new(positions, [2, 1]), &device),
            );
            let filled = p + s + 1;
            // the capacity only changes when a step finds the cache full
            let capacity = filled.div_ceil(CACHE_BLOCK) * CACHE_BLOCK;
            assert_eq!(
                (cache.len(), cache.capacity()),
                (filled, capacity),
                "step {s}"
            );
            check(to_vec(logits), p + s, &format!("decode step {s}"));
        }
        assert_eq!(cache.capacity(), 2 * CACHE_BLOCK);
    }

    /// The cache's unfilled columns change nothing: a step from a cache padded to 64
    /// columns equals one from a cache padded to 128.
    #[test]
    fn unfilled_columns_get_no_attention() {
        let device = foil_core::backend::parse_device("cpu").unwrap();
        let model = gqa_decoder(&device);
        let prompt = SeqBatch::left_padded(&[vec![1u32, 2, 3], vec![4]], 0).to_input(&device);
        let (_, mut a) = model.prefill(
            prompt.tokens.clone(),
            prompt.positions.clone(),
            prompt.key_valid.clone(),
        );
        let (_, mut b) = model.prefill(prompt.tokens, prompt.positions, prompt.key_valid);
        b.grow(CACHE_BLOCK, &model.inv_freq);
        assert_eq!((a.capacity(), b.capacity()), (64, 128));
        let step = |c: &mut HfCache<FB>| {
            to_vec(model.decode(
                c,
                Tensor::from_data(
                    burn::tensor::TensorData::new(vec![7i64, 8], [2, 1]),
                    &device,
                ),
                Tensor::from_data(
                    burn::tensor::TensorData::new(vec![3i64, 1], [2, 1]),
                    &device,
                ),
            ))
        };
        let (x, y) = (step(&mut a), step(&mut b));
        for (i, (u, w)) in x.iter().zip(&y).enumerate() {
            assert!((u - w).abs() <= 1e-5, "logit {i}: {u} vs {w}");
        }
    }
}
