//! One AdamW step over a parameter tensor's values in a single pass (Loshchilov & Hutter,
//! "Decoupled Weight Decay Regularization", ICLR 2019), in the form and order of burn's
//! `AdamW` with its per-parameter norm clipping, so the two agree to rounding:
//!
//! ```text
//! g ← g · min(1, c / (‖g‖₂ + f32::MIN_POSITIVE))       when clipping at norm c
//! m ← β₁·m + (1 − β₁)·g
//! v ← β₂·v + (1 − β₂)·g²
//! Δ = (m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε)
//! θ ← θ·(1 − η·λ) − η·Δ                                 (θ unchanged by decay when λ = 0)
//! ```
//!
//! `t` counts this tensor's steps from 1; at `t = 1` the moments start at zero, which makes
//! `m = (1 − β₁)·g` and `v = (1 − β₂)·g²` exactly, as burn initialises them.
//!
//! Why: burn's AdamW runs these as ~15 separate tensor ops per parameter tensor, each
//! allocating its result; for the 1 M-parameter policy of the GRPO bench that is ~4 ms of a
//! ~36 ms step (`docs/benchmarks.md`, session 12). Here the update reads `θ, g, m, v` once
//! and writes `θ, m, v` in place, split over rayon's threads in fixed blocks.

use rayon::prelude::*;

/// The constants of one AdamW step of one tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamwStep {
    /// Learning rate η.
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// Decoupled weight decay λ.
    pub weight_decay: f32,
    /// This tensor's step count, from 1.
    pub time: i32,
    /// Clip the gradient to this L2 norm first (burn's `GradientClipping::Norm`).
    pub clip_norm: Option<f32>,
}

/// Elements per rayon task (64 KiB of each of `θ, g, m, v`).
const BLOCK: usize = 16 * 1024;

/// `Σ g²` in `f32` blocks added in block order (`f64`): the same rounding on every run.
pub fn sum_of_squares(g: &[f32]) -> f64 {
    let parts: Vec<f64> = g
        .par_chunks(BLOCK)
        .map(|b| f64::from(block_sum_of_squares(b)))
        .collect();
    parts.into_iter().sum()
}

simd_fn! {
    fn block_sum_of_squares(g: &[f32]) -> f32 {
        let mut lanes = [0f32; 16];
        let mut chunks = g.chunks_exact(16);
        for c in &mut chunks {
            for (l, x) in lanes.iter_mut().zip(c) {
                *l += x * x;
            }
        }
        let tail: f32 = chunks.remainder().iter().map(|x| x * x).sum();
        lanes.iter().sum::<f32>() + tail
    }
}

/// The factor burn's norm clipping multiplies a gradient by: `min(1, c / (‖g‖ + tiny))`.
pub fn clip_factor(g: &[f32], clip_norm: f32) -> f32 {
    let norm = (sum_of_squares(g) as f32).sqrt();
    (clip_norm / (norm + f32::MIN_POSITIVE)).min(1.0)
}

/// One AdamW step: updates `param`, `m` and `v` in place from the gradient `grad` (all of
/// one length; `m`, `v` zero at `time = 1`).
pub fn adamw(param: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32], s: &AdamwStep) {
    let n = param.len();
    assert!(
        grad.len() == n && m.len() == n && v.len() == n,
        "adamw: θ {n}, g {}, m {}, v {} values",
        grad.len(),
        m.len(),
        v.len()
    );
    assert!(s.time >= 1, "adamw: step count {} (from 1)", s.time);
    let k = Constants {
        scale: s.clip_norm.map_or(1.0, |c| clip_factor(grad, c)),
        beta1: s.beta1,
        one_minus_beta1: 1.0 - s.beta1,
        beta2: s.beta2,
        one_minus_beta2: 1.0 - s.beta2,
        correction1: 1.0 - s.beta1.powi(s.time),
        correction2: 1.0 - s.beta2.powi(s.time),
        eps: s.eps,
        lr: s.lr,
        decay: (s.weight_decay != 0.0)
            .then(|| (1.0 - f64::from(s.lr) * f64::from(s.weight_decay)) as f32),
    };
    param
        .par_chunks_mut(BLOCK)
        .zip(grad.par_chunks(BLOCK))
        .zip(m.par_chunks_mut(BLOCK))
        .zip(v.par_chunks_mut(BLOCK))
        .for_each(|(((p, g), m), v)| update(p, g, m, v, k));
}

#[derive(Clone, Copy)]
struct Constants {
    scale: f32,
    beta1: f32,
    one_minus_beta1: f32,
    beta2: f32,
    one_minus_beta2: f32,
    correction1: f32,
    correction2: f32,
    eps: f32,
    lr: f32,
    decay: Option<f32>,
}

