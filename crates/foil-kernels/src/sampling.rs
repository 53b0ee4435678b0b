//! Row kernels of the samplers: one row of logits (a whole vocabulary) at a time.
//!
//! A decode step of the `local` sampler reads every row's logits on the host: its
//! entropy, the processed distribution and the draw. At SmolLM2's 49152-token vocabulary
//! and 64 rows that is 3.1 M logits per step, which a GPU waits for between two decode
//! steps. Here the loops run in eight lanes with [`crate::exp`] (no library call), at
//! `opt-level = 3`, and sums of many terms are carried in `f64` block by block.
//!
//! Masked tokens (a logit of −∞, or NaN) carry no mass in any of these.

use crate::exp;

/// Terms summed in `f32` lanes before the lane sums are added into `f64` totals.
const BLOCK: usize = 256;

simd_fn! {
    /// The largest finite value of `z`; −∞ when none is finite.
    pub fn finite_max(z: &[f32]) -> f32 {
        let mut lanes = [f32::NEG_INFINITY; 8];
        let mut chunks = z.chunks_exact(8);
        for c in &mut chunks {
            for (l, &x) in lanes.iter_mut().zip(c) {
                // `&`, not `&&`: both sides are computed, so the loop stays branch-free
                *l = if (x.abs() < f32::INFINITY) & (x > *l) { x } else { *l };
            }
        }
        for &x in chunks.remainder() {
            if x.is_finite() && x > lanes[0] {
                lanes[0] = x;
            }
        }
        lanes.iter().fold(f32::NEG_INFINITY, |m, &l| m.max(l))
    }
}

/// Entropy in nats of `softmax(z)` over the finite logits:
/// `H = −Σ_v p_v ln p_v = ln S − (Σ_v e_v d_v) / S` with `d_v = z_v − max z`,
/// `e_v = exp(d_v)`, `S = Σ_v e_v`. Tokens more than 87 nats below the largest
/// (`e_v < 1.7e-38`) count as zero. 0 when no logit is finite.
pub fn entropy(z: &[f32]) -> f32 {
    let max = finite_max(z);
    if !max.is_finite() {
        return 0.0;
    }
    let (s, w) = exp_moments(z, max);
    (s.ln() - w / s) as f32
}

simd_fn! {
    /// `(Σ e_v, Σ e_v d_v)` of [`entropy`], `d_v = z_v − max`, for `d_v ∈ [−87, 0]`.
    fn exp_moments(z: &[f32], max: f32) -> (f64, f64) {
        // per block: a plain map into `e` and `ed` (which LLVM vectorises, exp included),
        // then their sums in eight lanes
        let (mut e, mut ed) = ([0f32; BLOCK], [0f32; BLOCK]);
        let (mut s, mut w) = (0f64, 0f64);
        for block in z.chunks(BLOCK) {
            let n = block.len();
            for ((e, ed), &x) in e.iter_mut().zip(ed.iter_mut()).zip(block) {
                let d = x - max;
                // false for −∞, NaN and anything above the finite maximum (+∞)
                let live = (-87.0..=0.0).contains(&d);
                let d = if live { d } else { 0.0 };
                let p = exp(d);
                *e = if live { p } else { 0.0 };
                *ed = *e * d;
            }
            s += lane_sum(&e[..n]);
            w += lane_sum(&ed[..n]);
        }
        (s, w)
    }
}

/// `Σ x` of a block, in eight `f32` lanes, as `f64`.
#[inline(always)]
fn lane_sum(x: &[f32]) -> f64 {
    let mut lanes = [0f32; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for k in 0..8 {
            lanes[k] += c[k];
        }
    }
    lanes[0] += chunks.remainder().iter().sum::<f32>();
    lanes.iter().map(|&l| l as f64).sum()
}

