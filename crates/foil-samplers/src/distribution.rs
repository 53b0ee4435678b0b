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
//!
//! The loops over the vocabulary are `foil_kernels::sampling`'s (built at `opt-level = 3`,
//! eight lanes, no sort of the whole vocabulary for top-k/top-p).

use foil_kernels::sampling as kernels;
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

impl Truncation {
    /// A clear error for settings outside their range: `temperature ≥ 0`,
    /// `0 < top_p ≤ 1`, `0 ≤ min_p ≤ 1` (`who` names the part in the message).
    pub fn check(&self, who: &str) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.temperature == 0.0
                || (self.temperature > 0.0 && (1.0 / self.temperature).is_finite()),
            "{who}: temperature must be 0 (greedy) or a positive number whose inverse is finite (≥ {:e}), not {}",
            f32::MIN_POSITIVE,
            self.temperature
        );
        anyhow::ensure!(
            self.top_p > 0.0 && self.top_p <= 1.0,
            "{who}: top_p must be in (0, 1] (1 = off), not {}",
            self.top_p
        );
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.min_p),
            "{who}: min_p must be in [0, 1] (0 = off), not {}",
            self.min_p
        );
        Ok(())
    }
}

/// Entropy in nats of `softmax(logits)`, `H = −Σ_v p_v log p_v = logsumexp(z) − Σ_v p_v z_v`.
/// Tokens with a non-finite logit (masked out) carry no mass.
pub fn entropy(logits: &[f32]) -> f32 {
    kernels::entropy(logits)
}

/// The processed weights of one logits row, unnormalised, written into `w` (zeros for
/// removed tokens); returns their sum. Greedy puts weight 1 on the arg-max.
pub fn weights(logits: &[f32], t: &Truncation, w: &mut Vec<f32>) -> f64 {
    w.resize(logits.len(), 0.0);
    if t.temperature <= 0.0 {
        w.fill(0.0);
        w[kernels::argmax(logits)] = 1.0;
        return 1.0;
    }
    let total = kernels::softmax_weights(logits, 1.0 / t.temperature, w);
    let (top_k, top_p) = (t.top_k, t.top_p < 1.0);
    if t.min_p <= 0.0 && top_k == 0 && !top_p {
        return total;
    }
    // top-k and top-p see the full distribution; the mass of top-p is that of all tokens
    if top_k > 0 || top_p {
        let mass = if top_p {
            t.top_p as f64 * total
        } else {
            f64::INFINITY
        };
        kernels::keep_top(w, top_k, mass);
    }
    if t.min_p > 0.0 {
        // p_i ≥ min_p · max p ⇔ w_i ≥ min_p · max w (the same normaliser). The most likely
        // token always survives top-k and top-p, so the maximum is taken after them.
        let top = kernels::finite_max(w);
        kernels::drop_below(w, t.min_p * top);
    }
    kernels::sum(w)
}

/// The processed probabilities of one logits row (zeros for removed tokens).
pub fn probabilities(logits: &[f32], t: &Truncation) -> Vec<f32> {
    let mut w = Vec::new();
    let total = weights(logits, t, &mut w);
    if total > 0.0 {
        w.iter_mut().for_each(|x| *x = (*x as f64 / total) as f32);
    }
    w
}

/// One token drawn from the processed distribution of `logits` with the uniform
/// `u ∈ [0, 1)`, and its log-probability under that distribution (0 for greedy).
/// `scratch` holds the weights. `None` when no token has a finite logit (or +∞).
pub fn sample_token(
    logits: &[f32],
    t: &Truncation,
    u: f32,
    scratch: &mut Vec<f32>,
) -> Option<(usize, f32)> {
    if t.temperature <= 0.0 {
        let tok = kernels::argmax(logits);
        return (logits.get(tok)? > &f32::NEG_INFINITY).then_some((tok, 0.0));
    }
    let total = weights(logits, t, scratch);
    if total.is_nan() || total <= 0.0 {
        return None;
    }
    let tok = kernels::draw(scratch, total, u);
    Some((tok, (scratch[tok] as f64 / total).ln() as f32))
}

