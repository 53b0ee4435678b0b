//! `tiny_gpt`'s forward pass with a trace, and its backward pass, on the host
//! ([`super::train`]). The same network as `crate::tiny_gpt`:
//!
//! ```text
//! x₀ = E_tok[token] + E_pos[min(position, context − 1)]
//! a = x + attn(LN₁x)·W_o + b_o            attn over qkv = LN₁x·W_qkv + b_qkv
//! x' = a + gelu(LN₂a·W₁ + b₁)·W₂ + b₂
//! logits = LN_f(x_L)·W_head + b_head
//! ```
//!
//! The backward pass is the chain rule through those lines in reverse, with the per-op
//! derivatives of `foil_kernels::backprop`.

use std::sync::Arc;

use foil_kernels::backprop::{self as bp, Attention, Heads};
use foil_kernels::pool::{give, give_all, take, zeroed};

use super::train::{backward_per_group, concat, per_row_group_of, zeroed_tensors};
use rayon::prelude::*;

/// Tensors per block in `TinyGptModel::param_refs` order.
const PER_BLOCK: usize = 12;

/// One block's parameters (or their gradients), burn's layouts: weights `[d_in, d_out]`.
pub struct BlockParams {
    pub ln1_g: Vec<f32>,
    pub ln1_b: Vec<f32>,
    pub qkv_w: Vec<f32>,
    pub qkv_b: Vec<f32>,
    pub proj_w: Vec<f32>,
    pub proj_b: Vec<f32>,
    pub ln2_g: Vec<f32>,
    pub ln2_b: Vec<f32>,
    pub fc1_w: Vec<f32>,
    pub fc1_b: Vec<f32>,
    pub fc2_w: Vec<f32>,
    pub fc2_b: Vec<f32>,
}

/// Every parameter of a `tiny_gpt` (or its gradient), in `TinyGptModel::param_refs`
/// order: `tok, pos, [ln1 γ β, qkv w b, proj w b, ln2 γ β, fc1 w b, fc2 w b]·layers,
/// ln_f γ β, head w b`.
pub struct GptParams {
    pub tok: Vec<f32>,
    pub pos: Vec<f32>,
    pub blocks: Vec<BlockParams>,
    pub lnf_g: Vec<f32>,
    pub lnf_b: Vec<f32>,
    pub head_w: Vec<f32>,
    pub head_b: Vec<f32>,
}

impl GptParams {
    /// From the flat list in `param_refs` order.
    pub fn from_flat(flat: Vec<Vec<f32>>) -> Self {
        assert!(
            flat.len() >= 6 && (flat.len() - 6).is_multiple_of(PER_BLOCK),
            "tiny_gpt has 2 + 12·layers + 4 parameter tensors, got {}",
            flat.len()
        );
        let layers = (flat.len() - 6) / PER_BLOCK;
        let mut it = flat.into_iter();
        let mut next = move || it.next().expect("length checked above");
        let (tok, pos) = (next(), next());
        let blocks = (0..layers)
            .map(|_| BlockParams {
                ln1_g: next(),
                ln1_b: next(),
                qkv_w: next(),
                qkv_b: next(),
                proj_w: next(),
                proj_b: next(),
                ln2_g: next(),
                ln2_b: next(),
                fc1_w: next(),
                fc1_b: next(),
                fc2_w: next(),
                fc2_b: next(),
            })
            .collect();
        Self {
            tok,
            pos,
            blocks,
            lnf_g: next(),
            lnf_b: next(),
            head_w: next(),
            head_b: next(),
        }
    }

    /// The flat list in `param_refs` order.
    pub fn into_flat(mut self) -> Vec<Vec<f32>> {
        self.tensors_mut().into_iter().map(std::mem::take).collect()
    }

    /// Every tensor, in `param_refs` order.
    fn tensors(&self) -> Vec<&Vec<f32>> {
        let mut all = vec![&self.tok, &self.pos];
        for b in &self.blocks {
            all.extend([
                &b.ln1_g, &b.ln1_b, &b.qkv_w, &b.qkv_b, &b.proj_w, &b.proj_b, &b.ln2_g, &b.ln2_b,
                &b.fc1_w, &b.fc1_b, &b.fc2_w, &b.fc2_b,
            ]);
        }
        all.extend([&self.lnf_g, &self.lnf_b, &self.head_w, &self.head_b]);
        all
    }

