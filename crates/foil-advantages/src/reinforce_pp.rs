//! `reinforce_pp`: REINFORCE++ (Hu et al. 2025, "REINFORCE++: A Simple and Efficient
//! Approach for Aligning Large Language Models", arXiv 2501.03262): critic-free REINFORCE
//! whose advantages are normalised over the whole batch — every response token of every
//! completion the step trains on — rather than within each group.
//!
//! Two forms, as verl implements them (`verl/trainer/ppo/core_algos.py`):
//!
//! ```text
//! baseline: group_mean  (default; verl `compute_reinforce_plus_plus_baseline_outcome_advantage`,
//!                        "REINFORCE++-baseline", the paper's form for k samples per prompt)
//!     v_{i,t} = r_i − mean_{j ∈ group(i)} r_j          (a group of one: v_{i,t} = r_i)
//!
//! baseline: none        (verl `compute_reinforce_plus_plus_outcome_advantage`)
//!     outcome reward on the last token, discounted return to go:
//!     v_{i,t} = γ^(L_i − 1 − t) · r_i                   (t = 0..L_i−1; γ = 1: v_{i,t} = r_i)
//!
//! then over the N = Σ_i L_i response tokens of the batch (verl `masked_whiten`: token-
//! weighted, Bessel-corrected, eps inside the square root):
//!     μ  = (1/N) Σ_{i,t} v_{i,t}
//!     σ² = Σ_{i,t} (v_{i,t} − μ)² / (N − 1)             (0 when N < 2)
//!     A_{i,t} = (v_{i,t} − μ) / sqrt(σ² + eps)
//! ```
//!
//! Longer completions weigh more in μ and σ (each token counts once). Because μ is the
//! batch's token mean, a group whose rewards are all equal (zero after the group-mean
//! baseline) still gets the uniform advantage −μ/σ — unlike GRPO, where it gets exactly 0.
//! "The batch" is what the estimator is handed: the groups kept at one RL step.
//!
//! A completion whose tokens share one value (always with `group_mean`; with `none` when
//! γ = 1) gets a [`Credit::Sequence`]; otherwise a [`Credit::Token`] per token.

use foil_core::anyhow::{Result, ensure};
use foil_core::{AdvantageEstimator, Credit, ScoredGroup, register_part};
use serde::{Deserialize, Serialize};

use crate::group::{mean, rewards};

/// What is subtracted from the reward before the batch normalisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Baseline {
    /// The mean reward of the completion's group (REINFORCE++-baseline).
    #[default]
    GroupMean,
    /// Nothing: the (discounted) return itself (REINFORCE++).
    None,
}

/// Recipe part: `advantage: {type: reinforce_pp, baseline: group_mean}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReinforcePp {
    /// `group_mean` (REINFORCE++-baseline) or `none` (REINFORCE++).
    pub baseline: Baseline,
    /// Discount γ of the return to go (`baseline: none` only; must be 1 with `group_mean`).
    pub gamma: f32,
    /// Added to the variance before its square root (verl's 1e-8).
    pub eps: f32,
}

impl Default for ReinforcePp {
    fn default() -> Self {
        Self {
            baseline: Baseline::GroupMean,
            gamma: 1.0,
            eps: 1e-8,
        }
    }
}

register_part!(
    AdvantageEstimator,
    "reinforce_pp",
    ReinforcePp,
    "REINFORCE++: (group-mean-baselined) return, whitened over every token of the batch (Hu et al. 2025)"
);

impl ReinforcePp {
    /// The unnormalised per-token values `v_{i,t}` of one group, one vector per completion.
    fn values(&self, r: &[f64], lens: &[usize]) -> Vec<Vec<f64>> {
        let gamma = f64::from(self.gamma);
        match self.baseline {
            Baseline::GroupMean => {
                let b = if r.len() < 2 { 0.0 } else { mean(r) };
                r.iter().zip(lens).map(|(x, &l)| vec![x - b; l]).collect()
            }
            Baseline::None => r
                .iter()
                .zip(lens)
                .map(|(x, &l)| (0..l).map(|t| gamma.powi((l - 1 - t) as i32) * x).collect())
                .collect(),
        }
    }

