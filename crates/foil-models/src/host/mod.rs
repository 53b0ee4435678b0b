//! The CPU sampling path: a policy's weights copied to plain `Vec<f32>`s, prefill and
//! decode steps computed by the kernels of `foil-kernels` over a KV cache written in place.
//!
//! Why: on a CPU, a decode step of `tiny_gpt` through burn's flex backend ran its
//! ~25 small ops per layer as separate tensors, its per-step GEMMs (1–16 rows) packed
//! each weight before using it, and appending to the cache with `cat` copied the whole
//! cache every step (`docs/benchmarks.md`, session 7). Here a step writes one slot of the
//! cache in place and reads each weight once. Prefill runs on the host too, every prompt
//! column of every row through the same kernels, and leaves its keys and values in the
//! cache.
//!
//! Used by the inference copies of `tiny_gpt` ([`gpt`]) and the Hugging Face decoders
//! ([`decoder`]) when their device is the CPU (flex or ndarray); GPUs keep the burn path,
//! and so do `forward` and `token_logprobs`. `FOIL_BURN_DECODE=1` turns it off (for A/B
//! timings). Tested against the burn path (`tiny_gpt`) and transformers (`hf_parity`).

pub mod decoder;
pub mod decoder_train;
pub mod gpt;
pub mod gpt_train;
pub mod train;
pub use foil_kernels as kernels;

use burn::module::Param;
use burn::nn::{LayerNorm, Linear, RmsNorm};
use burn::prelude::*;
use foil_core::backend::B as FB;
use foil_core::batch::{to_vec, with_values};

/// Whether the inference copy on `device` decodes on the host: CPU devices, unless
/// `FOIL_BURN_DECODE` is set to something other than `0`.
pub fn use_host_decode(device: &foil_core::backend::Device) -> bool {
    !foil_core::backend::is_gpu(device)
        && std::env::var("FOIL_BURN_DECODE").map_or(true, |v| v == "0" || v.is_empty())
}

/// What [`gpt::HostGpt`] and [`decoder::HostDecoder`] share: one pass of `t` new columns
/// of every row over a [`KvCache`] (`run`), from which prefill and decode follow.
pub trait HostModel: Send + Sync {
    /// Layers, cached (key/value) heads, head width and the longest sequence accepted.
    fn cache_shape(&self) -> (usize, usize, usize, usize);

    /// `t` new columns of every row through the layers: their keys and values go to
    /// positions `len..len + t` of the cache, column `j` attends to positions
    /// `0..=len + j` (causal, minus padding by the cache's key bias). Returns the logits
    /// of each row's last column, `[rows, vocab]`.
    fn run(&self, cache: &mut KvCache, tokens: &[i64], positions: &[i64], t: usize) -> Vec<f32>;

    /// Runs the left-padded prompts `tokens`/`positions` `[rows, t]` (`key_valid` marks
    /// the real columns) and returns the logits of each row's last column with the cache
    /// to decode from.
    fn prefill(
        &self,
        tokens: &[i64],
        positions: &[i64],
        key_valid: &[bool],
        rows: usize,
    ) -> (Vec<f32>, KvCache) {
        let t = tokens.len() / rows.max(1);
        let (layers, heads, dh, context) = self.cache_shape();
        // room for what may follow, up to 256 positions; beyond that the cache regrows
        let spare = context.saturating_sub(t).min(256);
        let mut cache = KvCache::for_prompt(layers, rows, heads, dh, key_valid, spare);
        let logits = self.run(&mut cache, tokens, positions, t);
        (logits, cache)
    }

    /// Appends `tokens[r]` at `positions[r]` for each row and returns the next logits.
    fn decode(&self, cache: &mut KvCache, tokens: &[i64], positions: &[i64]) -> Vec<f32> {
        cache.open_slot();
        self.run(cache, tokens, positions, 1)
    }
}

/// [`HostModel::prefill`] for an `InferenceModel`: the batch in, logits on `device` out.
pub fn prefill_tensors(
    model: &dyn HostModel,
    input: &foil_core::batch::SeqInput,
    device: &foil_core::backend::Device,
) -> (Tensor<FB, 2>, foil_core::policy::DecodeCache) {
    let x = train::HostInput::new(input);
    let (logits, cache) = model.prefill(&x.tokens, &x.positions, &x.valid, x.rows);
    (logits_tensor(logits, x.rows, device), Box::new(cache))
}