    /// Every tensor, mutably, in `param_refs` order.
    fn tensors_mut(&mut self) -> Vec<&mut Vec<f32>> {
        let mut all = vec![&mut self.tok, &mut self.pos];
        for b in &mut self.blocks {
            all.extend([
                &mut b.ln1_g,
                &mut b.ln1_b,
                &mut b.qkv_w,
                &mut b.qkv_b,
                &mut b.proj_w,
                &mut b.proj_b,
                &mut b.ln2_g,
                &mut b.ln2_b,
                &mut b.fc1_w,
                &mut b.fc1_b,
                &mut b.fc2_w,
                &mut b.fc2_b,
            ]);
        }
        all.extend([
            &mut self.lnf_g,
            &mut self.lnf_b,
            &mut self.head_w,
            &mut self.head_b,
        ]);
        all
    }

    /// The same shapes, all zeros (a gradient to accumulate into).
    pub fn zeros_like(&self) -> Self {
        let lens: Vec<usize> = self.tensors().iter().map(|v| v.len()).collect();
        Self::from_flat(zeroed_tensors(&lens))
    }

    fn d(&self) -> usize {
        self.lnf_g.len()
    }

    fn vocab(&self) -> usize {
        self.head_b.len()
    }
}

/// The network's shape beyond its parameters.
#[derive(Clone, Copy)]
pub struct GptShape {
    pub heads: usize,
    pub context: usize,
    pub eps: f32,
}

/// What one block's backward pass reads.
struct BlockTrace {
    x: Vec<f32>,
    ln1: Vec<f32>,
    ln1_stats: Vec<f32>,
    qkv: Vec<f32>,
    probs: Vec<f32>,
    att: Vec<f32>,
    mid: Vec<f32>,
    ln2: Vec<f32>,
    ln2_stats: Vec<f32>,
    /// GELU′ at fc1's output (`bp::bias_gelu_forward`).
    slope: Vec<f32>,
    act: Vec<f32>,
}

/// What a forward pass keeps for its backward pass, with the weights it ran with.
pub struct GptTrace {
    params: Arc<GptParams>,
    shape: GptShape,
    rows: usize,
    t: usize,
    tokens: Vec<usize>,
    positions: Vec<usize>,
    blocks: Vec<BlockTrace>,
    last: Vec<f32>,
    lnf: Vec<f32>,
    lnf_stats: Vec<f32>,
}

impl GptTrace {
    /// The weights the pass ran with.
    pub fn params(&self) -> &GptParams {
        &self.params
    }
}

/// Logits `[rows·t, vocab]` of `tokens`/`positions` (`[rows, t]`, `valid` marking real
/// tokens) and the trace of the pass.
pub fn forward(
    params: Arc<GptParams>,
    shape: GptShape,
    tokens: &[i64],
    positions: &[i64],
    valid: &[bool],
    rows: usize,
) -> (Vec<f32>, GptTrace) {
    let (d, v) = (params.d(), params.vocab());
    let m = tokens.len();
    let t = m / rows.max(1);
    let tokens: Vec<usize> = tokens.iter().map(|&x| x as usize).collect();
    let positions: Vec<usize> = positions
        .iter()
        .map(|&p| p.clamp(0, shape.context as i64 - 1) as usize)
        .collect();
    let mut x = take(m * d);
    for (i, row) in x.chunks_exact_mut(d).enumerate() {
        let (tok, pos) = (
            &params.tok[tokens[i] * d..][..d],
            &params.pos[positions[i] * d..][..d],
        );
        for c in 0..d {
            row[c] = tok[c] + pos[c];
        }
    }
    let att_shape = Attention {
        rows,
        t,
        q_heads: shape.heads,
        kv_heads: shape.heads,
        dh: d / shape.heads,
    };
    let mut blocks = Vec::with_capacity(params.blocks.len());
    for b in &params.blocks {
        let (mut ln1, mut ln1_stats) = (take(m * d), take(2 * m));
        bp::layer_norm_forward(
            &x,
            &b.ln1_g,
            Some(&b.ln1_b),
            shape.eps,
            &mut ln1,
            &mut ln1_stats,
        );
        let mut qkv = take(m * 3 * d);
        bp::linear_forward(&ln1, &b.qkv_w, Some(&b.qkv_b), m, &mut qkv);
        let (mut probs, mut att) = (take(att_shape.probs_len()), take(m * d));
        let view = |i: usize| Heads {
            data: &qkv,
            offset: i * d,
            stride: 3 * d,
        };
        att_shape.forward(view(0), view(1), view(2), valid, &mut probs, &mut att);
        let mut mid = take(m * d);
        bp::linear_forward(&att, &b.proj_w, None, m, &mut mid);
        bp::add_residual_bias(&mut mid, &x, &b.proj_b);
        let (mut ln2, mut ln2_stats) = (take(m * d), take(2 * m));
        bp::layer_norm_forward(
            &mid,
            &b.ln2_g,
            Some(&b.ln2_b),
            shape.eps,
            &mut ln2,
            &mut ln2_stats,
        );
        let hidden = b.fc1_b.len();
        // `slope` holds fc1's output until `bias_gelu_forward` replaces it with GELU′
        let (mut slope, mut act) = (take(m * hidden), take(m * hidden));
        bp::linear_forward(&ln2, &b.fc1_w, None, m, &mut slope);
        bp::bias_gelu_forward(&mut slope, &b.fc1_b, &mut act);
        let mut out = take(m * d);
        bp::linear_forward(&act, &b.fc2_w, None, m, &mut out);
        bp::add_residual_bias(&mut out, &mid, &b.fc2_b);
        let input = std::mem::replace(&mut x, out);
        blocks.push(BlockTrace {
            x: input,
            ln1,
            ln1_stats,
            qkv,
            probs,
            att,
            mid,
            ln2,
            ln2_stats,
            slope,
            act,
        });
    }
    let (mut lnf, mut lnf_stats) = (take(m * d), take(2 * m));
    bp::layer_norm_forward(
        &x,
        &params.lnf_g,
        Some(&params.lnf_b),
        shape.eps,
        &mut lnf,
        &mut lnf_stats,
    );
    let mut logits = take(m * v);
    bp::linear_forward(&lnf, &params.head_w, Some(&params.head_b), m, &mut logits);
    let trace = GptTrace {
        params,
        shape,
        rows,
        t,
        tokens,
        positions,
        blocks,
        last: x,
        lnf,
        lnf_stats,
    };
    (logits, trace)
}

