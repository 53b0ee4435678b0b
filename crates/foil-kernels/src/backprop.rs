//! Forward passes that keep what their backward pass needs, and those backward passes:
//! the pieces of foil's CPU training path (`foil_models::host::train`), where a policy's
//! gradients are computed on the host instead of through burn's autodiff graph.
//!
//! Matrix products go through the `gemm` crate (the one burn's flex backend calls), on
//! rayon's threads for large products; it reads transposed and strided operands in place,
//! so no weight or activation is copied to be transposed. Row-wise operations (norms,
//! activations, attention per batch row and head) split their rows over rayon's threads.
//!
//! Each backward is the derivative of its forward worked by hand; the tests check every
//! one against central finite differences of the forward.

use rayon::prelude::*;

/// Products of at least this many multiply-adds run on rayon's threads.
const PARALLEL_MACS: usize = 1 << 20;

/// A read-only matrix view: element `(i, j)` is `data[i·rs + j·cs]`. A row-major `[r, c]`
/// matrix is `Mat::rows(data, c)`, its transpose `Mat::cols(data, c)`.
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> Mat<'a> {
    /// A row-major matrix whose rows are `width` apart.
    pub fn rows(data: &'a [f32], width: usize) -> Self {
        Self {
            data,
            rs: width,
            cs: 1,
        }
    }

    /// The transpose of the row-major matrix `data` whose rows are `width` apart.
    pub fn cols(data: &'a [f32], width: usize) -> Self {
        Self {
            data,
            rs: 1,
            cs: width,
        }
    }
}

/// `out[m, n] (+)= a[m, k] · b[k, n]`, `out` row-major with rows `out_rs` apart (≥ `n`);
/// with `accumulate` the product is added to what `out` holds.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    out: &mut [f32],
    out_rs: usize,
    accumulate: bool,
    a: Mat,
    b: Mat,
    m: usize,
    k: usize,
    n: usize,
) {
    let threads = m * k * n >= PARALLEL_MACS && !ON_ONE_THREAD.get();
    product(out, out_rs, accumulate, a, b, [m, k, n], threads);
}

