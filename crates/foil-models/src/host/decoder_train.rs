//! The Hugging Face decoders' forward pass with a trace, and its backward pass, on the host
//! ([`super::train`]). The layer of `crate::hf::decoder`:
//!
//! ```text
//! n₁ = RMSNorm₁(x)
//! x ← x + o(attn(rope(q(n₁)), rope(k(n₁)), v(n₁)))        grouped key/value heads
//! n₂ = RMSNorm₂(x)
//! x ← x + down(silu(gate(n₂)) ⊙ up(n₂))
//! logits = RMSNorm_f(x)·W_head                              W_head = Eᵀ when tied
//! p(x) = x·W + b + s·(x·A)·B                                LoRA adapter when present
//! ```
//!
//! `rope` rotates each head's halves `(lo, hi)` to `(lo·cos − hi·sin, hi·cos + lo·sin)`
//! (angles `position·θ_j` in f32, as `crate::hf::rope::tables`); its backward pass is the
//! transposed rotation. Frozen parameters (the base weights under LoRA) get no gradient,
//! but the gradient still flows through them to the layers below.

use std::sync::Arc;

use foil_kernels::backprop::{self as bp, Attention, Heads, Mat};
use foil_kernels::pool::{give, give_all, take, zeroed};

use super::train::{add_tensors, backward_per_group, concat, per_row_group_of, zeroed_tensors};

/// A projection: indices of its tensors in the flat parameter list.
#[derive(Clone, Copy, Debug)]
pub struct ProjIdx {
    /// `W` `[d_in, d_out]`.
    pub w: usize,
    pub b: Option<usize>,
    /// LoRA `A` `[d_in, r]`, `B` `[r, d_out]` and the scale `α/r`.
    pub lora: Option<(usize, usize, f32)>,
}

/// One layer's tensors, as indices.
#[derive(Clone, Debug)]
pub struct LayerIdx {
    pub attn_norm: usize,
    pub q: ProjIdx,
    pub k: ProjIdx,
    pub v: ProjIdx,
    pub o: ProjIdx,
    pub mlp_norm: usize,
    pub gate: ProjIdx,
    pub up: ProjIdx,
    pub down: ProjIdx,
}

/// The shape of a decoder and where each of its tensors sits in the flat list.
#[derive(Clone, Debug)]
pub struct DecoderLayout {
    pub embed: usize,
    pub layers: Vec<LayerIdx>,
    pub norm: usize,
    /// `None`: tied to the embeddings.
    pub head: Option<usize>,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub inv_freq: Vec<f32>,
    pub eps: f32,
}

/// The parameter values (flat list) and which of them train.
pub struct DecoderParams {
    pub layout: DecoderLayout,
    pub values: Vec<Vec<f32>>,
    pub trainable: Vec<bool>,
}

impl DecoderParams {
    /// Zero gradients for the trainable tensors, empty ones for the frozen.
    pub fn zero_grads(&self) -> Vec<Vec<f32>> {
        let lens: Vec<usize> = self
            .values
            .iter()
            .zip(&self.trainable)
            .map(|(v, &t)| if t { v.len() } else { 0 })
            .collect();
        zeroed_tensors(&lens)
    }

    fn d(&self) -> usize {
        self.values[self.layout.norm].len()
    }

    fn vocab(&self) -> usize {
        self.values[self.layout.embed].len() / self.d()
    }
}

/// What one layer's backward pass reads.
struct LayerTrace {
    x: Vec<f32>,
    n1: Vec<f32>,
    rho1: Vec<f32>,
    /// `x·A` of the q, k, v, o, gate, up, down adapters (empty without one).
    lora_xa: [Vec<f32>; 7],
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    probs: Vec<f32>,
    att: Vec<f32>,
    mid: Vec<f32>,
    n2: Vec<f32>,
    rho2: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    act: Vec<f32>,
}

/// What a forward pass keeps for its backward pass, with the weights it ran with.
pub struct DecoderTrace {
    params: Arc<DecoderParams>,
    rows: usize,
    t: usize,
    tokens: Vec<usize>,
    /// `cos`/`sin` of every token's angles, `[rows·t, head_dim/2]`.
    cos: Vec<f32>,
    sin: Vec<f32>,
    layers: Vec<LayerTrace>,
    last: Vec<f32>,
    nf: Vec<f32>,
    rho_f: Vec<f32>,
}

