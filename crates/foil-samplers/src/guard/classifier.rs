//! GUARD's prompt classifier and the features retrieval uses.
//!
//! GUARD (methods.md §12, [recon]) embeds a prompt as the mean of a layer's hidden states,
//! `z = (1/L) Σ_j h_j`, and flags it as a forget prompt when `MLP(z) > 0.5`. Here, so that
//! the classifier needs neither the policy nor a sentence encoder and is trained once from
//! the forget/retain prompts alone [recon, a deliberate simplification]:
//!
//! ```text
//! x(prompt) = L2-normalised counts of the character n-grams (n = 1..=ngram_max) of
//!             "^prompt$", hashed (FNV-1a) into 2^dim_bits buckets
//! p_forget  = σ(w·x + b),   forget ⇔ p_forget > threshold (0.5 [secondary])
//! ```
//!
//! `w, b` minimise the class-balanced logistic loss
//! `(1/N) Σ_i c_i · BCE(σ(w·x_i + b), y_i) + (l2/2)‖w‖²`, `c_i = N / (2·N_{y_i})`, by
//! full-batch gradient descent from zero (deterministic). Retrieval of the forgotten answer
//! `a*` uses the same features: the answer of the stored forget prompt with the highest
//! cosine `x(prompt)·x(f)` (the paper compares the prompt with the answers through SBERT
//! [recon]; with no shared words between a question and its answer, nearest forget
//! prompt is what a bag-of-characters encoder can do).

use serde::{Deserialize, Serialize};

/// A sparse feature vector: (bucket, value), buckets sorted and distinct.
pub type Features = Vec<(usize, f32)>;

/// Classifier options.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClassifierOptions {
    /// Longest character n-gram.
    pub ngram_max: usize,
    /// log2 of the number of hash buckets.
    pub dim_bits: u32,
    /// Full-batch gradient-descent steps.
    pub epochs: usize,
    pub lr: f32,
    pub l2: f32,
}

impl Default for ClassifierOptions {
    fn default() -> Self {
        Self {
            ngram_max: 3,
            dim_bits: 14,
            epochs: 300,
            lr: 4.0,
            l2: 1e-5,
        }
    }
}

