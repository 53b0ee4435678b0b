//! # foil-kernels
//!
//! f32 kernels of foil's CPU decode path (`foil_models::host`): a small-row GEMM,
//! normalisations, activations and one query's attention over a cached sequence. A crate
//! of its own so that it is built at `opt-level = 3` (the workspace's own crates build at
//! 1, where these loops are not vectorised).
//!
//! Why hand-written: a decode step multiplies 1–16 rows by each weight. Through burn's
//! flex backend every such product packs the whole weight first (gemm crate), and each of
//! the ~20 small ops per layer allocates a tensor. Here each weight is packed once into
//! strips of 16 columns ([`Packed`]) and a step streams it front to back into register
//! tiles of 4 rows × 16 columns (`out[r, c] += x[r, i] · w[i, c]`), with AVX2/FMA chosen
//! at run time and a portable build of the same loops otherwise.

/// Defines `fn name(args) body` twice, as written and compiled for AVX2/FMA, and calls the
/// AVX2 build when the CPU has those features (checked at run time): for loops that LLVM
/// vectorises when it may use 8-wide registers.
macro_rules! simd_fn {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn fast($($arg: $ty),*) $(-> $ret)? {
                body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            if crate::avx2() {
                // SAFETY: the CPU supports AVX2 and FMA (checked just above).
                return unsafe { fast($($arg),*) };
            }
            body($($arg),*)
        }
    };
    // `wide fn`: also an AVX-512 build, called when the CPU has AVX-512F and VL, AVX2 and
    // FMA (and `FOIL_NO_AVX512` is unset), for arithmetic-bound loops (GELU's erf and exp);
    // otherwise the two builds above (`narrow`)
    ($(#[$meta:meta])* wide $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn wide_body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
            unsafe fn wide($($arg: $ty),*) $(-> $ret)? {
                wide_body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            if crate::avx512_wide() {
                // SAFETY: the CPU supports AVX-512F and VL, AVX2 and FMA (checked just above).
                return unsafe { wide($($arg),*) };
            }
            simd_fn! {
                fn narrow($($arg: $ty),*) $(-> $ret)? {
                    wide_body($($arg),*)
                }
            }
            narrow($($arg),*)
        }
    };
}

pub mod adamw;
pub mod backprop;
pub mod pool;
pub mod sampling;

const ROWS: usize = 4;
const COLS: usize = 16;

/// A `[k, n]` weight repacked for [`linear`]: strips of 16 columns, each stored as its
/// `k` rows of 16 values one after another (`[n/16][k][16]`, the last strip zero-padded),
/// so that a product reads the weight once, front to back.
///
/// Each strip row (16 values) is one 64-byte-aligned cache line ([`Line`]), written with
/// non-temporal stores, which go to memory without passing through this core's caches.
/// Why: weights packed with ordinary stores sit dirty in the packing core's caches, and a
/// decode that then streams them (4 MB per step for the GRPO bench's Qwen2, more than a
/// core's L2) read them ~1.5× slower for dozens of passes on an AVX-512 Xeon; written
/// around the caches, only the first pass is slow (`examples/stream_probe.rs`;
/// `docs/benchmarks.md`, session 12: sampling on a fresh snapshot 7.1–7.5 → 5.5–5.7 ms).
#[derive(Debug, Clone)]
pub struct Packed {
    data: Vec<Line>,
    k: usize,
    n: usize,
}

/// One strip row of a [`Packed`] weight: 16 values on their own cache line.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct Line([f32; COLS]);

impl Packed {
    /// Repacks the row-major `[k, n]` weight `w`.
    pub fn new(w: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(w.len(), k * n, "a [{k}, {n}] weight has {} values", k * n);
        let strips = n.div_ceil(COLS);
        let len = strips * k;
        let mut data: Vec<Line> = Vec::with_capacity(len);
        let out = data.as_mut_ptr();
        for s in 0..strips {
            let width = COLS.min(n - s * COLS);
            for i in 0..k {
                let mut line = Line([0.0; COLS]);
                line.0[..width].copy_from_slice(&w[i * n + s * COLS..i * n + s * COLS + width]);
                // SAFETY: `s·k + i < len`, the vector's capacity, and `Line` is aligned
                unsafe { stream_line(out.add(s * k + i), &line) };
            }
        }
        stream_fence();
        // SAFETY: each of the `len` lines was written just above
        unsafe { data.set_len(len) };
        Self { data, k, n }
    }