/// Unnormalised softmax weights at temperature `1 / inv_t` into `out`:
/// `out_v = exp((z_v − max z)·inv_t)` for finite `z_v`, 0 for masked ones and for those
/// whose scaled distance is more than 87 below the top. When some `z_v = +∞` (a processor
/// forcing tokens), the weights are 1 on those tokens and 0 elsewhere, the limit of the
/// softmax. Returns `Σ out_v` (0 when every token is masked).
pub fn softmax_weights(z: &[f32], inv_t: f32, out: &mut [f32]) -> f64 {
    assert_eq!(z.len(), out.len(), "one weight per logit");
    // one pass tells all three cases apart: +∞ present, nothing above −∞, a finite top
    let max = non_nan_max(z);
    if max == f32::INFINITY {
        let mut n = 0.0;
        for (o, &x) in out.iter_mut().zip(z) {
            *o = if x == f32::INFINITY { 1.0 } else { 0.0 };
            n += *o as f64;
        }
        return n;
    }
    if max == f32::NEG_INFINITY {
        out.fill(0.0);
        return 0.0;
    }
    scaled_exp(z, max, inv_t, out)
}

simd_fn! {
    /// `out_v = exp((z_v − max)·inv_t)` where that exponent is in `[−87, 0]`, else 0;
    /// returns the sum.
    fn scaled_exp(z: &[f32], max: f32, inv_t: f32, out: &mut [f32]) -> f64 {
        for (o, &x) in out.iter_mut().zip(z) {
            // the top token's 0 stays 0 even when `inv_t` is +∞ (0·∞ would be NaN)
            let dx = x - max;
            let d = if dx == 0.0 { 0.0 } else { dx * inv_t };
            let live = (-87.0..=0.0).contains(&d);
            let p = exp(if live { d } else { 0.0 });
            *o = if live { p } else { 0.0 };
        }
        out.chunks(BLOCK).map(lane_sum).sum()
    }
}

/// The index of the largest value of `z`, the lowest index on ties; NaN never wins.
/// 0 for a row of NaN (or an empty one). The maximum is found in eight lanes, then the
/// first block of eight that holds it.
pub fn argmax(z: &[f32]) -> usize {
    let top = non_nan_max(z);
    let mut chunks = z.chunks_exact(8);
    for (b, c) in (&mut chunks).enumerate() {
        if c.iter().fold(false, |any, &x| any | (x == top)) {
            return b * 8 + c.iter().position(|&x| x == top).unwrap_or(0);
        }
    }
    let tail = z.len() - chunks.remainder().len();
    chunks
        .remainder()
        .iter()
        .position(|&x| x == top)
        .map_or(0, |i| tail + i)
}

simd_fn! {
    /// The largest value of `z` that is not NaN (−∞ when there is none).
    fn non_nan_max(z: &[f32]) -> f32 {
        let mut lanes = [f32::NEG_INFINITY; 8];
        let mut chunks = z.chunks_exact(8);
        for c in &mut chunks {
            for (l, &x) in lanes.iter_mut().zip(c) {
                *l = if x > *l { x } else { *l };
            }
        }
        for &x in chunks.remainder() {
            lanes[0] = if x > lanes[0] { x } else { lanes[0] };
        }
        lanes.iter().fold(f32::NEG_INFINITY, |m, &l| if l > m { l } else { m })
    }
}

simd_fn! {
    /// `Σ w` (f32 lanes per block, `f64` across blocks).
    pub fn sum(w: &[f32]) -> f64 {
        w.chunks(BLOCK).map(lane_sum).sum()
    }
}

/// Zeroes the weights below `threshold` (min-p: `threshold = min_p · max w`).
pub fn drop_below(w: &mut [f32], threshold: f32) {
    for x in w {
        *x = if *x < threshold { 0.0 } else { *x };
    }
}