impl DecoderTrace {
    /// The weights the pass ran with.
    pub fn params(&self) -> &DecoderParams {
        &self.params
    }
}

/// `y = p(x)` for the `m` rows of `x`; returns `x·A` when the projection has an adapter.
fn proj_forward(p: &DecoderParams, idx: ProjIdx, x: &[f32], m: usize, y: &mut [f32]) -> Vec<f32> {
    let v = &p.values;
    bp::linear_forward(x, &v[idx.w], idx.b.map(|b| &v[b][..]), m, y);
    let Some((a, b, scale)) = idx.lora else {
        return Vec::new();
    };
    let (k, n) = (x.len() / m, y.len() / m);
    let r = v[a].len() / k;
    let mut xa = take(m * r);
    bp::linear_forward(x, &v[a], None, m, &mut xa);
    let scaled: Vec<f32> = xa.iter().map(|e| e * scale).collect();
    bp::matmul(
        y,
        n,
        true,
        Mat::rows(&scaled, r),
        Mat::rows(&v[b], n),
        m,
        r,
        n,
    );
    xa
}

/// The backward pass of [`proj_forward`]: gradients of the trainable tensors into `grads`,
/// and `dx (+)= ∂/∂x` (added with `accumulate`).
#[allow(clippy::too_many_arguments)]
fn proj_backward(
    p: &DecoderParams,
    idx: ProjIdx,
    x: &[f32],
    xa: &[f32],
    dy: &[f32],
    m: usize,
    grads: &mut [Vec<f32>],
    dx: &mut [f32],
    accumulate: bool,
) {
    let v = &p.values;
    let (k, n) = (x.len() / m, dy.len() / m);
    if p.trainable[idx.w] {
        bp::matmul(
            &mut grads[idx.w],
            n,
            true,
            Mat::cols(x, k),
            Mat::rows(dy, n),
            k,
            m,
            n,
        );
    }
    if let Some(b) = idx.b.filter(|&b| p.trainable[b]) {
        bp::column_sums(dy, n, &mut grads[b]);
    }
    bp::matmul(
        dx,
        k,
        accumulate,
        Mat::rows(dy, n),
        Mat::cols(&v[idx.w], n),
        m,
        n,
        k,
    );
    if let Some((a, b, scale)) = idx.lora {
        let r = xa.len() / m;
        // dB += s·(xA)ᵀ·dy, d(xA) = s·dy·Bᵀ, dA += xᵀ·d(xA), dx += d(xA)·Aᵀ
        if p.trainable[b] {
            let scaled: Vec<f32> = xa.iter().map(|e| e * scale).collect();
            bp::matmul(
                &mut grads[b],
                n,
                true,
                Mat::cols(&scaled, r),
                Mat::rows(dy, n),
                r,
                m,
                n,
            );
        }
        let mut d_xa = take(m * r);
        bp::matmul(
            &mut d_xa,
            r,
            false,
            Mat::rows(dy, n),
            Mat::cols(&v[b], n),
            m,
            n,
            r,
        );
        d_xa.iter_mut().for_each(|e| *e *= scale);
        if p.trainable[a] {
            bp::matmul(
                &mut grads[a],
                r,
                true,
                Mat::cols(x, k),
                Mat::rows(&d_xa, r),
                k,
                m,
                r,
            );
        }
        bp::matmul(
            dx,
            k,
            true,
            Mat::rows(&d_xa, r),
            Mat::cols(&v[a], r),
            m,
            r,
            k,
        );
    }
}

/// Rotates every head of every token row of `x` (`width` = heads·head_dim per row) by its
/// row's angles; `inverse` applies the transposed rotation (the backward pass).
fn rope(x: &mut [f32], width: usize, cos: &[f32], sin: &[f32], inverse: bool) {
    let half = cos.len() / (x.len() / width).max(1);
    let sign = if inverse { -1.0 } else { 1.0 };
    for (i, row) in x.chunks_exact_mut(width).enumerate() {
        let (c, s) = (
            &cos[i * half..(i + 1) * half],
            &sin[i * half..(i + 1) * half],
        );
        for head in row.chunks_exact_mut(2 * half) {
            let (lo, hi) = head.split_at_mut(half);
            for j in 0..half {
                let (a, b, sj) = (lo[j], hi[j], sign * s[j]);
                lo[j] = a * c[j] - b * sj;
                hi[j] = b * c[j] + a * sj;
            }
        }
    }
}

