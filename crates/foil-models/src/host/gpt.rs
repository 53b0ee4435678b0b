//! Prefill and decode steps of `tiny_gpt` on the host ([`super`]): the pre-norm block of
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

    /// Runs the left-padded prompts `tokens`/`positions` `[rows, t]` (`key_valid` marks
    /// the real columns) and returns the logits of each row's last column
    /// `[rows, vocab]` with the cache to decode from.
    pub fn prefill(
        &self,
        tokens: &[i64],
        positions: &[i64],
        key_valid: &[bool],
        rows: usize,
    ) -> (Vec<f32>, KvCache) {
        let t = tokens.len() / rows.max(1);
        let (d, h) = (self.d(), self.heads);
        let spare = self.context.saturating_sub(t);
        let mut cache = KvCache::for_prompt(self.blocks.len(), rows, h, d / h, key_valid, spare);
        let logits = self.run(&mut cache, tokens, positions, t);
        (logits, cache)
    }

    /// Appends `tokens[r]` at `positions[r]` for each row and returns the next logits,
    /// `[rows, vocab]`.
    pub fn decode(&self, cache: &mut KvCache, tokens: &[i64], positions: &[i64]) -> Vec<f32> {
        cache.open_slot();
        self.run(cache, tokens, positions, 1)
    }

    /// `t` new columns of every row through the blocks: their keys and values go to
    /// positions `len..len + t` of the cache, column `j` attends to positions
    /// `0..=len + j` (causal, minus padding by the cache's key bias). Returns the logits
    /// of each row's last column.
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
        let widest = self.blocks.iter().map(|b| b.fc1.n.max(b.qkv.n)).max();
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
            let f = &mut wide[..m * b.fc1.n];
            gelu(f);
            b.fc2.apply(f, m, &mut y);
            add(&mut x, &y);
        }
        cache.advance(t);
        let last: Vec<f32> = (0..n)
            .flat_map(|r| x[((r + 1) * t - 1) * d..(r + 1) * t * d].iter().copied())
            .collect();
        self.ln_f.apply(&last, &mut a[..n * d]);
        let mut logits = vec![0f32; n * self.head.n];
        self.head.apply(&a[..n * d], n, &mut logits);
        logits
    }
}

/// `x += y`.
pub(crate) fn add(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}