/// `InferenceModel::prefill_repeated` on the host: each row of `input` prefilled once,
/// its logits and cache then repeated `repeats[row]` times. A row's pass does not depend
/// on the other rows (every kernel works row by row), so this is what prefilling the
/// repeated rows gives, bit for bit (test `foil_samplers::local::tests::
/// shared_prompt_prefill_samples_what_prefilling_every_row_does`).
pub fn prefill_repeated_tensors(
    model: &dyn HostModel,
    input: &foil_core::batch::SeqInput,
    repeats: &[usize],
    device: &foil_core::backend::Device,
) -> (Tensor<FB, 2>, foil_core::policy::DecodeCache) {
    let x = train::HostInput::new(input);
    assert_eq!(repeats.len(), x.rows, "one repeat count per prompt row");
    let (logits, cache) = model.prefill(&x.tokens, &x.positions, &x.valid, x.rows);
    let v = logits.len() / x.rows.max(1);
    let cache = cache.repeat_rows(repeats);
    let logits = repeat_chunks(&logits, v, repeats);
    (logits_tensor(logits, cache.rows, device), Box::new(cache))
}

/// `buf`'s rows of `width` values, row `i` repeated `repeats[i]` times, in order.
fn repeat_chunks(buf: &[f32], width: usize, repeats: &[usize]) -> Vec<f32> {
    let mut out = Vec::with_capacity(repeats.iter().sum::<usize>() * width);
    for (row, &n) in buf.chunks_exact(width.max(1)).zip(repeats) {
        for _ in 0..n {
            out.extend_from_slice(row);
        }
    }
    out
}

/// [`HostModel::decode`] for an `InferenceModel`.
pub fn decode_tensors(
    model: &dyn HostModel,
    cache: &mut foil_core::policy::DecodeCache,
    tokens: Tensor<FB, 2, Int>,
    positions: Tensor<FB, 2, Int>,
    device: &foil_core::backend::Device,
) -> Tensor<FB, 2> {
    let cache = cache
        .downcast_mut::<KvCache>()
        .expect("a host KV cache handed back to the model that made it");
    let logits = model.decode(cache, &ids(tokens), &ids(positions));
    logits_tensor(logits, cache.rows, device)
}

/// The logits of each row's last column: `head(norm(x[r, t − 1]))`, `x` `[rows, t, d]`.
pub fn last_logits(x: &[f32], rows: usize, t: usize, norm: &Norm, head: &Dense) -> Vec<f32> {
    let d = norm.gamma.len();
    let last: Vec<f32> = (0..rows)
        .flat_map(|r| x[((r + 1) * t - 1) * d..(r + 1) * t * d].iter().copied())
        .collect();
    let mut normed = vec![0f32; rows * d];
    norm.apply(&last, &mut normed);
    let mut logits = vec![0f32; rows * head.n()];
    head.apply(&normed, rows, &mut logits);
    logits
}

/// Token ids or positions of an int tensor, row-major.
pub(crate) fn ids(t: Tensor<FB, 2, Int>) -> Vec<i64> {
    t.into_data()
        .convert::<i64>()
        .to_vec::<i64>()
        .expect("int tensor data")
}

/// Host logits `[rows, vocab]` as a tensor on `device`.
fn logits_tensor(
    logits: Vec<f32>,
    rows: usize,
    device: &foil_core::backend::Device,
) -> Tensor<FB, 2> {
    let v = logits.len() / rows.max(1);
    Tensor::from_data(burn::tensor::TensorData::new(logits, [rows, v]), device)
}

/// A linear layer: `y = x · w + b`, `w` `[k, n]` (burn's `Linear` layout), packed for
/// [`kernels::linear`].
pub struct Dense {
    pub w: kernels::Packed,
    pub b: Option<Vec<f32>>,
}

impl Dense {
    pub fn from_linear(l: &Linear<FB>) -> Self {
        let [k, n] = l.weight.dims();
        Self {
            w: with_values(l.weight.val(), |w| kernels::Packed::new(w, k, n)),
            b: l.bias.as_ref().map(|b| to_vec(b.val())),
        }
    }

    /// The head tied to a `[vocab, d]` embedding: `y = x · Eᵀ`.
    pub fn tied(embedding: &Param<Tensor<FB, 2>>) -> Self {
        let [vocab, d] = embedding.dims();
        Self {
            w: with_values(embedding.val().transpose(), |w| {
                kernels::Packed::new(w, d, vocab)
            }),
            b: None,
        }
    }

    /// Output width.
    pub fn n(&self) -> usize {
        self.w.n()
    }

