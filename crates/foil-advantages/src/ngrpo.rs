//! `ngrpo`: advantage calibration with a virtual maximum-reward sample (NGRPO, Nan et al.
//! 2025, "NGRPO: Negative-enhanced Group Relative Policy Optimization", arXiv 2509.18851;
//! `compute_ngrpo_outcome_advantage` in the official code).
//!
//! The group statistics include `m` virtual samples with the maximum reward, which are
//! never generated nor trained on:
//!
//! ```text
//! R' = R ∪ {r_max} × m
//! μ' = mean(R'),   σ' = std(R')          (unbiased, denominator |R'| − 1)
//! A_i = (r_i − μ') / (σ' + eps)          for the real samples only
//! ```
//!
//! An all-incorrect group therefore gets a uniform negative advantage (−1/3 for G = 8,
//! binary rewards) where GRPO's is exactly zero: negatives carry gradient. A group of one
//! real sample uses μ' = 0, σ' = 1 (as the reference code does for size-one groups).

use foil_core::anyhow::Result;
use foil_core::{AdvantageEstimator, Credit, ScoredGroup, register_part};
use serde::{Deserialize, Serialize};

use crate::group::{mean, sequence_credits};

/// Recipe part: `advantage: {type: ngrpo, max_reward: 1.0, virtual_samples: 1}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Ngrpo {
    /// Reward of the virtual sample(s) (`max_reward` in the reference code).
    pub max_reward: f32,
    /// How many virtual samples join the statistics (`add_max_reward_num`; the paper
    /// finds more than one over-explores).
    pub virtual_samples: usize,
    /// Added to σ' before dividing.
    pub eps: f32,
}

impl Default for Ngrpo {
    fn default() -> Self {
        Self {
            max_reward: 1.0,
            virtual_samples: 1,
            eps: 1e-6,
        }
    }
}

register_part!(
    AdvantageEstimator,
    "ngrpo",
    Ngrpo,
    "group advantage with a virtual max-reward sample in the statistics (NGRPO, Nan et al. 2025)"
);

impl Ngrpo {
    /// The advantages of one group's rewards.
    pub fn advantages(&self, r: &[f64]) -> Vec<f64> {
        if r.len() < 2 {
            // size-one groups: μ' = 0, σ' = 1
            return r.to_vec();
        }
        let mut all = r.to_vec();
        all.extend(std::iter::repeat_n(
            f64::from(self.max_reward),
            self.virtual_samples,
        ));
        let mu = mean(&all);
        let var = all.iter().map(|x| (x - mu).powi(2)).sum::<f64>() / (all.len() - 1) as f64;
        let denom = var.sqrt() + f64::from(self.eps);
        r.iter().map(|x| (x - mu) / denom).collect()
    }
}

#[typetag::serde(name = "ngrpo")]
impl AdvantageEstimator for Ngrpo {
    fn estimate(&self, groups: &[ScoredGroup]) -> Result<Vec<Vec<Credit>>> {
        sequence_credits(groups, |r| self.advantages(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::testing::{scored, seq};

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-3, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn one_correct_of_eight() {
        // R' = {1, 0×7, 1}: μ' = 2/9 = 0.2222
        // var = (2·0.7778² + 7·0.2222²)/8 = (1.20988 + 0.34568)/8 = 0.19444, σ' = 0.44096
        // A_correct = 0.7778/0.44096 = 1.7638, A_wrong = −0.2222/0.44096 = −0.5040
        let mut r = vec![0.0; 8];
        r[0] = 1.0;
        let a = seq(&Ngrpo::default().estimate(&[scored(&r)]).unwrap()[0]);
        let mut want = vec![-0.5040; 8];
        want[0] = 1.7638;
        close(&a, &want);
    }

    #[test]
    fn all_wrong_group_gets_a_uniform_negative_advantage() {
        // R' = {0×8, 1}: μ' = 1/9, var = (8/81 + 64/81)/8 = 1/9, σ' = 1/3 → A = −1/3
        let a = seq(&Ngrpo::default().estimate(&[scored(&[0.0; 8])]).unwrap()[0]);
        close(&a, &[-1.0 / 3.0; 8]);
        // GRPO gives exactly zero there
        let g = seq(&crate::Grpo::default()
            .estimate(&[scored(&[0.0; 8])])
            .unwrap()[0]);
        assert_eq!(g, vec![0.0; 8]);
    }

    #[test]
    fn all_correct_group_gets_zero() {
        // R' = {1×9}: std 0 → A = 0/(0 + eps) = 0
        let a = seq(&Ngrpo::default().estimate(&[scored(&[1.0; 8])]).unwrap()[0]);
        close(&a, &[0.0; 8]);
    }

    #[test]
    fn more_virtual_samples_push_negatives_further_down() {
        // all wrong, G = 2, m = 2: R' = {0, 0, 1, 1}, μ' = 0.5, var = 4·0.25/3 = 1/3,
        // σ' = 0.57735 → A = −0.5/0.57735 = −0.8660
        let n = Ngrpo {
            virtual_samples: 2,
            ..Default::default()
        };
        close(
            &seq(&n.estimate(&[scored(&[0.0, 0.0])]).unwrap()[0]),
            &[-0.8660, -0.8660],
        );
    }

    #[test]
    fn size_one_group_uses_unit_statistics() {
        // μ' = 0, σ' = 1 → A = r
        let a = seq(&Ngrpo::default().estimate(&[scored(&[0.7])]).unwrap()[0]);
        close(&a, &[0.7]);
    }
}