/// The layers' output `x_L` `[rows·t, d]`, the rotary tables, and (with `keep`) each
/// layer's trace.
struct Trunk {
    x: Vec<f32>,
    cos: Vec<f32>,
    sin: Vec<f32>,
    layers: Vec<LayerTrace>,
}

fn trunk(
    p: &DecoderParams,
    tokens: &[usize],
    positions: &[i64],
    valid: &[bool],
    rows: usize,
    keep: bool,
) -> Trunk {
    let d = p.d();
    let l = &p.layout;
    let (hq, hk, dh) = (l.heads, l.kv_heads, l.head_dim);
    let m = tokens.len();
    let t = m / rows.max(1);
    let half = l.inv_freq.len();
    let (mut cos, mut sin) = (take(m * half), take(m * half));
    for (i, &pos) in positions.iter().enumerate() {
        for (j, f) in l.inv_freq.iter().enumerate() {
            let a = pos as f32 * f;
            (cos[i * half + j], sin[i * half + j]) = (a.cos(), a.sin());
        }
    }
    let embed = &p.values[l.embed];
    let mut x: Vec<f32> = tokens
        .iter()
        .flat_map(|&tok| embed[tok * d..(tok + 1) * d].iter().copied())
        .collect();
    let shape = Attention {
        rows,
        t,
        q_heads: hq,
        kv_heads: hk,
        dh,
    };
    let mut layers = Vec::with_capacity(if keep { l.layers.len() } else { 0 });
    for li in &l.layers {
        let v = &p.values;
        let (mut n1, mut rho1) = (take(m * d), take(m));
        bp::rms_norm_forward(&x, &v[li.attn_norm], l.eps, &mut n1, &mut rho1);
        let (mut q, mut k, mut vv) = (take(m * hq * dh), take(m * hk * dh), take(m * hk * dh));
        let xa_q = proj_forward(p, li.q, &n1, m, &mut q);
        let xa_k = proj_forward(p, li.k, &n1, m, &mut k);
        let xa_v = proj_forward(p, li.v, &n1, m, &mut vv);
        rope(&mut q, hq * dh, &cos, &sin, false);
        rope(&mut k, hk * dh, &cos, &sin, false);
        let (mut probs, mut att) = (take(shape.probs_len()), take(m * hq * dh));
        let (qh, kh, vh) = (heads(&q, m), heads(&k, m), heads(&vv, m));
        shape.forward(qh, kh, vh, valid, &mut probs, &mut att);
        let mut mid = take(m * d);
        let xa_o = proj_forward(p, li.o, &att, m, &mut mid);
        add(&mut mid, &x);
        let (mut n2, mut rho2) = (take(m * d), take(m));
        bp::rms_norm_forward(&mid, &v[li.mlp_norm], l.eps, &mut n2, &mut rho2);
        let f = v[li.gate.w].len() / d;
        let (mut gate, mut up, mut act) = (take(m * f), take(m * f), take(m * f));
        let xa_gate = proj_forward(p, li.gate, &n2, m, &mut gate);
        let xa_up = proj_forward(p, li.up, &n2, m, &mut up);
        bp::swiglu_forward(&gate, &up, &mut act);
        let mut out = take(m * d);
        let xa_down = proj_forward(p, li.down, &act, m, &mut out);
        add(&mut out, &mid);
        let input = std::mem::replace(&mut x, out);
        // dropped when not kept, which hands its buffers back to the pool
        let trace = LayerTrace {
            x: input,
            n1,
            rho1,
            lora_xa: [xa_q, xa_k, xa_v, xa_o, xa_gate, xa_up, xa_down],
            q,
            k,
            v: vv,
            probs,
            att,
            mid,
            n2,
            rho2,
            gate,
            up,
            act,
        };
        if keep {
            layers.push(trace);
        }
    }
    Trunk {
        x,
        cos,
        sin,
        layers,
    }
}