    /// `out[m, n] = x[m, k] · w (+ b)`.
    pub fn apply(&self, x: &[f32], m: usize, out: &mut [f32]) {
        kernels::linear(
            &x[..m * self.w.k()],
            &self.w,
            self.b.as_deref(),
            m,
            &mut out[..m * self.n()],
        );
    }
}

/// A LayerNorm (`beta` present) or RMSNorm (`beta` absent, `rms`) over the last axis.
pub struct Norm {
    pub gamma: Vec<f32>,
    pub beta: Option<Vec<f32>>,
    pub eps: f32,
    pub rms: bool,
}

impl Norm {
    pub fn from_rms_norm(n: &RmsNorm<FB>) -> Self {
        Self {
            gamma: to_vec(n.gamma.val()),
            beta: None,
            eps: n.epsilon as f32,
            rms: true,
        }
    }

    pub fn from_layer_norm(n: &LayerNorm<FB>, eps: f64) -> Self {
        Self {
            gamma: to_vec(n.gamma.val()),
            beta: n.beta.as_ref().map(|b| to_vec(b.val())),
            eps: eps as f32,
            rms: false,
        }
    }

    /// Each `d`-wide row of `x` normalised into `out`.
    pub fn apply(&self, x: &[f32], out: &mut [f32]) {
        let d = self.gamma.len();
        for (xr, or) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
            if self.rms {
                kernels::rms_norm(xr, &self.gamma, self.eps, or);
            } else {
                kernels::layer_norm(xr, &self.gamma, self.beta.as_deref(), self.eps, or);
            }
        }
    }
}

/// Keys and values of every layer, `[rows, kv_heads, capacity, d_head]` each, written in
/// place one position per step; `bias` `[rows, capacity]` is the additive key mask
/// (0 for a real key, −1e9 for padding), as in the burn path's `key_bias`.
pub struct KvCache {
    pub rows: usize,
    pub heads: usize,
    pub dh: usize,
    cap: usize,
    len: usize,
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    bias: Vec<f32>,
}

impl KvCache {
    /// An empty cache for `layers` layers whose first `t` positions are the prompt
    /// columns: `key_valid` `[rows, t]` says which are real tokens (left padding is not).
    /// It holds `t + spare` positions before it first regrows.
    pub fn for_prompt(
        layers: usize,
        rows: usize,
        heads: usize,
        dh: usize,
        key_valid: &[bool],
        spare: usize,
    ) -> Self {
        let t = key_valid.len() / rows.max(1);
        let cap = t + spare.max(1);
        let mut bias = vec![0f32; rows * cap];
        for r in 0..rows {
            for j in 0..t {
                bias[r * cap + j] = if key_valid[r * t + j] { 0.0 } else { -1e9 };
            }
        }
        let buffer = || vec![0f32; rows * heads * cap * dh];
        Self {
            rows,
            heads,
            dh,
            cap,
            len: 0,
            k: (0..layers).map(|_| buffer()).collect(),
            v: (0..layers).map(|_| buffer()).collect(),
            bias,
        }
    }

    /// Positions written so far (the prompt's columns plus decoded tokens).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies everything into buffers of capacity `cap`.
    fn regrow(&mut self, cap: usize) {
        let (old, len, dh) = (self.cap, self.len, self.dh);
        let re = |buf: &Vec<f32>, width: usize| {
            let blocks = buf.len() / (old * width);
            let mut out = vec![0f32; blocks * cap * width];
            for b in 0..blocks {
                out[b * cap * width..(b * cap + len) * width]
                    .copy_from_slice(&buf[b * old * width..(b * old + len) * width]);
            }
            out
        };
        self.k = self.k.iter().map(|b| re(b, dh)).collect();
        self.v = self.v.iter().map(|b| re(b, dh)).collect();
        self.bias = re(&self.bias, 1);
        self.cap = cap;
    }

    /// Opens the next position: every row's key there is real (bias 0).
    pub fn open_slot(&mut self) {
        if self.len == self.cap {
            self.regrow(self.cap * 2);
        }
        for r in 0..self.rows {
            self.bias[r * self.cap + self.len] = 0.0;
        }
    }

    /// Writes one row's key and value (`heads · dh` each) of `layer` at position `at`.
    pub fn write(&mut self, layer: usize, row: usize, at: usize, k: &[f32], v: &[f32]) {
        let (cap, dh) = (self.cap, self.dh);
        for h in 0..self.heads {
            let i = ((row * self.heads + h) * cap + at) * dh;
            self.k[layer][i..i + dh].copy_from_slice(&k[h * dh..(h + 1) * dh]);
            self.v[layer][i..i + dh].copy_from_slice(&v[h * dh..(h + 1) * dh]);
        }
    }