    /// The packed values, strip after strip (`[n/16][k][16]`).
    fn values(&self) -> &[f32] {
        // SAFETY: `Line` is `repr(C)` around `[f32; 16]`, 64 bytes with no padding, so
        // the lines are `16 · len` consecutive, initialised `f32`s
        unsafe {
            std::slice::from_raw_parts(self.data.as_ptr().cast::<f32>(), self.data.len() * COLS)
        }
    }

    /// Input width `k`.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Output width `n`.
    pub fn n(&self) -> usize {
        self.n
    }
}

/// Writes `line` to `dst` around the caches: four 16-byte non-temporal stores on x86_64
/// (SSE, which every x86_64 CPU has), an ordinary write elsewhere.
///
/// # Safety
/// `dst` is valid for a write of one `Line` (and so 64-byte aligned).
#[inline(always)]
unsafe fn stream_line(dst: *mut Line, line: &Line) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_loadu_ps, _mm_stream_ps};
        let (d, s) = (dst.cast::<f32>(), line.0.as_ptr());
        for j in 0..COLS / 4 {
            // SAFETY: `d + 4j` is 16-byte aligned and inside the line (the caller's
            // promise); `s + 4j` reads inside `line`
            unsafe { _mm_stream_ps(d.add(4 * j), _mm_loadu_ps(s.add(4 * j))) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: the caller's promise
    unsafe {
        dst.write(*line)
    }
}

/// Orders the non-temporal stores of [`stream_line`] before any later store (so that
/// whoever is handed the weights afterwards sees them).
fn stream_fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `sfence` has no preconditions
    unsafe {
        std::arch::x86_64::_mm_sfence()
    }
}

/// Whether this CPU has AVX2 and FMA (the fast paths below; checked once, then cached
/// by the standard library).
#[inline]
fn avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
    #[allow(unreachable_code)]
    false
}

/// Whether `simd_fn! { wide fn … }` may run its AVX-512 build: AVX-512F and VL (the
/// build's 256-bit forms of AVX-512 instructions) besides AVX2 and FMA, and
/// `FOIL_NO_AVX512` unset ([`avx512`]).
#[inline]
fn avx512_wide() -> bool {
    #[cfg(target_arch = "x86_64")]
    return avx512() && std::is_x86_feature_detected!("avx512vl") && avx2();
    #[allow(unreachable_code)]
    false
}

/// Whether this CPU has AVX-512F (the 512-bit tiles of [`linear`]). `FOIL_NO_AVX512=1`
/// turns them off, for A/B timing and for testing the AVX2 tiles on such a CPU.
#[inline]
fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let off = *OFF.get_or_init(|| std::env::var_os("FOIL_NO_AVX512").is_some_and(|v| v == "1"));
        return !off && std::is_x86_feature_detected!("avx512f");
    }
    #[allow(unreachable_code)]
    false
}

/// Products of at least this many multiply-adds split their column strips over rayon's
/// threads (a decode step's 8 × 256 × 768 stays on its caller's thread; SmolLM2's
/// vocabulary head or a prefill spreads).
const PARALLEL_MACS: usize = 8 << 20;

/// Weights of at least this many values (2 MiB of f32, more than a core's L2) split their
/// column strips over rayon's threads whatever the rows: each thread then streams half the
/// weight from L3 or memory. SmolLM2-135M's MLP weights (576 × 1536) do, so a decode step
/// of 8 rows in one row group ran at 155 instead of 125 tokens/s; the d-256 GPT's (at most
/// 256 × 1024) do not, since splitting them slowed its one-row decode by 29 %
/// (`docs/benchmarks.md`, session 13).
const PARALLEL_WEIGHT: usize = 512 << 10;