/// `logits = RMSNorm_f(x)·W_head` for the `m` rows of `x`; returns the normed rows too.
fn head(
    p: &DecoderParams,
    x: &[f32],
    m: usize,
    nf: &mut [f32],
    rho: &mut [f32],
    logits: &mut [f32],
) {
    let (l, d, vocab) = (&p.layout, p.d(), p.vocab());
    bp::rms_norm_forward(x, &p.values[l.norm], l.eps, nf, rho);
    match l.head {
        Some(h) => bp::linear_forward(nf, &p.values[h], None, m, logits),
        None => bp::matmul(
            logits,
            vocab,
            false,
            Mat::rows(nf, d),
            Mat::cols(&p.values[l.embed], d),
            m,
            d,
            vocab,
        ),
    }
}

/// Logits `[rows·t, vocab]` of `tokens`/`positions` (`[rows, t]`, `valid` marking real
/// tokens) and the trace of the pass.
pub fn forward(
    params: Arc<DecoderParams>,
    tokens: &[i64],
    positions: &[i64],
    valid: &[bool],
    rows: usize,
) -> (Vec<f32>, DecoderTrace) {
    let (d, vocab) = (params.d(), params.vocab());
    let tokens: Vec<usize> = tokens.iter().map(|&x| x as usize).collect();
    let m = tokens.len();
    let Trunk {
        x,
        cos,
        sin,
        layers,
    } = trunk(&params, &tokens, positions, valid, rows, true);
    let (mut nf, mut rho_f, mut logits) = (take(m * d), take(m), take(m * vocab));
    head(&params, &x, m, &mut nf, &mut rho_f, &mut logits);
    let trace = DecoderTrace {
        params,
        rows,
        t: m / rows.max(1),
        tokens,
        cos,
        sin,
        layers,
        last: x,
        nf,
        rho_f,
    };
    (logits, trace)
}

/// Token rows whose logits a [`token_logprobs`] pass holds at once (times the vocabulary).
const LOGPROB_ROWS: usize = 256;

/// `log π(targets[r, j] | columns ≤ j)` for the first `t − 1` columns of every row,
/// `[rows, t−1]` (`targets` is `[rows, t−1]`): a forward pass without a trace, then the
/// head and log-softmax over at most 256 token rows at a time (what a reference or
/// behaviour log-prob pass needs).
pub fn token_logprobs(
    p: &DecoderParams,
    tokens: &[i64],
    positions: &[i64],
    valid: &[bool],
    rows: usize,
    targets: &[i64],
) -> Vec<f32> {
    let t = tokens.len() / rows.max(1);
    concat(per_row_group_of(
        tokens,
        positions,
        valid,
        rows,
        |r, tokens, positions, valid| {
            let targets = &targets[r.start * (t - 1)..r.end * (t - 1)];
            group_logprobs(p, tokens, positions, valid, r.len(), targets)
        },
    ))
}

/// [`token_logprobs`] of one row group.
fn group_logprobs(
    p: &DecoderParams,
    tokens: &[i64],
    positions: &[i64],
    valid: &[bool],
    rows: usize,
    targets: &[i64],
) -> Vec<f32> {
    let (d, vocab) = (p.d(), p.vocab());
    let ids: Vec<usize> = tokens.iter().map(|&x| x as usize).collect();
    let m = ids.len();
    let t = m / rows.max(1);
    let Trunk {
        x,
        mut cos,
        mut sin,
        ..
    } = trunk(p, &ids, positions, valid, rows, false);
    give_all([&mut cos, &mut sin]);
    let mut out = vec![0f32; rows * (t - 1)];
    let chunk = LOGPROB_ROWS.min(m.max(1));
    let (mut nf, mut rho, mut logits) = (take(chunk * d), take(chunk), take(chunk * vocab));
    for start in (0..m).step_by(chunk) {
        let n = chunk.min(m - start);
        head(
            p,
            &x[start * d..(start + n) * d],
            n,
            &mut nf[..n * d],
            &mut rho[..n],
            &mut logits[..n * vocab],
        );
        for (i, row) in logits[..n * vocab].chunks_exact(vocab).enumerate() {
            let at = start + i;
            let (r, j) = (at / t, at % t);
            if j + 1 < t {
                let at = r * (t - 1) + j;
                out[at] = bp::log_softmax_at(row, targets[at] as usize);
            }
        }
    }
    give_all([&mut nf, &mut rho, &mut logits]);
    give(x);
    out
}