thread_local! {
    /// Set by [`on_one_thread`]: this thread's products stay on it.
    static ON_ONE_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with this thread's [`matmul`]s kept on this thread: for work that is already
/// split over rayon's threads at a coarser grain (row groups of a batch), where splitting
/// each product again would only add synchronisation.
pub fn on_one_thread<R>(f: impl FnOnce() -> R) -> R {
    let before = ON_ONE_THREAD.replace(true);
    let out = f();
    ON_ONE_THREAD.set(before);
    out
}

/// [`matmul`] with the threading chosen by the caller (`[m, k, n]`).
fn product(
    out: &mut [f32],
    out_rs: usize,
    accumulate: bool,
    a: Mat,
    b: Mat,
    dims: [usize; 3],
    threads: bool,
) {
    let out = OutRaw {
        ptr: out.as_mut_ptr(),
        len: out.len(),
        rs: out_rs,
    };
    // SAFETY: `out` is borrowed mutably for the whole call, so no one else touches it.
    unsafe { product_raw(out, accumulate, a, b, dims, threads) }
}

/// Where a product writes: the `len` values from `ptr`, its rows `rs` apart.
#[derive(Clone, Copy)]
struct OutRaw {
    ptr: *mut f32,
    len: usize,
    rs: usize,
}

/// [`product`] into a destination that other threads write beside (the attention heads
/// that interleave in one buffer).
///
/// # Safety
/// `out.ptr` is valid for reads and writes of `out.len` values, and while this runs no
/// other thread reads or writes the `m × n` values this product writes (row `r`, column
/// `c` at `r·out.rs + c`).
unsafe fn product_raw(
    out: OutRaw,
    accumulate: bool,
    a: Mat,
    b: Mat,
    [m, k, n]: [usize; 3],
    threads: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        out.rs >= n && out.len > (m - 1) * out.rs + n - 1,
        "out [{m}, {n}]"
    );
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                for c in 0..n {
                    // SAFETY: within `out.len` (asserted above) and ours (the caller's promise)
                    unsafe { *out.ptr.add(r * out.rs + c) = 0.0 };
                }
            }
        }
        return;
    }
    let last = |x: &Mat, r: usize, c: usize| (r - 1) * x.rs + (c - 1) * x.cs;
    assert!(a.data.len() > last(&a, m, k), "a [{m}, {k}]");
    assert!(b.data.len() > last(&b, k, n), "b [{k}, {n}]");
    let par = if threads {
        gemm::Parallelism::Rayon(rayon::current_num_threads())
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: every index the product reads or writes is within the views (asserted
    // above: the largest is the last element of each), and the values it writes are its
    // own (the caller's promise).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.ptr,
            1,
            out.rs as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}

/// `y[m, n] = x[m, k] · w[k, n] + bias`: a linear layer's forward pass.
pub fn linear_forward(x: &[f32], w: &[f32], bias: Option<&[f32]>, m: usize, y: &mut [f32]) {
    let n = y.len() / m.max(1);
    let k = x.len() / m.max(1);
    if let Some(b) = bias {
        for row in y.chunks_exact_mut(n) {
            row.copy_from_slice(b);
        }
    }
    matmul(
        y,
        n,
        bias.is_some(),
        Mat::rows(x, k),
        Mat::rows(w, n),
        m,
        k,
        n,
    );
}

/// A linear layer's backward pass for `y = x·w + b`: `dw += xᵀ·dy`, `db += Σ_rows dy`
/// and, when asked, `dx (+)= dy·wᵀ` (added to `dx` with `accumulate_dx`).
#[allow(clippy::too_many_arguments)]
pub fn linear_backward(
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    m: usize,
    dw: &mut [f32],
    db: Option<&mut [f32]>,
    dx: Option<&mut [f32]>,
    accumulate_dx: bool,
) {
    let n = dy.len() / m.max(1);
    let k = x.len() / m.max(1);
    matmul(dw, n, true, Mat::cols(x, k), Mat::rows(dy, n), k, m, n);
    if let Some(db) = db {
        column_sums(dy, n, db);
    }
    if let Some(dx) = dx {
        matmul(
            dx,
            k,
            accumulate_dx,
            Mat::rows(dy, n),
            Mat::cols(w, n),
            m,
            n,
            k,
        );
    }
}

/// `sums[c] += Σ_r x[r, c]` over the `width`-wide rows of `x`.
pub fn column_sums(x: &[f32], width: usize, sums: &mut [f32]) {
    sum_over_rows(x.len() / width.max(1), sums, |rows, acc| {
        add_rows(&x[rows.start * width..rows.end * width], acc)
    });
}

simd_fn! {
    fn add_rows(x: &[f32], acc: &mut [f32]) {
        for row in x.chunks_exact(acc.len()) {
            for (a, v) in acc.iter_mut().zip(row) {
                *a += v;
            }
        }
    }
}

/// Rows per task of [`sum_over_rows`].
const SUM_ROWS: usize = 256;

/// `out += Σ_blocks f(block)`: `f(rows, acc)` adds the contribution of the rows `rows`
/// (of `m`) into `acc` (zeroed, `out.len()` wide); blocks of 256 rows run on rayon's
/// threads and their partial sums are added up (a sum over the rows of a gradient, e.g.
/// a bias's or a norm's γ).
fn sum_over_rows(m: usize, out: &mut [f32], f: impl Fn(std::ops::Range<usize>, &mut [f32]) + Sync) {
    let width = out.len();
    // partial sums collected in block order and added in that order: the same rounding
    // on every run (rayon's `reduce` would pair them as its work-stealing splits fell)
    let parts: Vec<Vec<f32>> = (0..m.div_ceil(SUM_ROWS))
        .into_par_iter()
        .map(|b| {
            let mut acc = vec![0f32; width];
            f(b * SUM_ROWS..((b + 1) * SUM_ROWS).min(m), &mut acc);
            acc
        })
        .collect();
    for part in parts {
        out.iter_mut().zip(&part).for_each(|(o, p)| *o += p);
    }
}

/// Rows handed to one rayon task by the row-wise kernels.
const ROW_BLOCK: usize = 32;

/// LayerNorm of every `d`-wide row (`d = gamma.len()`): `y = x̂·γ + β` with
/// `x̂ = (x − μ)·ρ`, `ρ = 1/√(σ² + ε)` (biased variance). Keeps `(μ, ρ)` per row in `stats`.
pub fn layer_norm_forward(
    x: &[f32],
    gamma: &[f32],
    beta: Option<&[f32]>,
    eps: f32,
    y: &mut [f32],
    stats: &mut [f32],
) {
    let d = gamma.len();
    y.par_chunks_mut(d * ROW_BLOCK)
        .zip(x.par_chunks(d * ROW_BLOCK))
        .zip(stats.par_chunks_mut(2 * ROW_BLOCK))
        .for_each(|((y, x), stats)| layer_norm_rows(x, gamma, beta, eps, y, stats));
}

simd_fn! {
    fn layer_norm_rows(
        x: &[f32],
        gamma: &[f32],
        beta: Option<&[f32]>,
        eps: f32,
        y: &mut [f32],
        stats: &mut [f32],
    ) {
        let d = gamma.len();
        for ((y, x), s) in y
            .chunks_exact_mut(d)
            .zip(x.chunks_exact(d))
            .zip(stats.chunks_exact_mut(2))
        {
            let mean = sum(x) / d as f32;
            let var = x.iter().map(|v| (v - mean) * (v - mean)).fold(0.0, |a, b| a + b) / d as f32;
            let rho = 1.0 / (var + eps).sqrt();
            match beta {
                Some(b) => {
                    for i in 0..d {
                        y[i] = (x[i] - mean) * rho * gamma[i] + b[i];
                    }
                }
                None => {
                    for i in 0..d {
                        y[i] = (x[i] - mean) * rho * gamma[i];
                    }
                }
            }
            s[0] = mean;
            s[1] = rho;
        }
    }
}

/// `Σ x` in eight lanes (so that it vectorises).
#[inline(always)]
fn sum(x: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let c = x.chunks_exact(8);
    let tail: f32 = c.remainder().iter().sum();
    for c in c {
        for l in 0..8 {
            lanes[l] += c[l];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// LayerNorm's backward pass: with `g = dy·γ`,
/// `dx += ρ·(g − mean(g) − x̂·mean(g·x̂))`, `dγ += Σ_rows dy·x̂`, `dβ += Σ_rows dy`.
#[allow(clippy::too_many_arguments)]
pub fn layer_norm_backward(
    x: &[f32],
    stats: &[f32],
    gamma: &[f32],
    dy: &[f32],
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: Option<&mut [f32]>,
) {
    let d = gamma.len();
    dx.par_chunks_mut(d * ROW_BLOCK)
        .zip(x.par_chunks(d * ROW_BLOCK))
        .zip(dy.par_chunks(d * ROW_BLOCK))
        .zip(stats.par_chunks(2 * ROW_BLOCK))
        .for_each(|(((dx, x), dy), stats)| layer_norm_grad_rows(x, stats, gamma, dy, dx));
    sum_over_rows(x.len() / d, dgamma, |rows, acc| {
        let (a, b) = (rows.start, rows.end);
        layer_norm_param_grads(
            &x[a * d..b * d],
            &stats[2 * a..2 * b],
            &dy[a * d..b * d],
            acc,
        )
    });
    if let Some(db) = dbeta {
        column_sums(dy, d, db);
    }
}

simd_fn! {
    fn layer_norm_grad_rows(x: &[f32], stats: &[f32], gamma: &[f32], dy: &[f32], dx: &mut [f32]) {
        let d = gamma.len();
        for (((dx, x), dy), s) in dx
            .chunks_exact_mut(d)
            .zip(x.chunks_exact(d))
            .zip(dy.chunks_exact(d))
            .zip(stats.chunks_exact(2))
        {
            let (mean, rho) = (s[0], s[1]);
            let (mut g_mean, mut gx_mean) = ([0f32; 8], [0f32; 8]);
            for i in 0..d {
                let g = dy[i] * gamma[i];
                g_mean[i % 8] += g;
                gx_mean[i % 8] += g * (x[i] - mean) * rho;
            }
            let g_mean = g_mean.iter().sum::<f32>() / d as f32;
            let gx_mean = gx_mean.iter().sum::<f32>() / d as f32;
            for i in 0..d {
                let xhat = (x[i] - mean) * rho;
                dx[i] += rho * (dy[i] * gamma[i] - g_mean - xhat * gx_mean);
            }
        }
    }
}

simd_fn! {
    fn layer_norm_param_grads(x: &[f32], stats: &[f32], dy: &[f32], dgamma: &mut [f32]) {
        let d = dgamma.len();
        for ((x, dy), s) in x.chunks_exact(d).zip(dy.chunks_exact(d)).zip(stats.chunks_exact(2)) {
            for i in 0..d {
                dgamma[i] += dy[i] * (x[i] - s[0]) * s[1];
            }
        }
    }
}

/// RMSNorm of every `d`-wide row: `y = x·ρ·γ`, `ρ = 1/√(mean(x²) + ε)`; keeps `ρ` per row.
pub fn rms_norm_forward(x: &[f32], gamma: &[f32], eps: f32, y: &mut [f32], rho: &mut [f32]) {
    let d = gamma.len();
    y.par_chunks_mut(d * ROW_BLOCK)
        .zip(x.par_chunks(d * ROW_BLOCK))
        .zip(rho.par_chunks_mut(ROW_BLOCK))
        .for_each(|((y, x), rho)| rms_norm_rows(x, gamma, eps, y, rho));
}

simd_fn! {
    fn rms_norm_rows(x: &[f32], gamma: &[f32], eps: f32, y: &mut [f32], rho: &mut [f32]) {
        let d = gamma.len();
        for ((y, x), r) in y.chunks_exact_mut(d).zip(x.chunks_exact(d)).zip(rho) {
            *r = 1.0 / (crate::dot(x, x) / d as f32 + eps).sqrt();
            for i in 0..d {
                y[i] = x[i] * *r * gamma[i];
            }
        }
    }
}

/// RMSNorm's backward pass: with `g = dy·γ`, `dx += ρ·g − x·ρ³·mean(g·x)`,
/// `dγ += Σ_rows dy·x·ρ`.
pub fn rms_norm_backward(
    x: &[f32],
    rho: &[f32],
    gamma: &[f32],
    dy: &[f32],
    dx: &mut [f32],
    dgamma: &mut [f32],
) {
    let d = gamma.len();
    dx.par_chunks_mut(d * ROW_BLOCK)
        .zip(x.par_chunks(d * ROW_BLOCK))
        .zip(dy.par_chunks(d * ROW_BLOCK))
        .zip(rho.par_chunks(ROW_BLOCK))
        .for_each(|(((dx, x), dy), rho)| rms_norm_grad_rows(x, rho, gamma, dy, dx));
    sum_over_rows(x.len() / d, dgamma, |rows, acc| {
        let (a, b) = (rows.start, rows.end);
        rms_norm_param_grads(&x[a * d..b * d], &rho[a..b], &dy[a * d..b * d], acc)
    });
}

simd_fn! {
    fn rms_norm_grad_rows(x: &[f32], rho: &[f32], gamma: &[f32], dy: &[f32], dx: &mut [f32]) {
        let d = gamma.len();
        for (((dx, x), dy), &r) in dx
            .chunks_exact_mut(d)
            .zip(x.chunks_exact(d))
            .zip(dy.chunks_exact(d))
            .zip(rho)
        {
            let mut gx = [0f32; 8];
            for i in 0..d {
                gx[i % 8] += dy[i] * gamma[i] * x[i];
            }
            let gx = gx.iter().sum::<f32>() / d as f32;
            for i in 0..d {
                dx[i] += r * dy[i] * gamma[i] - x[i] * r * r * r * gx;
            }
        }
    }
}

simd_fn! {
    fn rms_norm_param_grads(x: &[f32], rho: &[f32], dy: &[f32], dgamma: &mut [f32]) {
        let d = dgamma.len();
        for ((x, dy), &r) in x.chunks_exact(d).zip(dy.chunks_exact(d)).zip(rho) {
            for i in 0..d {
                dgamma[i] += dy[i] * x[i] * r;
            }
        }
    }
}

/// Elements per rayon task of the element-wise kernels.
const BLOCK: usize = 1 << 14;

/// Rows of `width` values in one element-wise task: about [`BLOCK`] values, at least a row.
fn block_rows(width: usize) -> usize {
    (BLOCK / width.max(1)).max(1) * width.max(1)
}

/// Checks that `what`'s two buffers have `a` and `b` values, the same number of whole rows
/// of the bias's `width` (so that every task's bias indices line up).
fn check_bias_rows(what: &str, a: usize, b: usize, width: usize) {
    assert!(
        width > 0 && a == b && a.is_multiple_of(width),
        "{what}: buffers of {a} and {b} values in rows of the bias's {width}"
    );
}

/// A linear layer's bias and exact GELU after it, in one pass over its output `pre`
/// (written by [`linear_forward`] without a bias): `h = pre + b` per row,
/// `act = GELU(h) = h·Φ(h)`, and `pre ← GELU′(h) = Φ(h) + h·φ(h)`, the slope
/// [`gelu_backward`] multiplies by. `Φ(h) = ½(1 + erf(h/√2))`, `φ(h) = e^(−h²/2)/√(2π)`;
/// one exponential serves both (it is erf's `e^(−z²)` at `z = h/√2`).
///
/// Why fused: at a train step's size (`[2048, 1024]` per layer) a separate bias fill, GELU
/// and GELU backward each stream 8 MB through memory, and the backward's erf was bound by
/// arithmetic; the slope is computed here while `h` is in registers.
pub fn bias_gelu_forward(pre: &mut [f32], bias: &[f32], act: &mut [f32]) {
    check_bias_rows("bias_gelu_forward", pre.len(), act.len(), bias.len());
    let rows = block_rows(bias.len());
    pre.par_chunks_mut(rows)
        .zip(act.par_chunks_mut(rows))
        .for_each(|(pre, act)| bias_gelu_block(pre, bias, act));
}

simd_fn! {
    wide fn bias_gelu_block(pre: &mut [f32], bias: &[f32], act: &mut [f32]) {
        const INV_SQRT_2PI: f32 = 0.398_942_3;
        for (pre, act) in pre.chunks_exact_mut(bias.len()).zip(act.chunks_exact_mut(bias.len())) {
            for ((p, a), &b) in pre.iter_mut().zip(act.iter_mut()).zip(bias) {
                let h = *p + b;
                let e = crate::exp(-0.5 * h * h);
                let cdf = 0.5 * (1.0 + crate::erf_with(h * std::f32::consts::FRAC_1_SQRT_2, e));
                *a = h * cdf;
                *p = cdf + h * INV_SQRT_2PI * e;
            }
        }
    }
}

/// GELU's backward pass, in place: `dy ← dy·GELU′(h)`, with the slopes `GELU′(h)` that
/// [`bias_gelu_forward`] left.
pub fn gelu_backward(slope: &[f32], dy: &mut [f32]) {
    dy.par_chunks_mut(BLOCK)
        .zip(slope.par_chunks(BLOCK))
        .for_each(|(dy, s)| mul_into(s, dy));
}

simd_fn! {
    fn mul_into(x: &[f32], y: &mut [f32]) {
        for (y, x) in y.iter_mut().zip(x) {
            *y *= x;
        }
    }
}

/// A residual connection with the bias of the layer before it: `y ← y + x + b` per row
/// (`y` written by [`linear_forward`] without a bias), in parallel blocks.
pub fn add_residual_bias(y: &mut [f32], x: &[f32], bias: &[f32]) {
    check_bias_rows("add_residual_bias", y.len(), x.len(), bias.len());
    let rows = block_rows(bias.len());
    y.par_chunks_mut(rows)
        .zip(x.par_chunks(rows))
        .for_each(|(y, x)| add_residual_bias_block(y, x, bias));
}

simd_fn! {
    fn add_residual_bias_block(y: &mut [f32], x: &[f32], bias: &[f32]) {
        for (y, x) in y.chunks_exact_mut(bias.len()).zip(x.chunks_exact(bias.len())) {
            for ((y, x), b) in y.iter_mut().zip(x).zip(bias) {
                *y += x + b;
            }
        }
    }
}

/// `silu(gate)·up` into `y` (SwiGLU's product), in parallel blocks.
pub fn swiglu_forward(gate: &[f32], up: &[f32], y: &mut [f32]) {
    y.par_chunks_mut(BLOCK)
        .zip(gate.par_chunks(BLOCK).zip(up.par_chunks(BLOCK)))
        .for_each(|(y, (g, u))| swiglu_block(g, u, y));
}

simd_fn! {
    fn swiglu_block(gate: &[f32], up: &[f32], y: &mut [f32]) {
        for ((y, &g), &u) in y.iter_mut().zip(gate).zip(up) {
            *y = g / (1.0 + crate::exp(-g)) * u;
        }
    }
}

/// SwiGLU's backward pass for `y = silu(g)·u`, `silu(g) = g·σ(g)`:
/// `du = dy·silu(g)`, `dg = dy·u·σ(g)·(1 + g·(1 − σ(g)))`. Writes `dg` over `gate`'s
/// gradient buffer `d_gate` and `du` over `d_up`.
pub fn swiglu_backward(gate: &[f32], up: &[f32], dy: &[f32], d_gate: &mut [f32], d_up: &mut [f32]) {
    d_gate
        .par_chunks_mut(BLOCK)
        .zip(d_up.par_chunks_mut(BLOCK))
        .zip(
            gate.par_chunks(BLOCK)
                .zip(up.par_chunks(BLOCK))
                .zip(dy.par_chunks(BLOCK)),
        )
        .for_each(|((dg, du), ((g, u), dy))| swiglu_grad_block(g, u, dy, dg, du));
}

simd_fn! {
    fn swiglu_grad_block(g: &[f32], u: &[f32], dy: &[f32], dg: &mut [f32], du: &mut [f32]) {
        for i in 0..dg.len() {
            let s = 1.0 / (1.0 + crate::exp(-g[i]));
            du[i] = dy[i] * g[i] * s;
            dg[i] = dy[i] * u[i] * s * (1.0 + g[i] * (1.0 - s));
        }
    }
}

simd_fn! {
    /// `log softmax(logits)[target]` of one row: `logits[target] − max − ln Σ exp(l − max)`
    /// (max and sum kept in 8 lanes, so that they vectorise; `crate::exp`).
    pub fn log_softmax_at(logits: &[f32], target: usize) -> f32 {
        let mut max = [f32::NEG_INFINITY; 8];
        for (i, &l) in logits.iter().enumerate() {
            max[i % 8] = max[i % 8].max(l);
        }
        let max = max.iter().fold(f32::NEG_INFINITY, |m, &l| m.max(l));
        let mut sum = [0f32; 8];
        for (i, &l) in logits.iter().enumerate() {
            sum[i % 8] += crate::exp(l - max);
        }
        logits[target] - max - sum.iter().sum::<f32>().ln()
    }
}

/// `log softmax(logits[r, j])[targets[r, j]]` for the first `t − 1` columns of each of
/// `rows` rows: `logits` is `[rows·t, vocab]`, `targets` and the result `[rows, t − 1]`.
pub fn token_logprobs(logits: &[f32], targets: &[usize], rows: usize, t: usize) -> Vec<f32> {
    let vocab = logits.len() / (rows * t).max(1);
    let mut out = vec![0f32; rows * (t - 1)];
    out.par_chunks_mut(t - 1).enumerate().for_each(|(r, out)| {
        for (j, o) in out.iter_mut().enumerate() {
            let row = &logits[(r * t + j) * vocab..][..vocab];
            *o = log_softmax_at(row, targets[r * (t - 1) + j]);
        }
    });
    out
}

/// The backward pass of [`token_logprobs`]: with `g = ∂loss/∂logp[r, j]` (`d_lp`),
/// `∂loss/∂logits[r, j, v] = g·(1[v = target] − softmax(logits[r, j])[v])`, and 0 for
/// each row's last column. Returns `[rows·t, vocab]`.
pub fn token_logprobs_backward(
    logits: &[f32],
    targets: &[usize],
    d_lp: &[f32],
    t: usize,
) -> Vec<f32> {
    let rows = d_lp.len() / (t - 1).max(1);
    let vocab = logits.len() / (rows * t).max(1);
    let mut d = crate::pool::zeroed(logits.len());
    d.par_chunks_mut(t * vocab).enumerate().for_each(|(r, d)| {
        for j in 0..t - 1 {
            let g = d_lp[r * (t - 1) + j];
            let row = &logits[(r * t + j) * vocab..][..vocab];
            let out = &mut d[j * vocab..(j + 1) * vocab];
            softmax_grad_row(row, targets[r * (t - 1) + j], g, out);
        }
    });
    d
}

simd_fn! {
    fn softmax_grad_row(row: &[f32], target: usize, g: f32, out: &mut [f32]) {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &l| m.max(l));
        let mut sum = [0f32; 8];
        for (i, (o, &l)) in out.iter_mut().zip(row).enumerate() {
            *o = crate::exp(l - max);
            sum[i % 8] += *o;
        }
        let scale = -g / sum.iter().sum::<f32>();
        for o in out.iter_mut() {
            *o *= scale;
        }
        out[target] += g;
    }
}

/// Where one projection's heads live in a buffer of `rows · t` token rows: head `h` of
/// token row `i` is `data[i·stride + offset + h·dh ..][..dh]`. A fused `[q | k | v]`
/// projection is three views of one buffer.
#[derive(Clone, Copy)]
pub struct Heads<'a> {
    pub data: &'a [f32],
    pub offset: usize,
    pub stride: usize,
}

/// Shape of a batch of causal self-attention: `rows` sequences of `t` tokens, `q_heads`
/// query heads sharing `kv_heads` key/value heads (grouped-query attention when fewer),
/// head width `dh`, scores scaled by `1/√dh`.
#[derive(Clone, Copy, Debug)]
pub struct Attention {
    pub rows: usize,
    pub t: usize,
    pub q_heads: usize,
    pub kv_heads: usize,
    pub dh: usize,
}

/// A buffer shared by tasks that write disjoint parts of it (attention heads interleave
/// in their rows), as a pointer and a length: no task holds a `&mut` to it.
#[derive(Clone, Copy)]
struct Shared {
    ptr: *mut f32,
    len: usize,
}
// SAFETY: only the attention kernels below make one, and their tasks write disjoint parts.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    fn new(buf: &mut [f32]) -> Self {
        Self {
            ptr: buf.as_mut_ptr(),
            len: buf.len(),
        }
    }

    /// The part from value `at` on, its rows `rs` apart (a method, so that closures
    /// capture the whole `Shared`).
    fn from(self, at: usize, rs: usize) -> OutRaw {
        assert!(at < self.len, "offset {at} in a buffer of {}", self.len);
        OutRaw {
            ptr: self.ptr.wrapping_add(at),
            len: self.len - at,
            rs,
        }
    }
}