/// `out[m, n] = x[m, k] · w[k, n] (+ bias[n])`, `x` and `out` row-major.
pub fn linear(x: &[f32], w: &Packed, bias: Option<&[f32]>, m: usize, out: &mut [f32]) {
    use rayon::prelude::*;
    let (k, n) = (w.k, w.n);
    assert!(
        x.len() == m * k && out.len() == m * n,
        "x [{m}, {k}] and out [{m}, {n}]"
    );
    assert!(bias.is_none_or(|b| b.len() == n), "bias of {n} values");
    let strips = n.div_ceil(COLS);
    let out = OutPtr(out.as_mut_ptr());
    // SAFETY: `x`, `out` and `bias` hold the values indexed (asserted above), `w.values()`
    // holds ⌈n/16⌉·k·16 values by construction, and each call writes only the columns of
    // its own strips, so concurrent calls on disjoint strip ranges never share a value.
    let product = Product { x, w, bias, m };
    let run = |range: std::ops::Range<usize>| unsafe { strips_into(&product, range, out) };
    let threads = rayon::current_num_threads().min(strips);
    if (m * k * n >= PARALLEL_MACS || k * n >= PARALLEL_WEIGHT) && threads > 1 {
        (0..threads)
            .into_par_iter()
            .for_each(|i| run(strips * i / threads..strips * (i + 1) / threads));
    } else {
        run(0..strips);
    }
}

/// The operands of one [`linear`] call.
struct Product<'a> {
    x: &'a [f32],
    w: &'a Packed,
    bias: Option<&'a [f32]>,
    m: usize,
}

/// `out`'s base pointer, shared by threads that write disjoint columns.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: only `linear` makes one, and its threads write disjoint columns.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

/// The strips `range` of the product into `out` (AVX2/FMA when the CPU has them).
///
/// # Safety
/// As in [`linear`]: the buffers hold the values indexed, and no other thread writes these
/// strips' columns of `out` meanwhile.
unsafe fn strips_into(p: &Product, range: std::ops::Range<usize>, out: OutPtr) {
    #[cfg(target_arch = "x86_64")]
    if avx512() {
        // SAFETY: the CPU supports AVX-512F (checked just above); the rest is the caller's
        // promise.
        return unsafe { strips_avx512(p, range, out.0) };
    }
    #[cfg(target_arch = "x86_64")]
    if avx2() {
        // SAFETY: the CPU supports both features (checked just above); the rest is the
        // caller's promise.
        return unsafe { strips_fma(p, range, out.0) };
    }
    // SAFETY: the caller's promise.
    unsafe { strips_portable(p, range, out.0) }
}

/// Stores the `width` first values of a tile row (plus bias) at `o` (columns `c0..`).
///
/// # Safety
/// `o` is valid for `width` writes.
#[inline(always)]
unsafe fn store_row(
    tile: &[f32; COLS],
    bias: Option<&[f32]>,
    c0: usize,
    width: usize,
    o: *mut f32,
) {
    for c in 0..width {
        let b = bias.map_or(0.0, |b| b[c0 + c]);
        unsafe { *o.add(c) = tile[c] + b };
    }
}