/// Keeps the `k` largest weights (`k = 0`: all), then, in decreasing order of weight (the
/// lower index first among equal weights), each next token while the mass kept before
/// it is below `mass` (top-p with `mass = p · Σ w` over all tokens: `f64::INFINITY` keeps
/// all); zeroes the rest. Only as many tokens are put in order as the cut needs: the
/// largest 64, then the next 64, 128, 256… (`select_nth_unstable`, then a sort of that
/// slice), instead of a sort of the whole vocabulary.
pub fn keep_top(w: &mut [f32], k: usize, mass: f64) {
    // one u64 per candidate, ordered as wanted: the weight's bits above (for w ≥ 0 the
    // bits order as the values do), the index's complement below (the lower index first
    // among equal weights); sorted descending, without indirection through `w`
    let mut keys: Vec<u64> = w
        .iter()
        .enumerate()
        .filter(|(_, x)| **x > 0.0)
        .map(|(i, x)| (u64::from(x.to_bits()) << 32) | u64::from(!(i as u32)))
        .collect();
    let weight = |key: u64| f32::from_bits((key >> 32) as u32);
    let index = |key: u64| !(key as u32) as usize;
    let before = |a: &u64, b: &u64| b.cmp(a);
    let mut cut = keys.len();
    if k > 0 && k < keys.len() {
        keys.select_nth_unstable_by(k - 1, before);
        cut = k;
    }
    if mass.is_finite() {
        let (mut sorted, mut acc) = (0, 0f64);
        'outer: while sorted < cut {
            let next = (sorted.max(32) * 2).min(cut);
            let rest = &mut keys[sorted..cut];
            if next < cut {
                rest.select_nth_unstable_by(next - sorted - 1, before);
            }
            rest[..next - sorted].sort_unstable_by(before);
            for (i, &key) in keys.iter().enumerate().take(next).skip(sorted) {
                if acc >= mass {
                    cut = i;
                    break 'outer;
                }
                acc += weight(key) as f64;
            }
            sorted = next;
        }
    }
    for &key in &keys[cut..] {
        w[index(key)] = 0.0;
    }
}