/// A forward pass whose rows ran in groups side by side ([`forward_split`]).
pub struct DecoderPass {
    groups: Vec<DecoderTrace>,
}

impl DecoderPass {
    /// The weights the pass ran with.
    pub fn params(&self) -> &DecoderParams {
        &self.groups[0].params
    }
}

/// [`forward`] over the batch's row groups side by side (`super::train::per_row_group`).
pub fn forward_split(
    params: Arc<DecoderParams>,
    tokens: &[i64],
    positions: &[i64],
    valid: &[bool],
    rows: usize,
) -> (Vec<f32>, DecoderPass) {
    let (logits, groups): (Vec<Vec<f32>>, Vec<DecoderTrace>) = per_row_group_of(
        tokens,
        positions,
        valid,
        rows,
        |r, tokens, positions, valid| forward(params.clone(), tokens, positions, valid, r.len()),
    )
    .into_iter()
    .unzip();
    (concat(logits), DecoderPass { groups })
}

/// [`backward`] of a [`forward_split`] pass: each group's backward pass on its own thread
/// from its rows of `d_logits`, the groups' gradients then summed into `grads`.
pub fn backward_split(pass: &DecoderPass, d_logits: &[f32], grads: &mut [Vec<f32>]) {
    let vocab = pass.params().vocab();
    backward_per_group(
        &pass.groups,
        |trace| trace.rows * trace.t * vocab,
        d_logits,
        grads,
        || pass.params().zero_grads(),
        backward,
        |grads, mut part| {
            add_tensors(grads, &part);
            give_all(&mut part);
        },
    );
}

/// Adds to `grads` (from [`DecoderParams::zero_grads`]) the gradient of the loss with
/// respect to every trainable tensor, given `d_logits` (`[rows·t, vocab]`).
pub fn backward(trace: &DecoderTrace, d_logits: &[f32], grads: &mut [Vec<f32>]) {
    let p = &trace.params;
    let l = &p.layout;
    let v = &p.values;
    let (d, vocab) = (p.d(), p.vocab());
    let m = trace.rows * trace.t;
    let (hq, hk, dh) = (l.heads, l.kv_heads, l.head_dim);
    let mut d_nf = take(m * d);
    match l.head {
        Some(h) => {
            let dw = if p.trainable[h] {
                Some(&mut grads[h])
            } else {
                None
            };
            if let Some(dw) = dw {
                bp::matmul(
                    dw,
                    vocab,
                    true,
                    Mat::cols(&trace.nf, d),
                    Mat::rows(d_logits, vocab),
                    d,
                    m,
                    vocab,
                );
            }
            bp::matmul(
                &mut d_nf,
                d,
                false,
                Mat::rows(d_logits, vocab),
                Mat::cols(&v[h], vocab),
                m,
                vocab,
                d,
            );
        }
        None => {
            // logits = nf·Eᵀ: dE += d_logitsᵀ·nf, d_nf = d_logits·E
            if p.trainable[l.embed] {
                bp::matmul(
                    &mut grads[l.embed],
                    d,
                    true,
                    Mat::cols(d_logits, vocab),
                    Mat::rows(&trace.nf, d),
                    vocab,
                    m,
                    d,
                );
            }
            bp::matmul(
                &mut d_nf,
                d,
                false,
                Mat::rows(d_logits, vocab),
                Mat::rows(&v[l.embed], d),
                m,
                vocab,
                d,
            );
        }
    }
    let mut dx = zeroed(m * d);
    norm_backward(p, l.norm, &trace.last, &trace.rho_f, &d_nf, &mut dx, grads);
    let shape = Attention {
        rows: trace.rows,
        t: trace.t,
        q_heads: hq,
        kv_heads: hk,
        dh,
    };
    let mut d_n = take(m * d);
    for (li, lt) in l.layers.iter().zip(&trace.layers).rev() {
        let f = lt.gate.len() / m;
        // x' = mid + down(silu(gate(n₂)) ⊙ up(n₂))
        let mut d_act = take(m * f);
        proj_backward(
            p,
            li.down,
            &lt.act,
            &lt.lora_xa[6],
            &dx,
            m,
            grads,
            &mut d_act,
            false,
        );
        let (mut d_gate, mut d_up) = (take(m * f), take(m * f));
        bp::swiglu_backward(&lt.gate, &lt.up, &d_act, &mut d_gate, &mut d_up);
        proj_backward(
            p,
            li.gate,
            &lt.n2,
            &lt.lora_xa[4],
            &d_gate,
            m,
            grads,
            &mut d_n,
            false,
        );
        proj_backward(
            p,
            li.up,
            &lt.n2,
            &lt.lora_xa[5],
            &d_up,
            m,
            grads,
            &mut d_n,
            true,
        );
        norm_backward(p, li.mlp_norm, &lt.mid, &lt.rho2, &d_n, &mut dx, grads);
        // mid = x + o(attn(rope(q(n₁)), rope(k(n₁)), v(n₁)))
        let mut d_att = take(m * hq * dh);
        proj_backward(
            p,
            li.o,
            &lt.att,
            &lt.lora_xa[3],
            &dx,
            m,
            grads,
            &mut d_att,
            false,
        );
        let (mut dq, mut dk, mut dv) = (take(m * hq * dh), take(m * hk * dh), take(m * hk * dh));
        shape.backward(
            heads(&lt.q, m),
            heads(&lt.k, m),
            heads(&lt.v, m),
            &lt.probs,
            &d_att,
            &mut dq,
            &mut dk,
            &mut dv,
        );
        rope(&mut dq, hq * dh, &trace.cos, &trace.sin, true);
        rope(&mut dk, hk * dh, &trace.cos, &trace.sin, true);
        proj_backward(
            p,
            li.q,
            &lt.n1,
            &lt.lora_xa[0],
            &dq,
            m,
            grads,
            &mut d_n,
            false,
        );
        proj_backward(
            p,
            li.k,
            &lt.n1,
            &lt.lora_xa[1],
            &dk,
            m,
            grads,
            &mut d_n,
            true,
        );
        proj_backward(
            p,
            li.v,
            &lt.n1,
            &lt.lora_xa[2],
            &dv,
            m,
            grads,
            &mut d_n,
            true,
        );
        norm_backward(p, li.attn_norm, &lt.x, &lt.rho1, &d_n, &mut dx, grads);
        give_all([
            &mut d_act,
            &mut d_gate,
            &mut d_up,
            &mut d_att,
            &mut dq,
            &mut dk,
            &mut dv,
        ]);
    }
    if p.trainable[l.embed] {
        let de = &mut grads[l.embed];
        for (i, row) in dx.chunks_exact(d).enumerate() {
            add(&mut de[trace.tokens[i] * d..][..d], row);
        }
    }
    give_all([&mut d_nf, &mut dx, &mut d_n]);
}