/// The AVX2/FMA tiles: 4 rows × 16 columns in eight registers, one broadcast of
/// `x[r, i]` and two loads of the strip's row `i` per four pairs of FMAs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn strips_fma(p: &Product, range: std::ops::Range<usize>, out: *mut f32) {
    use std::arch::x86_64::*;
    let (x, w, bias, m) = (p.x, p.w, p.bias, p.m);
    let (k, n) = (w.k, w.n);
    let xp = x.as_ptr();
    for s in range {
        let c0 = s * COLS;
        let width = COLS.min(n - c0);
        let strip = unsafe { w.values().as_ptr().add(s * k * COLS) };
        for r0 in (0..m).step_by(ROWS) {
            let real = (m - r0).min(ROWS);
            // a short last tile repeats its last row and stores only the real ones
            let xr: [*const f32; ROWS] =
                std::array::from_fn(|r| unsafe { xp.add((r0 + r.min(real - 1)) * k) });
            let mut acc = [_mm256_setzero_ps(); 2 * ROWS];
            for i in 0..k {
                unsafe {
                    let w0 = _mm256_loadu_ps(strip.add(i * COLS));
                    let w1 = _mm256_loadu_ps(strip.add(i * COLS + 8));
                    for r in 0..ROWS {
                        let a = _mm256_broadcast_ss(&*xr[r].add(i));
                        acc[2 * r] = _mm256_fmadd_ps(a, w0, acc[2 * r]);
                        acc[2 * r + 1] = _mm256_fmadd_ps(a, w1, acc[2 * r + 1]);
                    }
                }
            }
            // every row to a buffer at constant indices (a runtime index into `acc` would
            // keep the accumulators in memory), then only the real rows to `out`
            let mut tile = [[0f32; COLS]; ROWS];
            for r in 0..ROWS {
                unsafe {
                    _mm256_storeu_ps(tile[r].as_mut_ptr(), acc[2 * r]);
                    _mm256_storeu_ps(tile[r].as_mut_ptr().add(8), acc[2 * r + 1]);
                }
            }
            for (r, tile) in tile.iter().enumerate().take(real) {
                unsafe { store_row(tile, bias, c0, width, out.add((r0 + r) * n + c0)) };
            }
        }
    }
}

/// Rows per tile of the AVX-512 kernel: 8 rows × 16 columns are eight 512-bit
/// accumulators, so a decode step's 8 rows read each weight strip once.
const ROWS_512: usize = 8;

/// The AVX-512 tiles: 8 rows × 16 columns in eight registers, one load of the strip's
/// row `i` and eight broadcasts of `x[r, i]` per eight FMAs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn strips_avx512(p: &Product, range: std::ops::Range<usize>, out: *mut f32) {
    use std::arch::x86_64::*;
    let (x, w, bias, m) = (p.x, p.w, p.bias, p.m);
    let (k, n) = (w.k, w.n);
    let xp = x.as_ptr();
    for s in range {
        let c0 = s * COLS;
        let width = COLS.min(n - c0);
        let strip = unsafe { w.values().as_ptr().add(s * k * COLS) };
        for r0 in (0..m).step_by(ROWS_512) {
            let real = (m - r0).min(ROWS_512);
            // a short last tile repeats its last row and stores only the real ones
            let xr: [*const f32; ROWS_512] =
                std::array::from_fn(|r| unsafe { xp.add((r0 + r.min(real - 1)) * k) });
            let mut acc = [_mm512_setzero_ps(); ROWS_512];
            for i in 0..k {
                unsafe {
                    let wi = _mm512_loadu_ps(strip.add(i * COLS));
                    for r in 0..ROWS_512 {
                        let a = _mm512_set1_ps(*xr[r].add(i));
                        acc[r] = _mm512_fmadd_ps(a, wi, acc[r]);
                    }
                }
            }
            let mut tile = [[0f32; COLS]; ROWS_512];
            for r in 0..ROWS_512 {
                unsafe { _mm512_storeu_ps(tile[r].as_mut_ptr(), acc[r]) };
            }
            for (r, tile) in tile.iter().enumerate().take(real) {
                unsafe { store_row(tile, bias, c0, width, out.add((r0 + r) * n + c0)) };
            }
        }
    }
}

/// The same product without SIMD intrinsics (other CPUs).
///
/// # Safety
/// As [`strips_into`].
unsafe fn strips_portable(p: &Product, range: std::ops::Range<usize>, out: *mut f32) {
    let (x, w, bias, m) = (p.x, p.w, p.bias, p.m);
    let (k, n) = (w.k, w.n);
    for r in 0..m {
        for s in range.clone() {
            let c0 = s * COLS;
            let mut tile = [0f32; COLS];
            for i in 0..k {
                let a = x[r * k + i];
                let row = &w.values()[(s * k + i) * COLS..(s * k + i + 1) * COLS];
                for (t, wc) in tile.iter_mut().zip(row) {
                    *t += a * wc;
                }
            }
            unsafe { store_row(&tile, bias, c0, COLS.min(n - c0), out.add(r * n + c0)) };
        }
    }
}