/// Draws index `i` with probability `w_i / total` for a uniform `u ∈ [0, 1)`: the first
/// index whose running sum of weights passes `u · total`. The running sum is taken block
/// by block (one block sum, then the tokens of the block that holds the answer). Rounding
/// that leaves `u · total` past the last sum gives the last token of positive weight.
pub fn draw(w: &[f32], total: f64, u: f32) -> usize {
    let target = u as f64 * total;
    let (mut acc, mut last) = (0f64, 0);
    for (b, block) in w.chunks(BLOCK).enumerate() {
        let s = sum(block);
        if s <= 0.0 {
            continue;
        }
        if target >= acc + s {
            acc += s;
            last = b * BLOCK + block.iter().rposition(|&x| x > 0.0).unwrap_or(0);
            continue;
        }
        for (i, &x) in block.iter().enumerate() {
            if x > 0.0 {
                acc += x as f64;
                last = b * BLOCK + i;
                if target < acc {
                    return last;
                }
            }
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definitions, in f64 with the library's `exp`.
    fn entropy_f64(z: &[f32]) -> f64 {
        let max = z
            .iter()
            .filter(|x| x.is_finite())
            .fold(f32::NEG_INFINITY, |m, &x| m.max(x)) as f64;
        let e: Vec<f64> = z
            .iter()
            .filter(|x| x.is_finite())
            .map(|&x| (x as f64 - max).exp())
            .collect();
        let s: f64 = e.iter().sum();
        -e.iter().map(|&p| p / s * (p / s).ln()).sum::<f64>()
    }

    fn row(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 20.0
            })
            .collect()
    }

    #[test]
    fn entropy_of_worked_rows() {
        // uniform over 4: ln 4 = 1.386294
        assert!((entropy(&[0.0; 4]) - 4f32.ln()).abs() < 1e-6);
        // (ln 3, 0) → p = (3/4, 1/4): H = 0.75·0.287682 + 0.25·1.386294 = 0.562335
        assert!((entropy(&[3f32.ln(), 0.0]) - 0.562335).abs() < 1e-6);
        // −∞ and NaN carry no mass: the same row
        let masked = [3f32.ln(), f32::NEG_INFINITY, 0.0, f32::NAN];
        assert!((entropy(&masked) - 0.562335).abs() < 1e-6);
        assert_eq!(entropy(&[f32::NEG_INFINITY; 3]), 0.0);
        assert_eq!(entropy(&[]), 0.0);
        // one token 100 nats above the rest: certain (e⁻¹⁰⁰ counts as zero)
        assert_eq!(entropy(&[100.0, 0.0, 0.0]), 0.0);
    }

    #[test]
    fn entropy_of_a_vocabulary_row_matches_f64() {
        // SmolLM2's vocabulary plus an odd tail (the remainder paths), logits in ±10
        for (n, seed) in [(49152 + 5, 1), (1000, 2), (7, 3)] {
            let z = row(n, seed);
            let (got, want) = (entropy(&z) as f64, entropy_f64(&z));
            assert!(
                (got - want).abs() < 1e-5 * want.max(1.0),
                "{n}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn weights_are_the_scaled_softmax() {
        // z = (ln 4, ln 2, 0, −∞) at T = 1: weights (1, 1/2, 1/4, 0), sum 1.75
        let z = [4f32.ln(), 2f32.ln(), 0.0, f32::NEG_INFINITY];
        let mut w = [9.0; 4];
        let s = softmax_weights(&z, 1.0, &mut w);
        assert!((s - 1.75).abs() < 1e-6, "{s}");
        for (a, b) in w.iter().zip([1.0, 0.5, 0.25, 0.0]) {
            assert!((a - b).abs() < 1e-6, "{w:?}");
        }
        // T = 0.5 squares them: (1, 1/4, 1/16, 0)
        softmax_weights(&z, 2.0, &mut w);
        for (a, b) in w.iter().zip([1.0, 0.25, 0.0625, 0.0]) {
            assert!((a - b).abs() < 1e-6, "{w:?}");
        }
        // a forced token (+∞) takes all the mass, shared between forced tokens
        let s = softmax_weights(&[0.0, f32::INFINITY, 5.0, f32::INFINITY], 1.0, &mut w);
        assert_eq!((s, w), (2.0, [0.0, 1.0, 0.0, 1.0]));
        // an infinite 1/T (a subnormal temperature): all mass on the top token
        let s = softmax_weights(&[1.0, 3.0, 2.0, 3.0], f32::INFINITY, &mut w);
        assert_eq!((s, w), (2.0, [0.0, 1.0, 0.0, 1.0]));
        // nothing left
        assert_eq!(softmax_weights(&[f32::NEG_INFINITY; 4], 1.0, &mut w), 0.0);
        assert_eq!(w, [0.0; 4]);
    }

    #[test]
    fn weights_of_a_vocabulary_row_match_f64() {
        let z = row(49152 + 3, 4);
        let mut w = vec![0.0; z.len()];
        let s = softmax_weights(&z, 1.0 / 0.7, &mut w);
        let max = finite_max(&z) as f64;
        let want: Vec<f64> = z.iter().map(|&x| ((x as f64 - max) / 0.7).exp()).collect();
        let total: f64 = want.iter().sum();
        assert!((s - total).abs() < 1e-5 * total, "{s} vs {total}");
        // each weight to the rounding of its f32 exponent: |d| ≤ 87 has a half-ulp of
        // ≤ 3.8e-6, which exp turns into the same relative error
        for (a, b) in w.iter().zip(&want) {
            assert!((*a as f64 - b).abs() <= 5e-6 * b + 1e-37, "{a} vs {b}");
        }
    }

    #[test]
    fn argmax_takes_the_first_of_ties_and_skips_nan() {
        assert_eq!(argmax(&[0.1, 2.0, 2.0, -1.0]), 1);
        assert_eq!(argmax(&[f32::NAN, -5.0, f32::NAN]), 1);
        assert_eq!(argmax(&[f32::NEG_INFINITY, f32::NEG_INFINITY]), 0);
        assert_eq!(argmax(&[1.0, f32::INFINITY, f32::INFINITY]), 1);
        assert_eq!(argmax(&[f32::NAN]), 0);
        // a vocabulary row: the first of two equal maxima, in a later block of eight
        let mut z = row(49152 + 3, 6);
        z[30_001] = 50.0;
        z[40_000] = 50.0;
        z[7] = f32::NAN;
        assert_eq!(argmax(&z), 30_001);
        // the maximum in the tail past the last full block
        z[49_153] = 60.0;
        assert_eq!(argmax(&z), 49_153);
    }

    #[test]
    fn finite_max_ignores_infinities_and_nan() {
        assert_eq!(finite_max(&[1.0, f32::INFINITY, f32::NAN, -3.0]), 1.0);
        let mut z = row(1003, 5);
        z[1001] = 99.0; // in the remainder
        assert_eq!(finite_max(&z), 99.0);
        assert_eq!(finite_max(&[f32::NEG_INFINITY]), f32::NEG_INFINITY);
    }

    /// [`keep_top`] by a full sort, as the samplers did before.
    fn keep_top_by_sort(w: &mut [f32], k: usize, mass: f64) {
        let mut order: Vec<usize> = (0..w.len()).filter(|&i| w[i] > 0.0).collect();
        order.sort_by(|&a, &b| w[b].total_cmp(&w[a]).then(a.cmp(&b)));
        let mut keep = vec![false; w.len()];
        let mut acc = 0f64;
        for (rank, &i) in order.iter().enumerate() {
            if (k > 0 && rank >= k) || acc >= mass {
                break;
            }
            keep[i] = true;
            acc += w[i] as f64;
        }
        for (x, kept) in w.iter_mut().zip(keep) {
            if !kept {
                *x = 0.0;
            }
        }
    }

    #[test]
    fn keep_top_of_worked_weights() {
        // weights 5, 3, 1.5, 0.5 (sum 10): top-k 2 keeps 5, 3
        let mut w = [0.5, 3.0, 5.0, 1.5];
        keep_top(&mut w, 2, f64::INFINITY);
        assert_eq!(w, [0.0, 3.0, 5.0, 0.0]);
        // top-p 0.7 (mass 7): 5 (0 kept before, < 7), 3 (5 < 7), then 8 ≥ 7 stops
        let mut w = [0.5, 3.0, 5.0, 1.5];
        keep_top(&mut w, 0, 7.0);
        assert_eq!(w, [0.0, 3.0, 5.0, 0.0]);
        // equal weights: the lower index first
        let mut w = [1.0, 1.0, 1.0, 1.0];
        keep_top(&mut w, 0, 1.5);
        assert_eq!(w, [1.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn keep_top_matches_a_full_sort() {
        // vocabulary rows with many exact ties (weights quantised to 1/16), so the
        // order among equal weights is exercised; cuts inside the first 64, across the
        // doubling steps, and keeping everything
        for seed in 0..6u64 {
            let z = row(5000 + seed as usize, 10 + seed);
            let base: Vec<f32> = z
                .iter()
                .map(|x| ((x + 10.0) * 0.8).round() / 16.0)
                .collect();
            let total: f64 = base.iter().map(|&x| x as f64).sum();
            for (k, p) in [
                (0, 0.05),
                (0, 0.5),
                (0, 0.97),
                (0, 1.5),
                (40, 1.5),
                (300, 0.9),
                (7000, 0.99),
            ] {
                let (mut got, mut want) = (base.clone(), base.clone());
                keep_top(&mut got, k, p * total);
                keep_top_by_sort(&mut want, k, p * total);
                assert_eq!(got, want, "seed {seed}, k {k}, p {p}");
            }
        }
    }

    #[test]
    fn draw_follows_the_weights() {
        // weights 1, 0, 3 (total 4): u < 0.25 → 0, else 2; the zero is never drawn
        let w = [1.0, 0.0, 3.0];
        assert_eq!(draw(&w, 4.0, 0.0), 0);
        assert_eq!(draw(&w, 4.0, 0.2499), 0);
        assert_eq!(draw(&w, 4.0, 0.2501), 2);
        assert_eq!(draw(&w, 4.0, 0.9999), 2);
        // a target past every running sum (a total larger than the weights', as rounding
        // can leave it) gives the last token of positive weight
        assert_eq!(draw(&[1.0, 1.0, 0.0], 2.5, 0.9999), 1);
        // across blocks: weight 1 everywhere in 1000 tokens; u·1000 = 617.5 → token 617
        let w = vec![1.0; 1000];
        assert_eq!(draw(&w, 1000.0, 0.6175), 617);
        // the same as a plain running sum on a vocabulary row
        let mut w = row(3001, 7);
        let total = softmax_weights(&w.clone(), 1.0, &mut w);
        for u in [0.0, 0.1, 0.33, 0.5, 0.77, 0.999] {
            let target = u as f64 * total;
            let (mut acc, mut want) = (0f64, 0);
            for (i, &x) in w.iter().enumerate() {
                acc += x as f64;
                if x > 0.0 && target < acc {
                    want = i;
                    break;
                }
            }
            assert_eq!(draw(&w, total, u), want, "u {u}");
        }
    }

    #[test]
    fn sum_and_drop_below() {
        let w: Vec<f32> = (1..=1000).map(|i| i as f32).collect();
        assert_eq!(sum(&w), 500_500.0);
        let mut w = vec![0.1, 0.5, 0.05, 0.2];
        drop_below(&mut w, 0.1);
        assert_eq!(w, [0.1, 0.5, 0.0, 0.2]);
    }
}
