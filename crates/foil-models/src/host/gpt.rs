//! Prefill and decode steps of `tiny_gpt` on the host ([`super`]): the pre-norm block of
//! `crate::tiny_gpt` (`x += W_o·attn(LN₁x)`, `x += W₂·gelu(W₁·LN₂x)`) over a
//! [`KvCache`], then `logits = W_head·LN_f(x)`.

use super::kernels::{attend_one, gelu};
use super::{Dense, HostModel, KvCache, Norm, last_logits};

/// One decoder block's weights.
pub struct GptBlock {
    pub ln1: Norm,
    pub qkv: Dense,
    pub proj: Dense,
    pub ln2: Norm,
    pub fc1: Dense,
    pub fc2: Dense,
}

/// The weights of a `tiny_gpt`, host-side.
pub struct HostGpt {
    pub heads: usize,
    pub context: usize,
    /// Token and position embeddings, `[vocab, d]` and `[context, d]`.
    pub tok: Vec<f32>,
    pub pos: Vec<f32>,
    pub blocks: Vec<GptBlock>,
    pub ln_f: Norm,
    pub head: Dense,
}

impl HostGpt {
    fn d(&self) -> usize {
        self.ln_f.gamma.len()
    }
}

impl HostModel for HostGpt {
    fn cache_shape(&self) -> (usize, usize, usize, usize) {
        let (d, h) = (self.d(), self.heads);
        (self.blocks.len(), h, d / h, self.context)
    }

    fn run(&self, cache: &mut KvCache, tokens: &[i64], positions: &[i64], t: usize) -> Vec<f32> {
        let (n, d, h) = (cache.rows, self.d(), self.heads);
        let (m, dh, base) = (n * t, d / h, cache.len());
        let scale = 1.0 / (dh as f32).sqrt();
        let mut x = vec![0f32; m * d];
        for (i, xr) in x.chunks_exact_mut(d).enumerate() {
            let tok = tokens[i] as usize;
            let p = positions[i].clamp(0, self.context as i64 - 1) as usize;
            for (c, xc) in xr.iter_mut().enumerate() {
                *xc = self.tok[tok * d + c] + self.pos[p * d + c];
            }
        }
        let widest = self.blocks.iter().map(|b| b.fc1.n().max(b.qkv.n())).max();
        let mut a = vec![0f32; m * d];
        let mut wide = vec![0f32; m * widest.unwrap_or(0)];
        let mut y = vec![0f32; m * d];
        let mut scores = vec![0f32; base + t];
        for (l, b) in self.blocks.iter().enumerate() {
            b.ln1.apply(&x, &mut a);
            b.qkv.apply(&a, m, &mut wide);
            let qkv = &wide[..m * 3 * d];
            for (i, row) in qkv.chunks_exact(3 * d).enumerate() {
                cache.write(l, i / t, base + i % t, &row[d..2 * d], &row[2 * d..]);
            }
            for (i, row) in qkv.chunks_exact(3 * d).enumerate() {
                let keys = base + i % t + 1;
                for hh in 0..h {
                    let (k, v, bias) = cache.seq(l, i / t, hh, keys);
                    let q = &row[hh * dh..(hh + 1) * dh];
                    let out = &mut a[i * d + hh * dh..i * d + (hh + 1) * dh];
                    attend_one(q, k, v, bias, scale, &mut scores, out);
                }
            }
            b.proj.apply(&a, m, &mut y);
            add(&mut x, &y);
            b.ln2.apply(&x, &mut a);
            b.fc1.apply(&a, m, &mut wide);
            let f = &mut wide[..m * b.fc1.n()];
            gelu(f);
            b.fc2.apply(f, m, &mut y);
            add(&mut x, &y);
        }
        cache.advance(t);
        last_logits(&x, n, t, &self.ln_f, &self.head)
    }
}

/// `x += y`.
pub(crate) fn add(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}