/// `Σ a[i]·b[i]` in eight independent lanes (so that it vectorises), summed at the end.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            lanes[l] += x[l] * y[l];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// LayerNorm of one row: `(x − mean) / √(var + eps) · γ + β`, biased variance (burn's and
/// PyTorch's definition).
pub fn layer_norm(x: &[f32], gamma: &[f32], beta: Option<&[f32]>, eps: f32, out: &mut [f32]) {
    let d = x.len() as f32;
    let mean = x.iter().sum::<f32>() / d;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d;
    let inv = 1.0 / (var + eps).sqrt();
    for (i, o) in out.iter_mut().enumerate() {
        *o = (x[i] - mean) * inv * gamma[i] + beta.map_or(0.0, |b| b[i]);
    }
}

/// RMSNorm of one row: `x / √(mean(x²) + eps) · γ` (Llama, Qwen2, Mistral).
pub fn rms_norm(x: &[f32], gamma: &[f32], eps: f32, out: &mut [f32]) {
    let ms = dot(x, x) / x.len() as f32;
    let inv = 1.0 / (ms + eps).sqrt();
    for (i, o) in out.iter_mut().enumerate() {
        *o = x[i] * inv * gamma[i];
    }
}

/// `eˣ` without a library call, so that loops over it vectorise: `x = k·ln 2 + r` with
/// `k = round(x·log₂e)` and `|r| ≤ ln 2 / 2` (ln 2 split in two for an exact `r`), `eʳ` by its
/// Taylor polynomial of degree 6 (remainder ≤ 0.347⁷/7! ≈ 1.2e-7), `2ᵏ` by the exponent
/// bits. Inputs are clamped to `[−87, 88]`: `e⁻⁸⁷ ≈ 1.6e-38` stands in for 0.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let x = x.clamp(-87.0, 88.0);
    // round to nearest by adding 1.5·2²³: the sum's low mantissa bits then hold k (exact
    // for |x·log₂e| < 2²²). No call to `floorf` (no SSE2 instruction) and no float-to-int
    // cast (saturating in Rust, so not vectorised): the loops around this stay SIMD.
    const ROUND: f32 = 12_582_912.0;
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let k = shifted - ROUND;
    let r = x - k * LN2_HI - k * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // 2ᵏ: the exponent field k + 127 (in 1..=254 after the clamp) moved into place; the
    // shift drops the bits of 1.5·2²³ above it
    p * f32::from_bits((shifted + 127.0).to_bits() << 23)
}

/// `erf(x)` by Abramowitz & Stegun 7.1.26: `1 − (a₁t + … + a₅t⁵)·e^(−x²)`,
/// `t = 1/(1 + p|x|)`, odd in `x`; absolute error ≤ 1.5e-7.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    erf_with(x, exp(-x * x))
}

/// [`erf`] given `e^(−x²)`, for callers that need that exponential too (GELU's backward
/// pass shares it with the normal density).
#[inline(always)]
pub(crate) fn erf_with(x: f32, exp_minus_x2: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_74,
        1.421_413_8,
        -1.453_152_1,
        1.061_405_4,
    ];
    let t = 1.0 / (1.0 + P * x.abs());
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    (1.0 - poly * exp_minus_x2).copysign(x)
}

simd_fn! {
    /// Exact GELU, `x · ½(1 + erf(x/√2))`, in place (burn's `gelu`, PyTorch's default).
    wide pub fn gelu(x: &mut [f32]) {
        for v in x {
            *v *= 0.5 * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
        }
    }
}

simd_fn! {
    /// `silu(gate) · up`, written into `gate` (the gated MLP of Llama and Qwen2).
    pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
        for (g, u) in gate.iter_mut().zip(up) {
            *g = *g / (1.0 + exp(-*g)) * u;
        }
    }
}