/// Row `i` of the attention probabilities from its raw scores `row` (`q·kⱼ`):
/// `softmax(scale·q·kⱼ + key_biasⱼ)` over the keys `j ≤ i`, and 0 for the later keys.
///
/// The burn path adds `−1e9` for every later key instead (`foil_models::trainable::
/// causal_bias`), which gives them a weight of exactly 0 too whenever the query has a real
/// key at or before it. A query with none (a left-padding column) gets uniform weights over
/// its masked keys either way; its output is never read by a real token, and the loss masks
/// it, so it has no gradient.
fn causal_softmax(row: &mut [f32], i: usize, key_bias: &[f32], scale: f32) {
    #[cfg(target_arch = "x86_64")]
    if crate::avx2() {
        // SAFETY: the CPU supports AVX2 and FMA (checked just above).
        return unsafe { causal_softmax_fma(row, i, key_bias, scale) };
    }
    causal_softmax_body(row, i, key_bias, scale)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn causal_softmax_fma(row: &mut [f32], i: usize, key_bias: &[f32], scale: f32) {
    causal_softmax_body(row, i, key_bias, scale)
}

#[inline(always)]
fn causal_softmax_body(row: &mut [f32], i: usize, key_bias: &[f32], scale: f32) {
    let (live, later) = row.split_at_mut(i + 1);
    for (s, b) in live.iter_mut().zip(&key_bias[..=i]) {
        *s = *s * scale + b;
    }
    let inv = crate::softmax_unnormalised(live);
    for s in live.iter_mut() {
        *s *= inv;
    }
    later.fill(0.0);
}

impl Attention {
    fn group(&self) -> usize {
        self.q_heads / self.kv_heads
    }

    /// Length of the probabilities buffer: `rows · q_heads · t · t`.
    pub fn probs_len(&self) -> usize {
        self.rows * self.q_heads * self.t * self.t
    }

    /// `P = softmax(Q·Kᵀ/√dh + M)` per row and head into `probs`
    /// (`[rows, q_heads, t, t]`) and `out = P·V` (`[rows·t, q_heads·dh]`); `M` is the
    /// causal + padding mask of `valid` (`[rows·t]`, true for real tokens).
    pub fn forward(
        &self,
        q: Heads,
        k: Heads,
        v: Heads,
        valid: &[bool],
        probs: &mut [f32],
        out: &mut [f32],
    ) {
        let (t, dh, hq) = (self.t, self.dh, self.q_heads);
        let width = hq * dh;
        assert!(probs.len() == self.probs_len() && out.len() == self.rows * t * width);
        assert!(self.kv_heads > 0 && hq.is_multiple_of(self.kv_heads));
        assert_eq!(valid.len(), self.rows * t);
        self.check(&[q], hq);
        self.check(&[k, v], self.kv_heads);
        let scale = 1.0 / (dh as f32).sqrt();
        let out_buf = Shared::new(out);
        probs
            .par_chunks_mut(t * t)
            .enumerate()
            .for_each(|(task, p)| {
                let (r, h) = (task / hq, task % hq);
                let g = h / self.group();
                let base = r * t;
                let qm = self.head(q, base, h);
                let km = self.head(k, base, g);
                product(
                    p,
                    t,
                    false,
                    qm,
                    Mat::cols(km.data, km.rs),
                    [t, dh, t],
                    false,
                );
                let key_bias: Vec<f32> = valid[base..base + t]
                    .iter()
                    .map(|&real| if real { 0.0 } else { -1e9 })
                    .collect();
                for i in 0..t {
                    causal_softmax(&mut p[i * t..(i + 1) * t], i, &key_bias, scale);
                }
                let vm = self.head(v, base, g);
                let o = out_buf.from(base * width + h * dh, width);
                // SAFETY: this task writes only rows base..base+t, columns h·dh..(h+1)·dh
                // of `out`, which no other task writes; `out` outlives the tasks.
                unsafe { product_raw(o, false, Mat::rows(p, t), vm, [t, t, dh], false) };
            });
    }

    /// The backward pass of [`Attention::forward`] from `d_out` (`[rows·t, q_heads·dh]`):
    /// with `dP = dO·Vᵀ` and `dS = P ⊙ (dP − rowsum(P ⊙ dP))`,
    /// `dQ = dS·K/√dh`, `dK = Σ_heads dSᵀ·Q/√dh`, `dV = Σ_heads Pᵀ·dO` (the sums over the
    /// query heads that share a key/value head). `dq` is `[rows·t, q_heads·dh]`, `dk` and
    /// `dv` `[rows·t, kv_heads·dh]`, all overwritten.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        q: Heads,
        k: Heads,
        v: Heads,
        probs: &[f32],
        d_out: &[f32],
        dq: &mut [f32],
        dk: &mut [f32],
        dv: &mut [f32],
    ) {
        let (t, dh, hq, hk) = (self.t, self.dh, self.q_heads, self.kv_heads);
        let (qw, kw) = (hq * dh, hk * dh);
        let m = self.rows * t;
        assert!(probs.len() == self.probs_len() && d_out.len() == m * qw);
        assert!(dq.len() == m * qw && dk.len() == m * kw && dv.len() == m * kw);
        self.check(&[q], hq);
        self.check(&[k, v], hk);
        let scale = 1.0 / (dh as f32).sqrt();
        let (dq_buf, dk_buf, dv_buf) = (Shared::new(dq), Shared::new(dk), Shared::new(dv));
        (0..self.rows * hk).into_par_iter().for_each(|task| {
            let (r, g) = (task / hk, task % hk);
            let base = r * t;
            let (km, vm) = (self.head(k, base, g), self.head(v, base, g));
            // this task writes rows base..base+t of dk/dv at columns g·dh..(g+1)·dh, and of
            // dq at the columns of the query heads of group g; no other task writes there
            let dk_g = dk_buf.from(base * kw + g * dh, kw);
            let dv_g = dv_buf.from(base * kw + g * dh, kw);
            let mut ds = vec![0f32; t * t];
            for (n, h) in (g * self.group()..(g + 1) * self.group()).enumerate() {
                let p = &probs[(r * hq + h) * t * t..][..t * t];
                let d_o = Mat {
                    data: &d_out[base * qw + h * dh..],
                    rs: qw,
                    cs: 1,
                };
                // dV += Pᵀ·dO
                // SAFETY (here and below): the parts written are this task's (see above)
                unsafe { product_raw(dv_g, n > 0, Mat::cols(p, t), d_o, [t, t, dh], false) };
                // dP = dO·Vᵀ, then dS in place
                product(
                    &mut ds,
                    t,
                    false,
                    d_o,
                    Mat::cols(vm.data, vm.rs),
                    [t, dh, t],
                    false,
                );
                for i in 0..t {
                    let (pr, dr) = (&p[i * t..(i + 1) * t], &mut ds[i * t..(i + 1) * t]);
                    let dot = crate::dot(pr, dr);
                    for (d, &pv) in dr.iter_mut().zip(pr) {
                        *d = pv * (*d - dot) * scale;
                    }
                }
                let qm = self.head(q, base, h);
                // dK += dSᵀ·Q (scale folded into dS)
                unsafe { product_raw(dk_g, n > 0, Mat::cols(&ds, t), qm, [t, t, dh], false) };
                // dQ = dS·K
                let dq_h = dq_buf.from(base * qw + h * dh, qw);
                unsafe { product_raw(dq_h, false, Mat::rows(&ds, t), km, [t, t, dh], false) };
            }
        });
    }

    /// Head `h` of the `t` token rows from `base` as a `[t, dh]` view.
    fn head<'a>(&self, x: Heads<'a>, base: usize, h: usize) -> Mat<'a> {
        Mat {
            data: &x.data[base * x.stride + x.offset + h * self.dh..],
            rs: x.stride,
            cs: 1,
        }
    }

    fn check(&self, views: &[Heads], heads: usize) {
        for x in views {
            assert!(
                x.offset + heads * self.dh <= x.stride
                    && x.data.len()
                        >= (self.rows * self.t - 1) * x.stride + x.offset + heads * self.dh,
                "a view of {heads} heads of {} over {} token rows",
                self.dh,
                self.rows * self.t
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 7 + seed * 13) % 23) as f32 - 11.0) / 9.0)
            .collect()
    }

    /// `Σ w·f(x)` and its numerical gradient in `x` by central differences.
    fn numeric_grad(x: &[f32], w: &[f32], f: impl Fn(&[f32]) -> Vec<f32>) -> Vec<f32> {
        let h = 1e-2f32;
        (0..x.len())
            .map(|i| {
                let mut a = x.to_vec();
                a[i] += h;
                let up: f64 = f(&a).iter().zip(w).map(|(y, w)| (*y * w) as f64).sum();
                a[i] -= 2.0 * h;
                let down: f64 = f(&a).iter().zip(w).map(|(y, w)| (*y * w) as f64).sum();
                ((up - down) / (2.0 * h as f64)) as f32
            })
            .collect()
    }

    fn close(a: &[f32], b: &[f32], tol: f32, what: &str) {
        assert_eq!(a.len(), b.len(), "{what}");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= tol * (1.0 + y.abs()),
                "{what}[{i}]: {x} vs {y}"
            );
        }
    }

    /// [[1, 2], [3, 4]] · [[5, 6], [7, 8]] = [[1·5 + 2·7, 1·6 + 2·8], [3·5 + 4·7, 3·6 + 4·8]]
    /// = [[19, 22], [43, 50]]; transposed views and accumulation on top.
    #[test]
    fn matmul_reads_transposed_views_and_accumulates() {
        let a = [1.0, 2.0, 3.0, 4.0];
        let b = [5.0, 6.0, 7.0, 8.0];
        let mut out = [0f32; 4];
        matmul(
            &mut out,
            2,
            false,
            Mat::rows(&a, 2),
            Mat::rows(&b, 2),
            2,
            2,
            2,
        );
        assert_eq!(out, [19.0, 22.0, 43.0, 50.0]);
        // aᵀ·b = [[1·5 + 3·7, 1·6 + 3·8], [2·5 + 4·7, 2·6 + 4·8]] = [[26, 30], [38, 44]],
        // added to what is there
        matmul(
            &mut out,
            2,
            true,
            Mat::cols(&a, 2),
            Mat::rows(&b, 2),
            2,
            2,
            2,
        );
        assert_eq!(out, [45.0, 52.0, 81.0, 94.0]);
        // a·bᵀ = [[1·5 + 2·6, 1·7 + 2·8], [3·5 + 4·6, 3·7 + 4·8]] = [[17, 23], [39, 53]]
        matmul(
            &mut out,
            2,
            false,
            Mat::rows(&a, 2),
            Mat::cols(&b, 2),
            2,
            2,
            2,
        );
        assert_eq!(out, [17.0, 23.0, 39.0, 53.0]);
    }

    #[test]
    fn linear_backward_matches_finite_differences() {
        let (m, k, n) = (5, 4, 3);
        let (x, w, b, wt) = (
            values(m * k, 1),
            values(k * n, 2),
            values(n, 3),
            values(m * n, 4),
        );
        let f = |x: &[f32], w: &[f32], b: &[f32]| {
            let mut y = vec![0f32; m * n];
            linear_forward(x, w, Some(b), m, &mut y);
            y
        };
        let (mut dw, mut db, mut dx) = (vec![0f32; k * n], vec![0f32; n], vec![0f32; m * k]);
        linear_backward(&x, &w, &wt, m, &mut dw, Some(&mut db), Some(&mut dx), false);
        close(&dx, &numeric_grad(&x, &wt, |x| f(x, &w, &b)), 1e-3, "dx");
        close(&dw, &numeric_grad(&w, &wt, |w| f(&x, w, &b)), 1e-3, "dw");
        close(&db, &numeric_grad(&b, &wt, |b| f(&x, &w, b)), 1e-3, "db");
    }

    #[test]
    fn norm_backwards_match_finite_differences() {
        let (m, d) = (3, 8);
        let (x, g, beta, wt) = (
            values(m * d, 5),
            values(d, 6),
            values(d, 7),
            values(m * d, 8),
        );
        let ln = |x: &[f32], g: &[f32], b: &[f32]| {
            let (mut y, mut s) = (vec![0f32; m * d], vec![0f32; 2 * m]);
            layer_norm_forward(x, g, Some(b), 1e-5, &mut y, &mut s);
            y
        };
        let mut s = vec![0f32; 2 * m];
        layer_norm_forward(&x, &g, Some(&beta), 1e-5, &mut vec![0f32; m * d], &mut s);
        let (mut dx, mut dg, mut db) = (vec![0.5f32; m * d], vec![0f32; d], vec![0f32; d]);
        layer_norm_backward(&x, &s, &g, &wt, &mut dx, &mut dg, Some(&mut db));
        // dx was 0.5 before: the backward adds to it
        let dx: Vec<f32> = dx.iter().map(|v| v - 0.5).collect();
        close(
            &dx,
            &numeric_grad(&x, &wt, |x| ln(x, &g, &beta)),
            2e-3,
            "ln dx",
        );
        close(
            &dg,
            &numeric_grad(&g, &wt, |g| ln(&x, g, &beta)),
            2e-3,
            "ln dγ",
        );
        close(
            &db,
            &numeric_grad(&beta, &wt, |b| ln(&x, &g, b)),
            2e-3,
            "ln dβ",
        );

        let rms = |x: &[f32], g: &[f32]| {
            let (mut y, mut r) = (vec![0f32; m * d], vec![0f32; m]);
            rms_norm_forward(x, g, 1e-6, &mut y, &mut r);
            y
        };
        let mut r = vec![0f32; m];
        rms_norm_forward(&x, &g, 1e-6, &mut vec![0f32; m * d], &mut r);
        let (mut dx, mut dg) = (vec![0f32; m * d], vec![0f32; d]);
        rms_norm_backward(&x, &r, &g, &wt, &mut dx, &mut dg);
        close(&dx, &numeric_grad(&x, &wt, |x| rms(x, &g)), 2e-3, "rms dx");
        close(&dg, &numeric_grad(&g, &wt, |g| rms(&x, g)), 2e-3, "rms dγ");
    }

    #[test]
    fn activation_backwards_match_finite_differences() {
        let (x, u, wt) = (values(40, 9), values(40, 10), values(40, 11));
        // GELU of x + b (b one value per column of 8-wide rows): the bias's gradient is x's
        let b = values(8, 12);
        let gelu = |x: &[f32]| {
            let (mut pre, mut act) = (x.to_vec(), vec![0f32; x.len()]);
            bias_gelu_forward(&mut pre, &b, &mut act);
            act
        };
        let (mut slope, mut act) = (x.clone(), vec![0f32; 40]);
        bias_gelu_forward(&mut slope, &b, &mut act);
        let mut dx = wt.clone();
        gelu_backward(&slope, &mut dx);
        close(&dx, &numeric_grad(&x, &wt, gelu), 2e-3, "gelu");
        let swiglu = |g: &[f32], u: &[f32]| {
            let mut y = vec![0f32; g.len()];
            swiglu_forward(g, u, &mut y);
            y
        };
        let (mut dg, mut du) = (vec![0f32; 40], vec![0f32; 40]);
        swiglu_backward(&x, &u, &wt, &mut dg, &mut du);
        close(
            &dg,
            &numeric_grad(&x, &wt, |g| swiglu(g, &u)),
            2e-3,
            "swiglu dgate",
        );
        close(
            &du,
            &numeric_grad(&u, &wt, |u| swiglu(&x, u)),
            2e-3,
            "swiglu dup",
        );
    }

    /// From tables of the normal distribution: Φ(0.5) = 0.6914624613, Φ(1) =
    /// 0.8413447461, Φ(2) = 0.9772498681; φ(0.5) = 0.3520653268, φ(1) = 0.2419707245,
    /// φ(2) = 0.0539909665. GELU(x) = x·Φ(x), GELU′(x) = Φ(x) + x·φ(x):
    /// GELU(1) = 0.8413447, GELU(−0.5) = −0.5·(1 − 0.6914625) = −0.1542688,
    /// GELU(2) = 1.9544997; GELU′(1) = 0.8413447 + 0.2419707 = 1.0833155,
    /// GELU′(−0.5) = 0.3085375 − 0.5·0.3520653 = 0.1325049,
    /// GELU′(2) = 0.9772499 + 2·0.0539910 = 1.0852318, GELU′(0) = ½.
    /// 37 copies (148 values), in rows of 37 for the bias, so that the 16- and 8-wide
    /// bodies and their remainders all run, in place and in the fused pass.
    #[test]
    fn gelu_and_its_derivative_match_the_normal_tables() {
        let table = [
            (1.0f32, 0.841_344_7f32, 1.083_315_5f32),
            (-0.5, -0.154_268_8, 0.132_504_9),
            (2.0, 1.954_499_7, 1.085_231_8),
            (0.0, 0.0, 0.5),
        ];
        // rows of 37: the bias 0.25 is taken off the inputs, so that x + b is the table's x
        let bias = [0.25f32; 37];
        let x: Vec<f32> = (0..37).flat_map(|_| table.map(|t| t.0)).collect();
        let mut pre: Vec<f32> = x.iter().map(|v| v - 0.25).collect();
        let mut y = vec![0f32; x.len()];
        bias_gelu_forward(&mut pre, &bias, &mut y);
        let mut in_place = x.clone();
        crate::gelu(&mut in_place);
        let mut dy = vec![2f32; x.len()];
        gelu_backward(&pre, &mut dy);
        for (i, &(v, want_y, want_dy)) in table.iter().cycle().take(x.len()).enumerate() {
            assert!((y[i] - want_y).abs() < 1e-6, "GELU({v}) = {}", y[i]);
            assert!((in_place[i] - want_y).abs() < 1e-6, "in-place GELU({v})");
            assert!((pre[i] - want_dy).abs() < 1e-6, "GELU′({v}) = {}", pre[i]);
            assert!(
                (dy[i] - 2.0 * want_dy).abs() < 2e-6,
                "2·GELU′({v}) = {}",
                dy[i]
            );
        }
    }

    /// Rows of 3: y = [1, 2, 3 | 4, 5, 6], x = [10, 20, 30 | 40, 50, 60], b = [0.5, 0, −1]:
    /// y + x + b = [11.5, 22, 32 | 44.5, 55, 65].
    #[test]
    fn add_residual_bias_adds_the_bias_to_every_row() {
        let mut y = vec![1f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let x = [10f32, 20.0, 30.0, 40.0, 50.0, 60.0];
        add_residual_bias(&mut y, &x, &[0.5, 0.0, -1.0]);
        assert_eq!(y, [11.5, 22.0, 32.0, 44.5, 55.0, 65.0]);
    }

    /// logits [0, ln 2, ln 5]: softmax = [1, 2, 5]/8, so log p[1] = ln(2/8) = −1.386294.
    #[test]
    fn log_softmax_at_matches_hand_arithmetic() {
        let row = [0.0, 2f32.ln(), 5f32.ln()];
        assert!((log_softmax_at(&row, 1) - (-1.386_294)).abs() < 1e-6);
        assert!((log_softmax_at(&row, 2) - (5f32 / 8.0).ln()).abs() < 1e-6);
    }

    /// Two rows of t = 3 over a vocabulary of 3: log-probs against `log_softmax_at`, and
    /// the backward pass against finite differences of `Σ w·logp`.
    #[test]
    fn token_logprobs_backward_matches_finite_differences() {
        let (rows, t, vocab) = (2, 3, 3);
        let logits = values(rows * t * vocab, 16);
        let targets = [2, 0, 1, 1];
        let lp = token_logprobs(&logits, &targets, rows, t);
        assert_eq!(lp[1], log_softmax_at(&logits[3..6], 0));
        assert_eq!(lp[2], log_softmax_at(&logits[9..12], 1));
        let w = [0.5, -1.0, 2.0, 0.25];
        let d = token_logprobs_backward(&logits, &targets, &w, t);
        let want = numeric_grad(&logits, &w, |l| token_logprobs(l, &targets, rows, t));
        close(&d, &want, 2e-3, "d_logits");
        // the last column of each row predicts nothing
        assert!(d[6..9].iter().chain(&d[15..18]).all(|&v| v == 0.0));
    }

    /// One row, one head, t = 2, dh = 1, q = [1, 2], k = [3, 4], v = [5, 6]: query 0 sees
    /// only key 0 (P = [1, 0], out 5); query 1 sees both with scores 2·3 = 6 and 2·4 = 8,
    /// P = [1/(1 + e²), e²/(1 + e²)] = [0.1192, 0.8808], out = 5·0.1192 + 6·0.8808 = 5.8808.
    #[test]
    fn attention_forward_matches_hand_arithmetic() {
        let a = Attention {
            rows: 1,
            t: 2,
            q_heads: 1,
            kv_heads: 1,
            dh: 1,
        };
        let qkv = [1.0, 3.0, 5.0, 2.0, 4.0, 6.0];
        let view = |offset| Heads {
            data: &qkv,
            offset,
            stride: 3,
        };
        let (mut p, mut out) = (vec![0f32; 4], vec![0f32; 2]);
        a.forward(view(0), view(1), view(2), &[true, true], &mut p, &mut out);
        let p1 = 1.0 / (1.0 + 2f32.exp());
        close(&p, &[1.0, 0.0, p1, 1.0 - p1], 1e-6, "P");
        close(&out, &[5.0, 5.0 * p1 + 6.0 * (1.0 - p1)], 1e-6, "out");
        assert!((out[1] - 5.8808).abs() < 1e-4, "{}", out[1]);
    }

    /// Grouped-query attention (4 query heads over 2 key/value heads) with a padding key:
    /// every gradient against finite differences of the forward, and the padded key's
    /// column of P is 0 for the real queries.
    #[test]
    fn attention_backward_matches_finite_differences() {
        let a = Attention {
            rows: 2,
            t: 3,
            q_heads: 4,
            kv_heads: 2,
            dh: 2,
        };
        let m = a.rows * a.t;
        let (q, k, v) = (values(m * 8, 12), values(m * 4, 13), values(m * 4, 14));
        let valid = [true, true, true, false, true, true];
        // the padding query's output weighs nothing, as the loss mask makes it in training
        // (its scores are all −1e9 + s, where s is lost to rounding)
        let mut wt = values(m * 8, 15);
        wt[3 * 8..4 * 8].fill(0.0);
        let run = |q: &[f32], k: &[f32], v: &[f32]| {
            let (mut p, mut out) = (vec![0f32; a.probs_len()], vec![0f32; m * 8]);
            let h = |data| Heads {
                data,
                offset: 0,
                stride: data.len() / m,
            };
            a.forward(h(q), h(k), h(v), &valid, &mut p, &mut out);
            (p, out)
        };
        let (p, _) = run(&q, &k, &v);
        // row 1, every head, queries 1 and 2: key 0 (padding) gets no weight
        for h in 0..4 {
            for i in 1..3 {
                assert!(p[((4 + h) * 3 + i) * 3] < 1e-30);
            }
        }
        let (mut dq, mut dk, mut dv) = (vec![0f32; m * 8], vec![0f32; m * 4], vec![0f32; m * 4]);
        let h = |data, stride| Heads {
            data,
            offset: 0,
            stride,
        };
        a.backward(
            h(&q, 8),
            h(&k, 4),
            h(&v, 4),
            &p,
            &wt,
            &mut dq,
            &mut dk,
            &mut dv,
        );
        close(
            &dq,
            &numeric_grad(&q, &wt, |q| run(q, &k, &v).1),
            2e-3,
            "dq",
        );
        close(
            &dk,
            &numeric_grad(&k, &wt, |k| run(&q, k, &v).1),
            2e-3,
            "dk",
        );
        close(
            &dv,
            &numeric_grad(&v, &wt, |v| run(&q, &k, v).1),
            2e-3,
            "dv",
        );
    }
}
