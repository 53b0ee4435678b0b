//! A synthetic missing-not-at-random (MNAR) click log with known true relevance, the
//! semi-synthetic setting of Saito et al. 2020 (WSDM, DOI 10.1145/3336191.3371783;
//! `../shared/docs/methods.md` §19, "Tiny experiment").
//!
//! ```text
//! u_u, v_i ~ N(0, σ² I_d)            σ² = logit_std / √d, so u·v has std ≈ logit_std
//! γ_ui = σ(u_u · v_i)                true relevance P(R = 1)            [paper, recon]
//! pop_i = (rank_i + 1) / items       rank_i: a seeded permutation of 0..items
//! θ_i  = pop_i ^ p                   item exposure P(O = 1), p = popularity_power
//! Y_ui ~ Bernoulli(θ_i · γ_ui)       a click: exposed AND relevant (Y = O·R)
//! ```
//!
//! Exposure depends on the item only and not on relevance, so every pair is missing not
//! at random through θ: an unclicked pair is either irrelevant or never shown. The true
//! γ of every pair is kept for evaluation (an MAR ground truth a real log never has).
//! The latent dimension, σ and the popularity law are our choices [recon]; the paper
//! builds its semi-synthetic data from real ratings.

use rand::Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

/// Recipe part (inside the `relmf` stage): `data: {users: 1000, items: 500, popularity_power: 1.0}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Mnar {
    pub users: usize,
    pub items: usize,
    /// Dimension `d` of the true latent factors.
    pub dim: usize,
    /// Standard deviation of the true logits `u·v` (sets how peaked γ is).
    pub logit_std: f64,
    /// `p` in `θ_i = pop_i^p`: 0 is missing at random, larger is more skewed.
    pub popularity_power: f64,
    /// Extra data seed, mixed with the run seed.
    pub seed: u64,
}

impl Default for Mnar {
    fn default() -> Self {
        Self {
            users: 1000,
            items: 500,
            dim: 8,
            logit_std: 2.0,
            popularity_power: 1.0,
            seed: 0,
        }
    }
}

/// One generated log.
#[derive(Debug, Clone)]
pub struct ClickLog {
    pub users: usize,
    pub items: usize,
    /// True relevance `γ`, row-major `[users, items]`.
    pub relevance: Vec<f64>,
    /// True exposure `θ_i`, one per item.
    pub exposure: Vec<f64>,
    /// Clicks `Y`, row-major `[users, items]`.
    pub clicks: Vec<bool>,
}

impl Mnar {
    /// Checks the sizes and powers before anything is drawn.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.users >= 1 && self.items >= 2 && self.dim >= 1,
            "relmf data: need users ≥ 1, items ≥ 2 and dim ≥ 1, got {} × {} (dim {})",
            self.users,
            self.items,
            self.dim
        );
        anyhow::ensure!(
            self.logit_std.is_finite() && self.logit_std > 0.0,
            "relmf data: logit_std must be > 0, got {}",
            self.logit_std
        );
        anyhow::ensure!(
            self.popularity_power.is_finite() && self.popularity_power >= 0.0,
            "relmf data: popularity_power must be ≥ 0, got {}",
            self.popularity_power
        );
        Ok(())
    }

    /// Draws the log from `rng` (deterministic for a seeded generator).
    pub fn generate(&self, rng: &mut impl Rng) -> anyhow::Result<ClickLog> {
        self.validate()?;
        let (n_u, n_i, d) = (self.users, self.items, self.dim);
        let sd = (self.logit_std / (d as f64).sqrt()).sqrt();
        let normal = Normal::new(0.0, sd)?;
        let u: Vec<f64> = (0..n_u * d).map(|_| normal.sample(rng)).collect();
        let v: Vec<f64> = (0..n_i * d).map(|_| normal.sample(rng)).collect();
        // a seeded permutation of ranks: item i gets popularity (rank_i + 1) / items
        let mut rank: Vec<usize> = (0..n_i).collect();
        rand::seq::SliceRandom::shuffle(rank.as_mut_slice(), rng);
        let exposure: Vec<f64> = rank
            .iter()
            .map(|&r| ((r + 1) as f64 / n_i as f64).powf(self.popularity_power))
            .collect();
        let mut relevance = Vec::with_capacity(n_u * n_i);
        let mut clicks = Vec::with_capacity(n_u * n_i);
        for a in 0..n_u {
            for (i, &theta) in exposure.iter().enumerate() {
                let dot: f64 = (0..d).map(|k| u[a * d + k] * v[i * d + k]).sum();
                let gamma = sigmoid(dot);
                relevance.push(gamma);
                clicks.push(rng.random::<f64>() < theta * gamma);
            }
        }
        Ok(ClickLog {
            users: n_u,
            items: n_i,
            relevance,
            exposure,
            clicks,
        })
    }
}