fn fnv1a(chars: &[char]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for c in chars {
        for b in (*c as u32).to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The hashed character n-gram features of `text` (see the module doc).
pub fn features(text: &str, ngram_max: usize, dim_bits: u32) -> Features {
    let chars: Vec<char> = std::iter::once('^')
        .chain(text.chars())
        .chain(std::iter::once('$'))
        .collect();
    let dim = 1usize << dim_bits.min(30);
    let mut counts = std::collections::BTreeMap::new();
    for n in 1..=ngram_max.max(1) {
        for w in chars.windows(n) {
            *counts
                .entry((fnv1a(w) as usize) & (dim - 1))
                .or_insert(0.0f32) += 1.0;
        }
    }
    let norm = counts.values().map(|x| x * x).sum::<f32>().sqrt();
    counts.into_iter().map(|(k, v)| (k, v / norm)).collect()
}

/// Dot product of two sparse vectors (the cosine, for normalised ones).
pub fn dot(a: &Features, b: &Features) -> f32 {
    let (mut i, mut j, mut s) = (0, 0, 0.0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                s += a[i].1 * b[j].1;
                i += 1;
                j += 1;
            }
        }
    }
    s
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// A trained logistic regression over prompt features.
#[derive(Debug, Clone)]
pub struct PromptClassifier {
    pub weights: Vec<f32>,
    pub bias: f32,
    pub opts: ClassifierOptions,
}

impl PromptClassifier {
    /// Trains on `(prompt, is_forget)` examples; needs both classes.
    pub fn train(examples: &[(&str, bool)], opts: &ClassifierOptions) -> anyhow::Result<Self> {
        let xs: Vec<Features> = examples
            .iter()
            .map(|(p, _)| features(p, opts.ngram_max, opts.dim_bits))
            .collect();
        let ys: Vec<bool> = examples.iter().map(|(_, y)| *y).collect();
        Self::fit(&xs, &ys, 1usize << opts.dim_bits.min(30), opts)
    }

    /// Gradient descent on given feature vectors (see the module doc).
    pub fn fit(
        xs: &[Features],
        ys: &[bool],
        dim: usize,
        opts: &ClassifierOptions,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            xs.len() == ys.len(),
            "classifier: features and labels differ in number"
        );
        let n = xs.len() as f32;
        let pos = ys.iter().filter(|y| **y).count();
        anyhow::ensure!(
            pos > 0 && pos < ys.len(),
            "guard classifier: needs both forget and retain prompts, got {pos} forget of {}",
            ys.len()
        );
        anyhow::ensure!(
            xs.iter().flatten().all(|(k, _)| *k < dim),
            "classifier: a feature index exceeds the dimension {dim}"
        );
        let c_pos = n / (2.0 * pos as f32);
        let c_neg = n / (2.0 * (ys.len() - pos) as f32);
        let mut w = vec![0.0f32; dim];
        let mut b = 0.0f32;
        let mut grad = vec![0.0f32; dim];
        for _ in 0..opts.epochs {
            grad.iter_mut().for_each(|g| *g = 0.0);
            let mut gb = 0.0;
            for (x, &y) in xs.iter().zip(ys) {
                let z: f32 = b + x.iter().map(|(k, v)| w[*k] * v).sum::<f32>();
                let c = if y { c_pos } else { c_neg };
                let e = c * (sigmoid(z) - if y { 1.0 } else { 0.0 }) / n;
                gb += e;
                for (k, v) in x {
                    grad[*k] += e * v;
                }
            }
            for (wk, gk) in w.iter_mut().zip(&grad) {
                *wk -= opts.lr * (gk + opts.l2 * *wk);
            }
            b -= opts.lr * gb;
        }
        Ok(Self {
            weights: w,
            bias: b,
            opts: opts.clone(),
        })
    }

    /// `p_forget` of feature vector `x`.
    pub fn prob_of(&self, x: &Features) -> f32 {
        sigmoid(
            self.bias
                + x.iter()
                    .map(|(k, v)| self.weights.get(*k).unwrap_or(&0.0) * v)
                    .sum::<f32>(),
        )
    }

    /// `p_forget` of a prompt.
    pub fn prob(&self, prompt: &str) -> f32 {
        self.prob_of(&features(prompt, self.opts.ngram_max, self.opts.dim_bits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_step_by_hand() {
        // x1 = e_0 (forget), x2 = e_1 (retain); N = 2, one of each → c = 2/(2·1) = 1.
        // From w = 0, b = 0: p = 0.5 for both.
        //   ∂w_0 = (1/2)·(0.5 − 1)·1 = −0.25,  ∂w_1 = (1/2)·(0.5 − 0)·1 = 0.25,
        //   ∂b   = (1/2)·(−0.5 + 0.5) = 0
        // lr = 1, l2 = 0 → w = (0.25, −0.25, 0), b = 0; p(x1) = σ(0.25) = 0.5622
        let opts = ClassifierOptions {
            epochs: 1,
            lr: 1.0,
            l2: 0.0,
            ..ClassifierOptions::default()
        };
        let c = PromptClassifier::fit(&[vec![(0, 1.0)], vec![(1, 1.0)]], &[true, false], 3, &opts)
            .unwrap();
        assert!((c.weights[0] - 0.25).abs() < 1e-6);
        assert!((c.weights[1] + 0.25).abs() < 1e-6);
        assert_eq!(c.weights[2], 0.0);
        assert!(c.bias.abs() < 1e-7);
        assert!((c.prob_of(&vec![(0, 1.0)]) - 0.562_177).abs() < 1e-5);
        // one class only: an error, not a degenerate model
        assert!(PromptClassifier::fit(&[vec![(0, 1.0)]], &[true], 3, &opts).is_err());
    }

    #[test]
    fn separates_a_tiny_set_and_features_are_unit() {
        // forget prompts are about "zorbex"/"quilm", retain about others
        let ex = [
            ("who:zorbex=", true),
            ("who:quilm=", true),
            ("who:anna=", false),
            ("who:bert=", false),
            ("who:carla=", false),
            ("who:dima=", false),
        ];
        let c = PromptClassifier::train(&ex, &ClassifierOptions::default()).unwrap();
        for (p, y) in ex {
            assert_eq!(c.prob(p) > 0.5, y, "{p}: {}", c.prob(p));
        }
        // a paraphrase that keeps the name stays flagged
        assert!(c.prob("what:zorbex=") > 0.5);
        let x = features("who:anna=", 3, 14);
        assert!((dot(&x, &x) - 1.0).abs() < 1e-5);
        // "^ab$", n ≤ 2: ^ a b $ ^a ab b$ → 7 distinct n-grams (barring a hash collision)
        assert_eq!(features("ab", 2, 20).len(), 7);
    }
}