/// A forward pass whose rows ran in groups, one per rayon thread, each group's products
/// on its own thread ([`forward_split`]).
pub struct GptPass {
    groups: Vec<GptTrace>,
}

impl GptPass {
    /// The weights the pass ran with.
    pub fn params(&self) -> &GptParams {
        &self.groups[0].params
    }
}

/// [`forward`] over the batch's row groups side by side (`super::train::per_row_group`).
pub fn forward_split(
    params: GptParams,
    shape: GptShape,
    tokens: &[i64],
    positions: &[i64],
    valid: &[bool],
    rows: usize,
) -> (Vec<f32>, GptPass) {
    let params = Arc::new(params);
    let (logits, groups): (Vec<Vec<f32>>, Vec<GptTrace>) = per_row_group_of(
        tokens,
        positions,
        valid,
        rows,
        |r, tokens, positions, valid| {
            forward(params.clone(), shape, tokens, positions, valid, r.len())
        },
    )
    .into_iter()
    .unzip();
    (concat(logits), GptPass { groups })
}

/// [`backward`] of a [`forward_split`] pass: each group's backward pass on its own thread
/// from its rows of `d_logits`, the groups' gradients then summed into `grads`.
pub fn backward_split(pass: &GptPass, d_logits: &[f32], grads: &mut GptParams) {
    let vocab = pass.params().vocab();
    backward_per_group(
        &pass.groups,
        |trace| trace.rows * trace.t * vocab,
        d_logits,
        grads,
        || pass.params().zeros_like(),
        backward,
        |grads, part| {
            for (g, p) in grads.tensors_mut().into_iter().zip(part.tensors()) {
                add_par(g, p);
            }
            give_all(&mut part.into_flat());
        },
    );
}

