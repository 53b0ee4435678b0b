//! Turning one row of logits into the distribution that is sampled from.
//!
//! In order (as in Hugging Face `generate` and vLLM):
//!
//! ```text
//! p = softmax(z / T)                                  temperature T > 0
//! top-k:  keep the k most probable tokens
//! top-p:  keep the smallest prefix (by probability) whose mass ≥ p   (Holtzman et al. 2020)
//! min-p:  keep tokens with p_i ≥ min_p · max_j p_j                   (Nguyen et al. 2024)
//! renormalise what is kept
//! ```
//!
//! `T = 0` means greedy: all mass on the arg-max (ties go to the lowest id).

use rand::Rng;

/// Truncation settings shared by the samplers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Truncation {
    pub temperature: f32,
    /// 0 = off.
    pub top_k: usize,
    /// 1.0 = off.
    pub top_p: f32,
    /// 0.0 = off.
    pub min_p: f32,
}

/// Entropy in nats of `softmax(logits)`, `H = −Σ_v p_v log p_v = logsumexp(z) − Σ_v p_v z_v`.
/// Tokens with a non-finite logit (masked out) carry no mass.
pub fn entropy(logits: &[f32]) -> f32 {
    let max = logits
        .iter()
        .cloned()
        .filter(|z| z.is_finite())
        .fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return 0.0;
    }
    let (mut sum, mut weighted) = (0.0f64, 0.0f64);
    for &z in logits.iter().filter(|z| z.is_finite()) {
        let e = ((z - max) as f64).exp();
        sum += e;
        weighted += e * (z - max) as f64;
    }
    (sum.ln() - weighted / sum) as f32
}

/// The processed probabilities of one logits row (zeros for removed tokens).
pub fn probabilities(logits: &[f32], t: &Truncation) -> Vec<f32> {
    let v = logits.len();
    if t.temperature <= 0.0 {
        let mut best = 0;
        for i in 1..v {
            if logits[i] > logits[best] {
                best = i;
            }
        }
        let mut p = vec![0.0; v];
        p[best] = 1.0;
        return p;
    }
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let mut p: Vec<f32> = logits
        .iter()
        .map(|&z| ((z - max) / t.temperature).exp())
        .collect();
    normalise(&mut p);
    let mut keep = vec![true; v];
    // only top-k and top-p need the tokens in order (a sort per row and step)
    if t.top_k > 0 || t.top_p < 1.0 {
        let mut order: Vec<usize> = (0..v).collect();
        order.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
        if t.top_k > 0 {
            for &i in order.iter().skip(t.top_k) {
                keep[i] = false;
            }
        }
        if t.top_p < 1.0 {
            let mut mass = 0.0;
            for &i in &order {
                if !keep[i] {
                    continue;
                }
                if mass >= t.top_p {
                    keep[i] = false;
                } else {
                    mass += p[i];
                }
            }
        }
    }
    if t.min_p > 0.0 {
        let top = p.iter().copied().fold(0.0, f32::max);
        for i in 0..v {
            if p[i] < t.min_p * top {
                keep[i] = false;
            }
        }
    }
    for i in 0..v {
        if !keep[i] {
            p[i] = 0.0;
        }
    }
    normalise(&mut p);
    p
}

fn normalise(p: &mut [f32]) {
    let s: f32 = p.iter().sum();
    if s > 0.0 {
        p.iter_mut().for_each(|x| *x /= s);
    }
}

/// Draws an index from `p` (which sums to 1).
pub fn draw(p: &[f32], rng: &mut impl Rng) -> usize {
    let u: f32 = rng.random();
    let mut acc = 0.0;
    let mut last = 0;
    for (i, &x) in p.iter().enumerate() {
        if x > 0.0 {
            acc += x;
            last = i;
            if u < acc {
                return i;
            }
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFF: Truncation = Truncation {
        temperature: 1.0,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
    };

    #[test]
    fn entropy_of_worked_distributions() {
        // uniform over 4: ln 4 = 1.386294
        assert!((entropy(&[0.0; 4]) - 4f32.ln()).abs() < 1e-6);
        // logits (ln 3, 0) → p = (3/4, 1/4): H = −(0.75 ln 0.75 + 0.25 ln 0.25)
        //   = 0.75·0.287682 + 0.25·1.386294 = 0.215762 + 0.346574 = 0.562335
        assert!((entropy(&[3f32.ln(), 0.0]) - 0.562335).abs() < 1e-5);
        // a masked token carries no mass: same as the 2-token row above
        assert!((entropy(&[3f32.ln(), f32::NEG_INFINITY, 0.0]) - 0.562335).abs() < 1e-5);
        // one certain token
        assert_eq!(entropy(&[0.0, f32::NEG_INFINITY]), 0.0);
        assert_eq!(entropy(&[f32::NEG_INFINITY; 2]), 0.0);
    }

    fn ln(xs: &[f32]) -> Vec<f32> {
        xs.iter().map(|x| x.ln()).collect()
    }

    fn close(a: &[f32], b: &[f32]) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-6, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn temperature_sharpens() {
        // logits ln(0.5), ln(0.25), ln(0.25); T = 0.5 squares: 0.25, 0.0625, 0.0625 → /0.375
        let p = probabilities(
            &ln(&[0.5, 0.25, 0.25]),
            &Truncation {
                temperature: 0.5,
                ..OFF
            },
        );
        close(&p, &[0.25 / 0.375, 0.0625 / 0.375, 0.0625 / 0.375]);
    }

    #[test]
    fn top_k_top_p_min_p() {
        let z = ln(&[0.5, 0.3, 0.15, 0.05]);
        // top-k 2 keeps 0.5, 0.3 → 0.625, 0.375
        close(
            &probabilities(&z, &Truncation { top_k: 2, ..OFF }),
            &[0.625, 0.375, 0.0, 0.0],
        );
        // top-p 0.7: 0.5 (< 0.7, keep), 0.5+0.3 = 0.8 ≥ 0.7 stop → keeps 2 tokens
        close(
            &probabilities(&z, &Truncation { top_p: 0.7, ..OFF }),
            &[0.625, 0.375, 0.0, 0.0],
        );
        // min-p 0.2: threshold 0.1 → keeps 0.5, 0.3, 0.15 → /0.95
        close(
            &probabilities(&z, &Truncation { min_p: 0.2, ..OFF }),
            &[0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0.0],
        );
    }

    #[test]
    fn greedy_is_argmax() {
        let p = probabilities(
            &[0.1, 2.0, 2.0, -1.0],
            &Truncation {
                temperature: 0.0,
                ..OFF
            },
        );
        assert_eq!(p, vec![0.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn draw_follows_probabilities() {
        use rand::SeedableRng;
        let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let p = [0.2, 0.0, 0.8];
        let mut counts = [0usize; 3];
        for _ in 0..10_000 {
            counts[draw(&p, &mut r)] += 1;
        }
        assert_eq!(counts[1], 0);
        // Binomial(10000, 0.2): sd 40
        assert!((1850..2150).contains(&counts[0]), "{counts:?}");
    }
}