simd_fn! {
    fn update(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], k: Constants) {
        let decay = k.decay.unwrap_or(1.0);
        let decays = k.decay.is_some();
        for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            let g = if k.scale == 1.0 { g } else { g * k.scale };
            *m = *m * k.beta1 + g * k.one_minus_beta1;
            *v = *v * k.beta2 + (g * g) * k.one_minus_beta2;
            let delta = (*m / k.correction1) / ((*v / k.correction2).sqrt() + k.eps);
            let kept = if decays { *p * decay } else { *p };
            *p = kept - delta * k.lr;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(lr: f32, wd: f32, time: i32, clip: Option<f32>) -> AdamwStep {
        AdamwStep {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: wd,
            time,
            clip_norm: clip,
        }
    }

    #[test]
    fn two_steps_worked_by_hand() {
        // θ = 1, g = 0.5, η = 0.1, λ = 0, β = (0.9, 0.999), ε = 1e-8
        // t = 1: m = 0.1·0.5 = 0.05, v = 0.001·0.25 = 0.00025
        //        m̂ = 0.05/0.1 = 0.5, v̂ = 0.00025/0.001 = 0.25, Δ = 0.5/(0.5 + 1e-8) ≈ 1
        //        θ = 1 − 0.1·1 = 0.9
        // (1 − β₂ is 0.00099998713 in f32, so v is 0.00024999678: v to 1e-4 relative)
        let (mut p, mut m, mut v) = (vec![1.0f32], vec![0.0f32], vec![0.0f32]);
        adamw(&mut p, &[0.5], &mut m, &mut v, &step(0.1, 0.0, 1, None));
        assert!((m[0] - 0.05).abs() < 1e-7, "m {}", m[0]);
        assert!((v[0] / 0.00025 - 1.0).abs() < 1e-4, "v {}", v[0]);
        assert!((p[0] - 0.9).abs() < 1e-6, "θ {}", p[0]);
        // t = 2, g = −1: m = 0.9·0.05 + 0.1·(−1) = −0.055
        //        v = 0.999·0.00025 + 0.001·1 = 0.00124975
        //        m̂ = −0.055/0.19 = −0.289474, v̂ = 0.00124975/0.001999 = 0.625188
        //        Δ = −0.289474/0.790688 = −0.366105; θ = 0.9 + 0.0366105 = 0.9366105
        adamw(&mut p, &[-1.0], &mut m, &mut v, &step(0.1, 0.0, 2, None));
        assert!((m[0] + 0.055).abs() < 1e-7, "m {}", m[0]);
        assert!((v[0] / 0.00124975 - 1.0).abs() < 1e-4, "v {}", v[0]);
        assert!((p[0] - 0.9366105).abs() < 1e-5, "θ {}", p[0]);
    }

    #[test]
    fn decay_and_clipping_worked_by_hand() {
        // g = (3, 4): ‖g‖ = 5, clip at 1 → g = (0.6, 0.8). t = 1: m̂ = g, v̂ = g², Δ ≈ sign(g)
        // θ = (2, −2)·(1 − 0.1·0.5) − 0.1·(1, 1) = (1.9 − 0.1, −1.9 − 0.1) = (1.8, −2.0)
        let (mut p, mut m, mut v) = (vec![2.0f32, -2.0], vec![0.0f32; 2], vec![0.0f32; 2]);
        adamw(
            &mut p,
            &[3.0, 4.0],
            &mut m,
            &mut v,
            &step(0.1, 0.5, 1, Some(1.0)),
        );
        assert!(
            (m[0] - 0.06).abs() < 1e-7 && (m[1] - 0.08).abs() < 1e-7,
            "m {m:?}"
        );
        assert!(
            (p[0] - 1.8).abs() < 1e-6 && (p[1] + 2.0).abs() < 1e-6,
            "θ {p:?}"
        );
        // a norm under the threshold is left alone: ‖(0.3, 0.4)‖ = 0.5 < 1
        assert_eq!(clip_factor(&[0.3, 0.4], 1.0), 1.0);
        assert!((clip_factor(&[3.0, 4.0], 1.0) - 0.2).abs() < 1e-7);
    }

    #[test]
    fn blocks_on_threads_match_an_f64_reference() {
        // long enough for several rayon blocks and a ragged tail
        let n = 3 * BLOCK + 37;
        let val = |i: usize, k: f32| ((i as f32 * k).sin() * 0.3) + 0.01;
        let mut p: Vec<f32> = (0..n).map(|i| val(i, 0.7)).collect();
        let (mut m, mut v) = (vec![0f32; n], vec![0f32; n]);
        let (mut p2, mut m2, mut v2) = (p.clone(), m.clone(), v.clone());
        for t in 1..=3 {
            let g: Vec<f32> = (0..n).map(|i| val(i, 1.3 + t as f32)).collect();
            let s = step(1e-3, 0.01, t, Some(2.0));
            adamw(&mut p, &g, &mut m, &mut v, &s);
            // reference: the formula element by element, in f64
            let norm = g.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
            let c = (2.0 / norm).min(1.0);
            for i in 0..n {
                let gi = f64::from(g[i]) * c;
                let mi = 0.9 * f64::from(m2[i]) + 0.1 * gi;
                let vi = 0.999 * f64::from(v2[i]) + 0.001 * gi * gi;
                let d =
                    (mi / (1.0 - 0.9f64.powi(t))) / ((vi / (1.0 - 0.999f64.powi(t))).sqrt() + 1e-8);
                let pi = f64::from(p2[i]) * (1.0 - 1e-5) - 1e-3 * d;
                (p2[i], m2[i], v2[i]) = (pi as f32, mi as f32, vi as f32);
            }
        }
        for i in 0..n {
            assert!((p[i] - p2[i]).abs() < 1e-6, "θ[{i}] {} vs {}", p[i], p2[i]);
            assert!((m[i] - m2[i]).abs() < 1e-6, "m[{i}] {} vs {}", m[i], m2[i]);
            assert!((v[i] - v2[i]).abs() < 1e-7, "v[{i}] {} vs {}", v[i], v2[i]);
        }
    }

    #[test]
    #[should_panic(expected = "adamw: θ 2, g 1")]
    fn mismatched_lengths_are_refused() {
        let (mut p, mut m, mut v) = (vec![0f32; 2], vec![0f32; 2], vec![0f32; 2]);
        adamw(&mut p, &[1.0], &mut m, &mut v, &step(0.1, 0.0, 1, None));
    }
}