    /// Keys, values `[t, dh]` and key bias `[t]` of positions `0..t` of one row and head
    /// of `layer`.
    pub fn seq(&self, layer: usize, row: usize, head: usize, t: usize) -> (&[f32], &[f32], &[f32]) {
        let (cap, dh) = (self.cap, self.dh);
        let at = (row * self.heads + head) * cap * dh;
        (
            &self.k[layer][at..at + t * dh],
            &self.v[layer][at..at + t * dh],
            &self.bias[row * cap..row * cap + t],
        )
    }

    /// Marks `n` more positions as written (after a prefill of `n` columns or a decode
    /// step's open slot).
    pub fn advance(&mut self, n: usize) {
        self.len += n;
    }

    /// The cache with row `i` repeated `repeats[i]` times, in order (`Σ repeats` rows):
    /// keys, values and key bias of each row copied whole.
    pub fn repeat_rows(&self, repeats: &[usize]) -> Self {
        assert_eq!(repeats.len(), self.rows, "one repeat count per cached row");
        let block = self.heads * self.cap * self.dh;
        let repeat = |buf: &[f32], width: usize| repeat_chunks(buf, width, repeats);
        Self {
            rows: repeats.iter().sum(),
            heads: self.heads,
            dh: self.dh,
            cap: self.cap,
            len: self.len,
            k: self.k.iter().map(|b| repeat(b, block)).collect(),
            v: self.v.iter().map(|b| repeat(b, block)).collect(),
            bias: repeat(&self.bias, self.cap),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Repeating rows copies each row's keys, values and padding whole, in order.
    #[test]
    fn repeated_rows_are_whole_copies_in_order() {
        // 2 rows, 1 head, dh 1, a 2-column prompt whose row 0 starts with padding
        let mut c = KvCache::for_prompt(1, 2, 1, 1, &[false, true, true, true], 1);
        for (row, at, k) in [(0, 1, 1.0), (1, 0, 2.0), (1, 1, 3.0)] {
            c.write(0, row, at, &[k], &[-k]);
        }
        c.advance(2);
        let r = c.repeat_rows(&[1, 2]);
        assert_eq!((r.rows, r.len()), (3, 2));
        let keys = |row| r.seq(0, row, 0, 2);
        assert_eq!(
            keys(0),
            (&[0.0, 1.0][..], &[0.0, -1.0][..], &[-1e9, 0.0][..])
        );
        for row in [1, 2] {
            assert_eq!(
                keys(row),
                (&[2.0, 3.0][..], &[-2.0, -3.0][..], &[0.0, 0.0][..])
            );
        }
    }

    /// Regrowth keeps every written key where `seq` reads it and opens real slots.
    #[test]
    fn cache_regrows_without_moving_what_was_written() {
        // 2 rows, 1 head, dh 2, a 1-column prompt whose row 1 is padding, room for 2 more
        let mut c = KvCache::for_prompt(1, 2, 1, 2, &[true, false], 1);
        c.write(0, 0, 0, &[1.0, 2.0], &[5.0, 6.0]);
        c.write(0, 1, 0, &[3.0, 4.0], &[7.0, 8.0]);
        c.advance(1);
        for step in 0..3 {
            c.open_slot();
            let (s, at) = (step as f32, c.len());
            c.write(0, 0, at, &[s, s], &[-s, -s]);
            c.write(0, 1, at, &[10.0 + s, 0.0], &[0.0, 0.0]);
            c.advance(1);
        }
        assert_eq!(c.len(), 4);
        c.open_slot();
        c.write(0, 1, 4, &[9.0, 9.0], &[9.0, 9.0]);
        let (k, v, b) = c.seq(0, 1, 0, 5);
        assert_eq!(k, [3.0, 4.0, 10.0, 0.0, 11.0, 0.0, 12.0, 0.0, 9.0, 9.0]);
        assert_eq!(v[..2], [7.0, 8.0]);
        assert_eq!(b, [-1e9, 0.0, 0.0, 0.0, 0.0]);
        let (k, _, _) = c.seq(0, 0, 0, 3);
        assert_eq!(k, [1.0, 2.0, 0.0, 0.0, 1.0, 1.0]);
    }
}