    /// Whitens every token value of the batch in place (see the module docs).
    fn whiten(&self, values: &mut [Vec<Vec<f64>>]) {
        let all = || values.iter().flatten().flatten();
        let n = all().count();
        if n == 0 {
            return;
        }
        let mu = all().sum::<f64>() / n as f64;
        let var = if n < 2 {
            0.0
        } else {
            all().map(|v| (v - mu).powi(2)).sum::<f64>() / (n - 1) as f64
        };
        let denom = (var + f64::from(self.eps)).sqrt();
        for v in values.iter_mut().flatten().flatten() {
            *v = if denom > 0.0 { (*v - mu) / denom } else { 0.0 };
        }
    }
}

#[typetag::serde(name = "reinforce_pp")]
impl AdvantageEstimator for ReinforcePp {
    fn estimate(&self, groups: &[ScoredGroup]) -> Result<Vec<Vec<Credit>>> {
        ensure!(
            self.gamma > 0.0 && self.gamma <= 1.0,
            "reinforce_pp: gamma must be in (0, 1], got {}",
            self.gamma
        );
        ensure!(
            self.baseline == Baseline::None || self.gamma == 1.0,
            "reinforce_pp: gamma {} only applies to `baseline: none` (the group-mean form \
             gives every token the same value); set gamma: 1.0",
            self.gamma
        );
        ensure!(self.eps >= 0.0, "reinforce_pp: eps must be ≥ 0");
        let mut values = Vec::with_capacity(groups.len());
        for (i, g) in groups.iter().enumerate() {
            let r = rewards(i, g)?;
            let lens: Vec<usize> = g.group.completions.iter().map(|c| c.tokens.len()).collect();
            values.push(self.values(&r, &lens));
        }
        self.whiten(&mut values);
        Ok(values
            .into_iter()
            .map(|group| {
                group
                    .into_iter()
                    .map(|v| match v.first() {
                        // an empty completion has no token to credit (and is never trained on)
                        None => Credit::Sequence(0.0),
                        Some(&first) if v.iter().all(|&x| x == first) => {
                            Credit::Sequence(first as f32)
                        }
                        Some(_) => Credit::Token(v.into_iter().map(|x| x as f32).collect()),
                    })
                    .collect()
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::testing::{scored, scored_lens, seq};

    fn close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-4, "got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn group_mean_baseline_then_batch_whitening() {
        // group 1: r = [1, 0], lengths [1, 3] → group mean 0.5 → v = [0.5 ×1 token, −0.5 ×3]
        // group 2: r = [0, 0], lengths [2, 2] → v = [0 ×2, 0 ×2]
        // N = 8 tokens, Σv = 0.5 − 1.5 = −1 → μ = −0.125
        // deviations 0.625 (×1), −0.375 (×3), 0.125 (×4)
        // Σ dev² = 0.390625 + 3·0.140625 + 4·0.015625 = 0.390625 + 0.421875 + 0.0625 = 0.875
        // σ² = 0.875/7 = 0.125, sqrt(0.125 + 1e-8) = 0.3535534
        // A = 0.625/0.3535534 = 1.767767, −0.375/0.3535534 = −1.060660,
        //     0.125/0.3535534 = 0.353553 (the all-equal group is not at 0)
        let out = ReinforcePp::default()
            .estimate(&[
                scored_lens(&[1.0, 0.0], &[1, 3], &[]),
                scored_lens(&[0.0, 0.0], &[2, 2], &[]),
            ])
            .unwrap();
        close(&seq(&out[0]), &[1.767767, -1.06066]);
        close(&seq(&out[1]), &[0.353553, 0.353553]);
    }

    #[test]
    fn no_baseline_whitens_the_raw_return() {
        // r = [1, 0], lengths [1, 3], γ = 1 → v = [1 ×1, 0 ×3]
        // N = 4, μ = 0.25, deviations 0.75, −0.25 ×3; Σ dev² = 0.5625 + 0.1875 = 0.75
        // σ² = 0.75/3 = 0.25, σ = 0.5 → A = [1.5, −0.5]
        let p = ReinforcePp {
            baseline: Baseline::None,
            ..ReinforcePp::default()
        };
        let out = p
            .estimate(&[scored_lens(&[1.0, 0.0], &[1, 3], &[])])
            .unwrap();
        close(&seq(&out[0]), &[1.5, -0.5]);
    }

    #[test]
    fn discounted_return_gives_per_token_credit() {
        // γ = 0.5, r = [1, 0], lengths [3, 1]:
        // completion 0: v_t = 0.5^(2−t)·1 = [0.25, 0.5, 1.0]; completion 1: v = [0]
        // N = 4, Σv = 1.75, μ = 0.4375
        // deviations −0.1875, 0.0625, 0.5625, −0.4375
        // Σ dev² = 0.03515625 + 0.00390625 + 0.31640625 + 0.19140625 = 0.546875
        // σ² = 0.546875/3 = 0.18229167, σ = 0.42695628
        // A = [−0.439155, 0.146385, 1.317465], [−1.024695]
        let p = ReinforcePp {
            baseline: Baseline::None,
            gamma: 0.5,
            ..ReinforcePp::default()
        };
        let out = p
            .estimate(&[scored_lens(&[1.0, 0.0], &[3, 1], &[])])
            .unwrap();
        match &out[0][0] {
            Credit::Token(a) => close(a, &[-0.439155, 0.146385, 1.317465]),
            other => panic!("expected token credit, got {other:?}"),
        }
        close(&seq(&out[0][1..]), &[-1.024695]);
    }

    #[test]
    fn degenerate_batches() {
        // every token equal → every deviation 0 → A = 0/sqrt(0 + eps) = 0
        let out = ReinforcePp::default()
            .estimate(&[scored_lens(&[1.0, 1.0], &[2, 3], &[])])
            .unwrap();
        close(&seq(&out[0]), &[0.0, 0.0]);
        // one token in the batch: σ² = 0, deviation 0 → 0; empty completions carry no token
        let out = ReinforcePp::default()
            .estimate(&[scored_lens(&[1.0, 0.0], &[1, 0], &[])])
            .unwrap();
        close(&seq(&out[0]), &[0.0, 0.0]);
        // no tokens at all, and no groups
        let out = ReinforcePp::default().estimate(&[scored(&[1.0])]).unwrap();
        close(&seq(&out[0]), &[0.0]);
        assert!(ReinforcePp::default().estimate(&[]).unwrap().is_empty());
    }

    #[test]
    fn gamma_is_checked() {
        let g = [scored_lens(&[1.0, 0.0], &[2, 2], &[])];
        let p = ReinforcePp {
            gamma: 0.9,
            ..ReinforcePp::default()
        };
        assert!(p.estimate(&g).is_err()); // gamma with group_mean
        let p = ReinforcePp {
            baseline: Baseline::None,
            gamma: 0.0,
            ..ReinforcePp::default()
        };
        assert!(p.estimate(&g).is_err());
        let mut bad = scored(&[1.0, 0.0]);
        bad.verdicts.pop();
        assert!(ReinforcePp::default().estimate(&[bad]).is_err());
    }

    #[test]
    fn deserializes_by_name_with_defaults() {
        let e: Box<dyn AdvantageEstimator> =
            serde_json::from_str(r#"{"type":"reinforce_pp","baseline":"none"}"#).unwrap();
        let out = e
            .estimate(&[scored_lens(&[1.0, 0.0], &[1, 3], &[])])
            .unwrap();
        close(&seq(&out[0]), &[1.5, -0.5]);
        assert!(
            serde_json::from_str::<Box<dyn AdvantageEstimator>>(
                r#"{"type":"reinforce_pp","baseline":"mean"}"#
            )
            .is_err()
        );
        assert_eq!(
            foil_core::registry::defaults_of::<ReinforcePp>(),
            serde_json::json!({"baseline": "group_mean", "gamma": 1.0, "eps": 1e-8f32})
        );
        assert!(foil_core::registry::names_of("AdvantageEstimator").contains(&"reinforce_pp"));
    }
}