/// Adds to `grads` the gradient of the loss with respect to every parameter, given its
/// gradient `d_logits` (`[rows·t, vocab]`) with respect to the logits of `trace`'s pass.
pub fn backward(trace: &GptTrace, d_logits: &[f32], grads: &mut GptParams) {
    let p = &trace.params;
    let (d, m) = (p.d(), trace.rows * trace.t);
    let mut d_lnf = take(m * d);
    bp::linear_backward(
        &trace.lnf,
        &p.head_w,
        d_logits,
        m,
        &mut grads.head_w,
        Some(&mut grads.head_b),
        Some(&mut d_lnf),
        false,
    );
    // dx: the gradient of the residual stream, carried down through the blocks
    let mut dx = zeroed(m * d);
    bp::layer_norm_backward(
        &trace.last,
        &trace.lnf_stats,
        &p.lnf_g,
        &d_lnf,
        &mut dx,
        &mut grads.lnf_g,
        Some(&mut grads.lnf_b),
    );
    let att_shape = Attention {
        rows: trace.rows,
        t: trace.t,
        q_heads: trace.shape.heads,
        kv_heads: trace.shape.heads,
        dh: d / trace.shape.heads,
    };
    let mut d_ln = take(m * d);
    for ((b, g), bt) in p
        .blocks
        .iter()
        .zip(grads.blocks.iter_mut())
        .zip(&trace.blocks)
        .rev()
    {
        // x' = mid + fc2(gelu(fc1(LN₂ mid)))
        let hidden = b.fc1_b.len();
        let mut d_act = take(m * hidden);
        bp::linear_backward(
            &bt.act,
            &b.fc2_w,
            &dx,
            m,
            &mut g.fc2_w,
            Some(&mut g.fc2_b),
            Some(&mut d_act),
            false,
        );
        bp::gelu_backward(&bt.slope, &mut d_act);
        bp::linear_backward(
            &bt.ln2,
            &b.fc1_w,
            &d_act,
            m,
            &mut g.fc1_w,
            Some(&mut g.fc1_b),
            Some(&mut d_ln),
            false,
        );
        bp::layer_norm_backward(
            &bt.mid,
            &bt.ln2_stats,
            &b.ln2_g,
            &d_ln,
            &mut dx,
            &mut g.ln2_g,
            Some(&mut g.ln2_b),
        );
        // mid = x + proj(attn(qkv(LN₁ x)))
        let mut d_att = take(m * d);
        bp::linear_backward(
            &bt.att,
            &b.proj_w,
            &dx,
            m,
            &mut g.proj_w,
            Some(&mut g.proj_b),
            Some(&mut d_att),
            false,
        );
        let (mut dq, mut dk, mut dv) = (take(m * d), take(m * d), take(m * d));
        let view = |i: usize| Heads {
            data: &bt.qkv,
            offset: i * d,
            stride: 3 * d,
        };
        att_shape.backward(
            view(0),
            view(1),
            view(2),
            &bt.probs,
            &d_att,
            &mut dq,
            &mut dk,
            &mut dv,
        );
        let mut d_qkv = take(m * 3 * d);
        d_qkv
            .par_chunks_mut(3 * d)
            .zip(dq.par_chunks(d).zip(dk.par_chunks(d)).zip(dv.par_chunks(d)))
            .for_each(|(row, ((q, k), v))| {
                row[..d].copy_from_slice(q);
                row[d..2 * d].copy_from_slice(k);
                row[2 * d..].copy_from_slice(v);
            });
        give_all([&mut d_act, &mut d_att, &mut dq, &mut dk, &mut dv]);
        bp::linear_backward(
            &bt.ln1,
            &b.qkv_w,
            &d_qkv,
            m,
            &mut g.qkv_w,
            Some(&mut g.qkv_b),
            Some(&mut d_ln),
            false,
        );
        bp::layer_norm_backward(
            &bt.x,
            &bt.ln1_stats,
            &b.ln1_g,
            &d_ln,
            &mut dx,
            &mut g.ln1_g,
            Some(&mut g.ln1_b),
        );
        give(d_qkv);
    }
    for (i, row) in dx.chunks_exact(d).enumerate() {
        let tok = &mut grads.tok[trace.tokens[i] * d..][..d];
        add(tok, row);
        let pos = &mut grads.pos[trace.positions[i] * d..][..d];
        add(pos, row);
    }
    give_all([&mut d_lnf, &mut dx, &mut d_ln]);
}

impl Drop for BlockTrace {
    fn drop(&mut self) {
        give_all([
            &mut self.x,
            &mut self.ln1,
            &mut self.ln1_stats,
            &mut self.qkv,
            &mut self.probs,
            &mut self.att,
            &mut self.mid,
            &mut self.ln2,
            &mut self.ln2_stats,
            &mut self.slope,
            &mut self.act,
        ]);
    }
}

impl Drop for GptTrace {
    fn drop(&mut self) {
        give_all([&mut self.last, &mut self.lnf, &mut self.lnf_stats]);
    }
}

/// `x += y`.
fn add(x: &mut [f32], y: &[f32]) {
    x.iter_mut().zip(y).for_each(|(a, b)| *a += b);
}

/// `x += y` for whole activations, in parallel blocks.
fn add_par(x: &mut [f32], y: &[f32]) {
    x.par_chunks_mut(1 << 14)
        .zip(y.par_chunks(1 << 14))
        .for_each(|(x, y)| add(x, y));
}