simd_fn! {
    /// One query's attention over `t` cached keys/values (`[t, dh]` each, contiguous):
    /// `softmax(q·kⱼ · scale + biasⱼ) · V` into `out` (`dh`). `scores` is scratch of ≥ `t`.
    /// No keys give zeros.
    pub fn attend_one(
        q: &[f32],
        keys: &[f32],
        values: &[f32],
        bias: &[f32],
        scale: f32,
        scores: &mut [f32],
        out: &mut [f32],
    ) {
        let (dh, t) = (q.len(), bias.len());
        assert!(keys.len() >= t * dh && values.len() >= t * dh && out.len() == dh);
        if t == 0 {
            out.fill(0.0);
            return;
        }
        // the common head widths get a fixed-size body: the output accumulates in registers
        match dh {
            64 => attend_fixed::<64>(q, keys, values, bias, scale, scores, out),
            128 => attend_fixed::<128>(q, keys, values, bias, scale, scores, out),
            _ => attend_any(q, keys, values, bias, scale, scores, out),
        }
    }
}

/// [`attend_one`] for a head width of `DH` (a multiple of 8).
#[inline(always)]
fn attend_fixed<const DH: usize>(
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    bias: &[f32],
    scale: f32,
    scores: &mut [f32],
    out: &mut [f32],
) {
    let q: &[f32; DH] = q.try_into().expect("a query of DH values");
    let t = bias.len();
    let scores = &mut scores[..t];
    let keys = &keys[..t * DH];
    // four keys at a time: four independent accumulator chains instead of one
    let mut four = scores.chunks_exact_mut(4);
    for (j, s) in (&mut four).enumerate() {
        let k = &keys[4 * j * DH..][..4 * DH];
        let mut lanes = [[0f32; 8]; 4];
        for c in (0..DH).step_by(8) {
            for (key, lane) in lanes.iter_mut().enumerate() {
                for l in 0..8 {
                    lane[l] += q[c + l] * k[key * DH + c + l];
                }
            }
        }
        for (key, lane) in lanes.iter().enumerate() {
            s[key] = lane.iter().sum::<f32>() * scale + bias[4 * j + key];
        }
    }
    let done = t - four.into_remainder().len();
    for j in done..t {
        scores[j] = dot(q, &keys[j * DH..(j + 1) * DH]) * scale + bias[j];
    }
    let inv = softmax_unnormalised(scores);
    let mut acc = [0f32; DH];
    for (&p, v) in scores.iter().zip(values.chunks_exact(DH)) {
        let v: &[f32; DH] = v.try_into().expect("chunks of DH");
        for c in 0..DH {
            acc[c] += p * v[c];
        }
    }
    for (o, a) in out.iter_mut().zip(acc) {
        *o = a * inv;
    }
}

/// [`attend_one`] for any head width.
#[inline(always)]
fn attend_any(
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    bias: &[f32],
    scale: f32,
    scores: &mut [f32],
    out: &mut [f32],
) {
    let dh = q.len();
    let scores = &mut scores[..bias.len()];
    for ((s, k), b) in scores.iter_mut().zip(keys.chunks_exact(dh)).zip(bias) {
        *s = dot(q, k) * scale + b;
    }
    let inv = softmax_unnormalised(scores);
    out.fill(0.0);
    for (s, v) in scores.iter().zip(values.chunks_exact(dh)) {
        let p = s * inv;
        for (o, v) in out.iter_mut().zip(v) {
            *o += p * v;
        }
    }
}

