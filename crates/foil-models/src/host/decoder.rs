//! Prefill and decode steps of the Hugging Face decoders (Llama, Qwen2, Mistral, SmolLM)
//! on the host ([`super`]): `x += W_o·attn(rope(W_q·n₁), rope(W_k·n₁), W_v·n₁)` with
//! `n₁ = RMSNorm(x)` and grouped key/value heads, `x += W_down·(silu(W_gate·n₂) ⊙ W_up·n₂)`,
//! then `logits = W_head·RMSNorm(x)` — the layer of `crate::hf::decoder`, LoRA adapters
//! merged into the weights.

use super::gpt::add;
use super::kernels::{attend_one, silu_mul};
use super::{Dense, HostModel, KvCache, Norm, last_logits};

/// One decoder layer's weights.
pub struct HostLayer {
    pub attn_norm: Norm,
    pub q: Dense,
    pub k: Dense,
    pub v: Dense,
    pub o: Dense,
    pub mlp_norm: Norm,
    pub gate: Dense,
    pub up: Dense,
    pub down: Dense,
}

/// The weights of a Hugging Face decoder, host-side.
pub struct HostDecoder {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub context: usize,
    /// The rotary inverse frequencies `θ_i` (`crate::hf::rope::inv_freq`).
    pub inv_freq: Vec<f32>,
    /// Token embeddings `[vocab, d]`.
    pub embed: Vec<f32>,
    pub layers: Vec<HostLayer>,
    pub norm: Norm,
    pub head: Dense,
}

impl HostDecoder {
    fn d(&self) -> usize {
        self.norm.gamma.len()
    }

    /// Rotates each `head_dim`-wide head of `x` (one token) to position `p`:
    /// `x' = x ⊙ cos φ + rotate_half(x) ⊙ sin φ`, `φ_j = p·θ_(j mod d/2)` (f32 product,
    /// as `crate::hf::rope::tables`).
    fn rope(&self, x: &mut [f32], p: i64, cos: &mut [f32], sin: &mut [f32]) {
        let half = self.inv_freq.len();
        for (j, f) in self.inv_freq.iter().enumerate() {
            let a = p as f32 * f;
            (cos[j], sin[j]) = (a.cos(), a.sin());
        }
        for head in x.chunks_exact_mut(2 * half) {
            let (lo, hi) = head.split_at_mut(half);
            for j in 0..half {
                let (a, b) = (lo[j], hi[j]);
                lo[j] = a * cos[j] - b * sin[j];
                hi[j] = b * cos[j] + a * sin[j];
            }
        }
    }
}

impl HostModel for HostDecoder {
    fn cache_shape(&self) -> (usize, usize, usize, usize) {
        (
            self.layers.len(),
            self.kv_heads,
            self.head_dim,
            self.context,
        )
    }

    fn run(&self, cache: &mut KvCache, tokens: &[i64], positions: &[i64], t: usize) -> Vec<f32> {
        let (n, d) = (cache.rows, self.d());
        let (h, hk, dh) = (self.heads, self.kv_heads, self.head_dim);
        let (m, base, group) = (n * t, cache.len(), h / hk);
        let scale = 1.0 / (dh as f32).sqrt();
        let mut x = vec![0f32; m * d];
        for (i, xr) in x.chunks_exact_mut(d).enumerate() {
            let tok = tokens[i] as usize;
            xr.copy_from_slice(&self.embed[tok * d..(tok + 1) * d]);
        }
        let f = self.layers.first().map_or(0, |l| l.gate.n());
        let (mut a, mut y) = (vec![0f32; m * d], vec![0f32; m * d]);
        let (mut q, mut att) = (vec![0f32; m * h * dh], vec![0f32; m * h * dh]);
        let (mut k, mut v) = (vec![0f32; m * hk * dh], vec![0f32; m * hk * dh]);
        let (mut g, mut u) = (vec![0f32; m * f], vec![0f32; m * f]);
        let (mut cos, mut sin) = (vec![0f32; dh / 2], vec![0f32; dh / 2]);
        let mut scores = vec![0f32; base + t];
        for (l, layer) in self.layers.iter().enumerate() {
            layer.attn_norm.apply(&x, &mut a);
            layer.q.apply(&a, m, &mut q);
            layer.k.apply(&a, m, &mut k);
            layer.v.apply(&a, m, &mut v);
            for i in 0..m {
                self.rope(
                    &mut q[i * h * dh..(i + 1) * h * dh],
                    positions[i],
                    &mut cos,
                    &mut sin,
                );
                let ki = &mut k[i * hk * dh..(i + 1) * hk * dh];
                self.rope(ki, positions[i], &mut cos, &mut sin);
                let vi = &v[i * hk * dh..(i + 1) * hk * dh];
                cache.write(l, i / t, base + i % t, ki, vi);
            }
            for i in 0..m {
                let keys = base + i % t + 1;
                for hh in 0..h {
                    let (kk, vv, bias) = cache.seq(l, i / t, hh / group, keys);
                    let at = (i * h + hh) * dh;
                    let out = &mut att[at..at + dh];
                    attend_one(&q[at..at + dh], kk, vv, bias, scale, &mut scores, out);
                }
            }
            layer.o.apply(&att, m, &mut y);
            add(&mut x, &y);
            layer.mlp_norm.apply(&x, &mut a);
            layer.gate.apply(&a, m, &mut g);
            layer.up.apply(&a, m, &mut u);
            silu_mul(&mut g, &u);
            layer.down.apply(&g, m, &mut y);
            add(&mut x, &y);
        }
        cache.advance(t);
        last_logits(&x, n, t, &self.norm, &self.head)
    }
}