/// Draws an index from `p` (which sums to 1).
pub fn draw(p: &[f32], rng: &mut impl Rng) -> usize {
    kernels::draw(p, 1.0, rng.random())
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
    fn settings_out_of_range_are_errors() {
        assert!(OFF.check("s").is_ok());
        for (bad, field) in [
            (
                Truncation {
                    temperature: -0.5,
                    ..OFF
                },
                "temperature",
            ),
            (
                Truncation {
                    temperature: f32::NAN,
                    ..OFF
                },
                "temperature",
            ),
            (Truncation { top_p: 0.0, ..OFF }, "top_p"),
            (Truncation { top_p: 1.5, ..OFF }, "top_p"),
            (Truncation { min_p: -0.1, ..OFF }, "min_p"),
        ] {
            let e = bad.check("local sampler").unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("local sampler: {field} must be")),
                "{e}"
            );
        }
    }

    #[test]
    fn sampled_token_and_its_logprob() {
        // logits ln(0.5), ln(0.3), ln(0.2) at T = 1: u = 0.6 passes 0.5 and stops in the
        // second token (0.5 + 0.3 = 0.8 > 0.6); log-prob ln 0.3 = −1.203973
        let z = ln(&[0.5, 0.3, 0.2]);
        let mut scratch = Vec::new();
        let (tok, lp) = sample_token(&z, &OFF, 0.6, &mut scratch).unwrap();
        assert_eq!(tok, 1);
        assert!((lp - 0.3f32.ln()).abs() < 1e-6, "{lp}");
        // top-k 2 renormalises 0.5, 0.3 → 0.625, 0.375: u = 0.6 is in the first token
        // (0.625), log-prob ln 0.625 = −0.470004
        let top2 = Truncation { top_k: 2, ..OFF };
        let (tok, lp) = sample_token(&z, &top2, 0.6, &mut scratch).unwrap();
        assert_eq!(tok, 0);
        assert!((lp - 0.625f32.ln()).abs() < 1e-6, "{lp}");
        // greedy: the arg-max, log-prob 0, whatever u is
        let greedy = Truncation {
            temperature: 0.0,
            ..OFF
        };
        assert_eq!(
            sample_token(&z, &greedy, 0.99, &mut scratch),
            Some((0, 0.0))
        );
        // a row with nothing left to draw, sampled or greedy
        let masked = [f32::NEG_INFINITY, f32::NAN];
        assert_eq!(sample_token(&masked, &OFF, 0.5, &mut scratch), None);
        assert_eq!(sample_token(&masked, &greedy, 0.5, &mut scratch), None);
    }

    #[test]
    fn truncations_combined() {
        // p = 0.4, 0.25, 0.2, 0.1, 0.05. top-k 4 drops 0.05; top-p 0.7 over the full
        // distribution keeps 0.4 (0 before it), 0.25 (0.4 < 0.7), 0.2 (0.65 < 0.7) and
        // stops at 0.1 (0.85 ≥ 0.7); min-p 0.55 drops p < 0.55·0.4 = 0.22, i.e. 0.2.
        // Kept 0.4, 0.25 → /0.65: 0.615385, 0.384615
        let z = ln(&[0.25, 0.05, 0.4, 0.1, 0.2]);
        let t = Truncation {
            top_k: 4,
            top_p: 0.7,
            min_p: 0.55,
            ..OFF
        };
        close(
            &probabilities(&z, &t),
            &[0.25 / 0.65, 0.0, 0.4 / 0.65, 0.0, 0.0],
        );
        // top-p's mass is that of all tokens, not of top-k's survivors: with top-k 2
        // (0.4, 0.25 left, 0.65 of the mass) top-p 0.5 still keeps both (0.4 < 0.5)
        close(
            &probabilities(
                &z,
                &Truncation {
                    top_k: 2,
                    top_p: 0.5,
                    ..OFF
                },
            ),
            &[0.25 / 0.65, 0.0, 0.4 / 0.65, 0.0, 0.0],
        );
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
