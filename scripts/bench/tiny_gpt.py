"""foil's `tiny_gpt` (crates/foil-models/src/tiny_gpt.rs) in PyTorch, for the side-by-side
speed benchmarks (`cargo xtask bench`, docs/benchmarks.md).

Same layout and shapes: learned token + position embeddings; pre-norm blocks with
LayerNorm (eps 1e-5, burn's LayerNormConfig default), one fused qkv Linear with bias,
per-head softmax(QK^T/sqrt(d_h) + M) V, output Linear; MLP Linear -> exact (erf) GELU
(burn's `gelu`) -> Linear; final LayerNorm and a separate head Linear with bias. M is an
additive mask: 0 where the key is real and at or before the query, -1e9 elsewhere.
Attention runs through torch's scaled_dot_product_attention with that float mask.
"""
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, heads, mlp_ratio):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d, eps=1e-5)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d, eps=1e-5)
        self.fc1 = nn.Linear(d, mlp_ratio * d)
        self.fc2 = nn.Linear(mlp_ratio * d, d)

    def forward(self, x, bias, cache=None):
        """x [n, t, d]; bias [n, 1, t, t_keys]; cache: None or a dict with k, v
        [n, h, t_past, d_h] that gets the new keys/values appended. Returns x, (k, v)."""
        n, t, d = x.shape
        h = self.heads
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.reshape(n, t, h, d // h).transpose(1, 2) for z in (q, k, v))
        if cache is not None and "k" in cache:
            k = torch.cat([cache["k"], k], dim=2)
            v = torch.cat([cache["v"], v], dim=2)
        if cache is not None:
            cache["k"], cache["v"] = k, v
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        x = x + self.proj(y.transpose(1, 2).reshape(n, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class TinyGpt(nn.Module):
    def __init__(self, vocab=512, context=128, d=256, layers=4, heads=4, mlp_ratio=4):
        super().__init__()
        self.context = context
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(context, d)
        self.blocks = nn.ModuleList(Block(d, heads, mlp_ratio) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d, eps=1e-5)
        self.head = nn.Linear(d, vocab)

    def embed(self, tokens, positions):
        return self.tok(tokens) + self.pos(positions.clamp(0, self.context - 1))

    def forward(self, tokens, valid, caches=None):
        """Full pass: tokens [n, t] (left-padded), valid [n, t] bool. Positions count real
        tokens only. With `caches` (a list of empty dicts), the layers' keys/values are
        kept for `decode`. Returns logits [n, t, V] and the key bias [n, 1, 1, t]."""
        n, t = tokens.shape
        positions = (valid.long().cumsum(1) - 1).clamp(min=0)
        key_bias = ((valid.float() - 1.0) * 1e9).reshape(n, 1, 1, t)
        causal = torch.full((t, t), -1e9, device=tokens.device).triu(1).reshape(1, 1, t, t)
        bias = causal + key_bias
        h = self.embed(tokens, positions)
        for i, b in enumerate(self.blocks):
            h = b(h, bias, None if caches is None else caches[i])
        return self.head(self.ln_f(h)), key_bias

    def decode(self, caches, key_bias, tokens, positions):
        """One step: tokens/positions [n, 1]. Returns logits [n, V] and the grown key bias."""
        n = tokens.shape[0]
        key_bias = torch.cat([key_bias, key_bias.new_zeros(n, 1, 1, 1)], dim=3)
        h = self.embed(tokens, positions)
        for b, c in zip(self.blocks, caches):
            h = b(h, key_bias, c)
        return self.head(self.ln_f(h))[:, 0], key_bias


def median(xs):
    s = sorted(xs)
    m = len(s) // 2
    return s[m] if len(s) % 2 else 0.5 * (s[m - 1] + s[m])


def timed(fn, iters, warmup):
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def splitmix_ids(n, vocab, seed):
    """The ids foil's benches use (`foil::bench::random_ids`), so both sides see
    the same tokens."""
    mask = (1 << 64) - 1
    s = seed
    out = []
    for _ in range(n):
        s = (s + 0x9E3779B97F4A7C15) & mask
        z = s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        z ^= z >> 31
        out.append(1 + z % (vocab - 1))
    return out


_ = math  # (kept for readers checking the 1/sqrt(d_h) scale: SDPA's default)