impl Drop for LayerTrace {
    fn drop(&mut self) {
        give_all(self.lora_xa.iter_mut());
        give_all([
            &mut self.x,
            &mut self.n1,
            &mut self.rho1,
            &mut self.q,
            &mut self.k,
            &mut self.v,
            &mut self.probs,
            &mut self.att,
            &mut self.mid,
            &mut self.n2,
            &mut self.rho2,
            &mut self.gate,
            &mut self.up,
            &mut self.act,
        ]);
    }
}

impl Drop for DecoderTrace {
    fn drop(&mut self) {
        give_all([
            &mut self.cos,
            &mut self.sin,
            &mut self.last,
            &mut self.nf,
            &mut self.rho_f,
        ]);
    }
}

/// RMSNorm `i`'s backward pass: `dx +=` its input gradient, and its γ's gradient into
/// `grads` when γ trains.
fn norm_backward(
    p: &DecoderParams,
    i: usize,
    x: &[f32],
    rho: &[f32],
    dy: &[f32],
    dx: &mut [f32],
    grads: &mut [Vec<f32>],
) {
    let gamma = &p.values[i];
    let mut dg = if p.trainable[i] {
        std::mem::take(&mut grads[i])
    } else {
        zeroed(gamma.len())
    };
    bp::rms_norm_backward(x, rho, gamma, dy, dx, &mut dg);
    if p.trainable[i] {
        grads[i] = dg;
    }
}

/// The heads of a `[m, heads·head_dim]` buffer.
fn heads(data: &[f32], m: usize) -> Heads<'_> {
    Heads {
        data,
        offset: 0,
        stride: data.len() / m,
    }
}

/// `x += y`.
fn add(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}
