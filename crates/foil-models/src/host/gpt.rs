//! One decode step of `tiny_gpt` on the host ([`super`]): the pre-norm block of
//! `crate::tiny_gpt` (`x += W_o·attn(LN₁x)`, `x += W₂·gelu(W₁·LN₂x)`) over a
//! [`KvCache`], then `logits = W_head·LN_f(x)`.

use super::kernels::{attend_one, gelu};
use super::{Dense, KvCache, Norm};

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

    /// Appends `tokens[r]` at `positions[r]` for each row and returns the next logits,
    /// `[rows, vocab]` row-major.
    pub fn decode(&self, cache: &mut KvCache, tokens: &[i64], positions: &[i64]) -> Vec<f32> {
        let (n, d, h) = (tokens.len(), self.d(), self.heads);
        let dh = d / h;
        let scale = 1.0 / (dh as f32).sqrt();
        let mut x = vec![0f32; n * d];
        for r in 0..n {
            let t = tokens[r] as usize;
            let p = positions[r].clamp(0, self.context as i64 - 1) as usize;
            for (i, xi) in x[r * d..(r + 1) * d].iter_mut().enumerate() {
                *xi = self.tok[t * d + i] + self.pos[p * d + i];
            }
        }
        cache.open_slot();
        let widest = self.blocks.iter().map(|b| b.fc1.n.max(b.qkv.n)).max();
        let mut a = vec![0f32; n * d];
        let mut wide = vec![0f32; n * widest.unwrap_or(0)];
        let mut y = vec![0f32; n * d];
        let mut scores = vec![0f32; cache.len() + 1];
        for (l, b) in self.blocks.iter().enumerate() {
            b.ln1.apply(&x, &mut a);
            b.qkv.apply(&a, n, &mut wide);
            let qkv = &wide[..n * 3 * d];
            for r in 0..n {
                let row = &qkv[r * 3 * d..(r + 1) * 3 * d];
                cache.write(l, r, &row[d..2 * d], &row[2 * d..]);
            }
            for r in 0..n {
                for hh in 0..h {
                    let (keys, values, bias) = cache.seq(l, r, hh);
                    let q = &qkv[r * 3 * d + hh * dh..r * 3 * d + (hh + 1) * dh];
                    let out = &mut a[r * d + hh * dh..r * d + (hh + 1) * dh];
                    attend_one(q, keys, values, bias, scale, &mut scores, out);
                }
            }
            b.proj.apply(&a, n, &mut y);
            add(&mut x, &y);
            b.ln2.apply(&x, &mut a);
            b.fc1.apply(&a, n, &mut wide);
            let f = &mut wide[..n * b.fc1.n];
            gelu(f);
            b.fc2.apply(f, n, &mut y);
            add(&mut x, &y);
        }
        cache.close_slot();
        self.ln_f.apply(&x, &mut a);
        let mut logits = vec![0f32; n * self.head.n];
        self.head.apply(&a, n, &mut logits);
        logits
    }
}

/// `x += y`.
pub(crate) fn add(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}