/// `exp(s − max s)` in place; returns `1 / Σ exp(s − max s)`. Max and sum run in eight
/// lanes, so that the loops vectorise.
#[inline(always)]
pub(crate) fn softmax_unnormalised(scores: &mut [f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    for c in scores.chunks(8) {
        for (l, &s) in lanes.iter_mut().zip(c) {
            *l = l.max(s);
        }
    }
    let max = lanes.iter().fold(f32::NEG_INFINITY, |m, &l| m.max(l));
    let mut sums = [0f32; 8];
    for c in scores.chunks_mut(8) {
        for (l, s) in sums.iter_mut().zip(c) {
            *s = exp(*s - max);
            *l += *s;
        }
    }
    1.0 / sums.iter().sum::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes that exercise full tiles, a short row tile, a column tail and the split over
    /// threads (`33 × 512 × 520` is above `PARALLEL_MACS`; the 2-row product's weight,
    /// `512 × 1040`, is above `PARALLEL_WEIGHT`).
    #[test]
    fn linear_matches_the_schoolbook_product() {
        for (m, k, n) in [
            (1, 3, 2),
            (5, 7, 37),
            (8, 64, 48),
            (4, 16, 16),
            (13, 9, 33),
            (33, 512, 520),
            (2, 512, 1040),
        ] {
            let x: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0)
                .collect();
            let w: Vec<f32> = (0..k * n)
                .map(|i| ((i * 5 % 11) as f32 - 5.0) / 7.0)
                .collect();
            let b: Vec<f32> = (0..n).map(|i| i as f32 / 10.0).collect();
            let packed = Packed::new(&w, k, n);
            let mut out = vec![f32::NAN; m * n];
            linear(&x, &packed, Some(&b), m, &mut out);
            let product = Product {
                x: &x,
                w: &packed,
                bias: Some(&b),
                m,
            };
            // every tile kernel this CPU can run, each on all strips, next to `linear`'s
            // own choice (threaded for the largest size)
            type Kernel = unsafe fn(&Product, std::ops::Range<usize>, *mut f32);
            let mut kernels: Vec<(&str, Kernel)> = vec![("portable", strips_portable)];
            #[cfg(target_arch = "x86_64")]
            {
                if avx2() {
                    kernels.push(("avx2", strips_fma));
                }
                if std::is_x86_feature_detected!("avx512f") {
                    kernels.push(("avx512", strips_avx512));
                }
            }
            let mut outs = vec![("linear", out)];
            for (name, kernel) in kernels {
                let mut o = vec![f32::NAN; m * n];
                // SAFETY: `o` holds m·n values and no other thread writes it; the kernel's
                // instructions are supported (checked when it was listed).
                unsafe { kernel(&product, 0..n.div_ceil(COLS), o.as_mut_ptr()) };
                outs.push((name, o));
            }
            for r in 0..m {
                for c in 0..n {
                    let want: f32 = (0..k).map(|i| x[r * k + i] * w[i * n + c]).sum::<f32>() + b[c];
                    for (name, o) in &outs {
                        let got = o[r * n + c];
                        assert!(
                            (got - want).abs() < 1e-4,
                            "{name} ({m},{k},{n}) [{r},{c}]: {got} vs {want}"
                        );
                    }
                }
            }
        }
        // by hand: [1 2] · [[1 0 2] [3 1 0]] = [7 2 2]
        let mut out = [0f32; 3];
        let w = Packed::new(&[1.0, 0.0, 2.0, 3.0, 1.0, 0.0], 2, 3);
        linear(&[1.0, 2.0], &w, None, 1, &mut out);
        assert_eq!(out, [7.0, 2.0, 2.0]);
    }

    #[test]
    fn exp_matches_the_library_exp() {
        for x in [
            -20.0f32, -3.3, -1.0, -0.1, 0.0, 0.2, 0.5, 1.0, 2.7, 10.0, 40.0,
        ] {
            let (got, want) = (exp(x), x.exp());
            assert!(
                (got - want).abs() <= 3e-7 * want,
                "exp({x}) = {got}, want {want}"
            );
        }
        // a masked score (−1e9) weighs e⁻⁸⁷ ≈ 1.6e-38, nothing next to the row's maximum (1)
        assert!(exp(-1e9) < 1e-37 && exp(-1e9) > 0.0);
    }

    #[test]
    fn erf_and_gelu_match_tabulated_values() {
        // erf(0.5) = 0.5204998778, erf(1) = 0.8427007929, erf(2) = 0.9953222650
        for (x, want) in [
            (0.5, 0.520_499_9),
            (1.0, 0.842_700_8),
            (2.0, 0.995_322_3),
            (0.0, 0.0),
        ] {
            assert!((erf(x) - want).abs() < 3e-7, "erf({x}) = {}", erf(x));
            assert!((erf(-x) + want).abs() < 3e-7);
        }
        // gelu(1) = 0.5 · (1 + erf(0.70710678)) = 0.5 · 1.6826894921 = 0.8413447461
        let mut v = [1.0f32, -1.0];
        gelu(&mut v);
        assert!((v[0] - 0.841_344_7).abs() < 1e-6 && (v[1] + 0.158_655_3).abs() < 1e-6);
    }

    #[test]
    fn norms_match_hand_arithmetic() {
        // x = [1 2 3 4]: mean 2.5, var (2.25+0.25+0.25+2.25)/4 = 1.25, 1/√1.25 = 0.894427
        let mut out = [0f32; 4];
        layer_norm(
            &[1.0, 2.0, 3.0, 4.0],
            &[1.0; 4],
            Some(&[0.0, 0.0, 0.0, 1.0]),
            0.0,
            &mut out,
        );
        let want = [-1.341_640_8, -0.447_213_6, 0.447_213_6, 1.0 + 1.341_640_8];
        for (o, w) in out.iter().zip(want) {
            assert!((o - w).abs() < 1e-6, "{out:?}");
        }
        // mean(x²) = 30/4 = 7.5, 1/√7.5 = 0.365148; γ = 2
        rms_norm(&[1.0, 2.0, 3.0, 4.0], &[2.0; 4], 0.0, &mut out);
        for (i, o) in out.iter().enumerate() {
            assert!(
                (o - 2.0 * (i + 1) as f32 * 0.365_148_4).abs() < 1e-6,
                "{out:?}"
            );
        }
    }

    #[test]
    fn attention_weights_keys_by_softmax_and_ignores_masked_ones() {
        // q·k = [1, 0, 5], scale 1, bias [0, 0, −1e9]: softmax over the first two is
        // [e/(e+1), 1/(e+1)] = [0.731059, 0.268941]; out = 0.731059·[1 0] + 0.268941·[0 2]
        let (q, keys) = ([1.0f32, 0.0], [1.0f32, 0.0, 0.0, 1.0, 5.0, 0.0]);
        let values = [1.0f32, 0.0, 0.0, 2.0, 100.0, 100.0];
        let (mut scores, mut out) = ([0f32; 3], [0f32; 2]);
        attend_one(
            &q,
            &keys,
            &values,
            &[0.0, 0.0, -1e9],
            1.0,
            &mut scores,
            &mut out,
        );
        assert!((out[0] - 0.731_058_6).abs() < 1e-6 && (out[1] - 0.537_882_8).abs() < 1e-6);
    }

    /// The fixed-width bodies (head widths 64 and 128: four keys at a time, then the
    /// rest) against the formula in f64, for key counts with and without a remainder
    /// of four and one masked key.
    #[test]
    fn fixed_width_attention_matches_the_formula() {
        for dh in [64usize, 128] {
            for t in [1usize, 4, 5, 6, 7, 8, 13] {
                let q: Vec<f32> = (0..dh).map(|i| ((i * 7 % 13) as f32 - 6.0) / 9.0).collect();
                let k: Vec<f32> = (0..t * dh)
                    .map(|i| ((i * 5 % 11) as f32 - 5.0) / 7.0)
                    .collect();
                let v: Vec<f32> = (0..t * dh)
                    .map(|i| ((i * 3 % 17) as f32 - 8.0) / 5.0)
                    .collect();
                let bias: Vec<f32> = (0..t).map(|j| if j == 2 { -1e9 } else { 0.0 }).collect();
                let scale = 1.0 / (dh as f32).sqrt();
                let (mut scores, mut out) = (vec![0f32; t], vec![0f32; dh]);
                attend_one(&q, &k, &v, &bias, scale, &mut scores, &mut out);
                let s: Vec<f64> = (0..t)
                    .map(|j| {
                        let qk: f64 = (0..dh).map(|c| q[c] as f64 * k[j * dh + c] as f64).sum();
                        qk * scale as f64 + bias[j] as f64
                    })
                    .collect();
                let max = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = s.iter().map(|x| (x - max).exp()).collect();
                let z: f64 = e.iter().sum();
                for c in 0..dh {
                    let want: f64 = (0..t).map(|j| e[j] / z * v[j * dh + c] as f64).sum();
                    assert!(
                        (out[c] as f64 - want).abs() < 1e-5,
                        "dh {dh} t {t} column {c}: {} vs {want}",
                        out[c]
                    );
                }
            }
        }
    }
}