/// `σ(x) = 1 / (1 + e^(−x))`.
pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// `(user, item)` pairs.
pub type Pairs = Vec<(usize, usize)>;

impl ClickLog {
    /// Training clicks per item, `n_i⁺`.
    pub fn item_clicks(&self) -> Vec<usize> {
        let mut n = vec![0; self.items];
        for (j, &c) in self.clicks.iter().enumerate() {
            if c {
                n[j % self.items] += 1;
            }
        }
        n
    }

    /// `(user, item)` of every clicked pair and of every unclicked (unlabeled) pair.
    pub fn split_pairs(&self) -> (Pairs, Pairs) {
        let (mut pos, mut unl) = (Vec::new(), Vec::new());
        for (j, &c) in self.clicks.iter().enumerate() {
            let p = (j / self.items, j % self.items);
            if c { pos.push(p) } else { unl.push(p) }
        }
        (pos, unl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn small() -> Mnar {
        Mnar {
            users: 200,
            items: 40,
            ..Mnar::default()
        }
    }

    #[test]
    fn same_seed_same_log_and_exposure_is_a_power_of_rank() {
        let m = small();
        let a = m
            .generate(&mut rand_chacha::ChaCha8Rng::seed_from_u64(3))
            .unwrap();
        let b = m
            .generate(&mut rand_chacha::ChaCha8Rng::seed_from_u64(3))
            .unwrap();
        assert_eq!(a.clicks, b.clicks);
        assert_eq!(a.relevance, b.relevance);
        // p = 1: the exposures are exactly {1/40, 2/40, …, 40/40} in some order
        let mut e = a.exposure.clone();
        e.sort_by(|x, y| x.partial_cmp(y).unwrap());
        for (r, x) in e.iter().enumerate() {
            assert!((x - (r + 1) as f64 / 40.0).abs() < 1e-12);
        }
        // p = 2 squares them: the rarest item has (1/40)² = 0.000625
        let sq = Mnar {
            popularity_power: 2.0,
            ..small()
        }
        .generate(&mut rand_chacha::ChaCha8Rng::seed_from_u64(3))
        .unwrap();
        let min = sq.exposure.iter().cloned().fold(f64::INFINITY, f64::min);
        assert!((min - 0.000625).abs() < 1e-12);
    }

    #[test]
    fn clicks_follow_exposure_times_relevance() {
        let log = small()
            .generate(&mut rand_chacha::ChaCha8Rng::seed_from_u64(5))
            .unwrap();
        // E[clicks of item i] = Σ_u θ_i γ_ui; over all items the count is within 5 % of it
        let expected: f64 = (0..log.users * log.items)
            .map(|j| log.exposure[j % log.items] * log.relevance[j])
            .sum();
        let got = log.clicks.iter().filter(|&&c| c).count() as f64;
        assert!(
            (got - expected).abs() / expected < 0.05,
            "{got} vs {expected}"
        );
        // the most exposed item is clicked more than the least exposed one
        let n = log.item_clicks();
        let by = |f: fn(f64, f64) -> bool| {
            (0..log.items)
                .reduce(|a, b| {
                    if f(log.exposure[b], log.exposure[a]) {
                        b
                    } else {
                        a
                    }
                })
                .unwrap()
        };
        assert!(n[by(|x, y| x > y)] > n[by(|x, y| x < y)]);
        let (pos, unl) = log.split_pairs();
        assert_eq!(pos.len() + unl.len(), 200 * 40);
        assert_eq!(pos.len(), n.iter().sum::<usize>());
    }

    #[test]
    fn bad_sizes_are_errors() {
        let m = Mnar {
            items: 1,
            ..Mnar::default()
        };
        let e = m
            .generate(&mut rand_chacha::ChaCha8Rng::seed_from_u64(1))
            .unwrap_err();
        assert!(e.to_string().contains("items ≥ 2"), "{e}");
    }
}
