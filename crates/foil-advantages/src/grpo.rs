//! `grpo`: group-relative advantage of GRPO (Shao et al. 2024, "DeepSeekMath: Pushing the
//! Limits of Mathematical Reasoning in Open Language Models", §4.1.2 outcome supervision).
//!
//! For a group of G completions with rewards r_1..r_G:
//!
//! ```text
//! mean = (1/G) Σ_j r_j
//! std  = sqrt( Σ_j (r_j − mean)² / (G − 1) )      (unbiased, like torch.std in verl/TRL)
//! scale: std   A_i = (r_i − mean) / (std + eps)    (GRPO)
//! scale: none  A_i =  r_i − mean                   (Dr. GRPO: Liu et al. 2025,
//!                                                   "Understanding R1-Zero-Like Training:
//!                                                   A Critical Perspective")
//! ```
//!
//! A group of one completion (no baseline) gets A = 0. Every token of a completion shares
//! its advantage ([`Credit::Sequence`]).

use foil_core::anyhow::Result;
use foil_core::{AdvantageEstimator, Credit, ScoredGroup};
use serde::{Deserialize, Serialize};

use crate::group::{mean, sequence_credits};

/// Whether the centred reward is divided by the group's standard deviation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    /// Divide by the unbiased group std plus `eps` (GRPO).
    #[default]
    Std,
    /// Do not divide (Dr. GRPO), removing the difficulty bias of std normalisation.
    None,
}

/// GRPO / Dr. GRPO group-relative advantage.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Grpo {
    /// `std` (GRPO) or `none` (Dr. GRPO).
    pub scale: Scale,
    /// Added to the std before dividing, so all-equal groups give 0 instead of 0/0.
    pub eps: f32,
}

impl Default for Grpo {
    fn default() -> Self {
        Self {
            scale: Scale::Std,
            eps: 1e-6,
        }
    }
}

impl Grpo {
    /// The advantages of one group's rewards.
    pub fn advantages(&self, r: &[f64]) -> Vec<f64> {
        let g = r.len();
        if g < 2 {
            return vec![0.0; g];
        }
        let mu = mean(r);
        let centred = r.iter().map(|x| x - mu);
        match self.scale {
            Scale::None => centred.collect(),
            Scale::Std => {
                let var = r.iter().map(|x| (x - mu).powi(2)).sum::<f64>() / (g - 1) as f64;
                let denom = var.sqrt() + f64::from(self.eps);
                centred.map(|c| c / denom).collect()
            }
        }
    }
}

#[foil_core::typetag::serde(name = "grpo")]
impl AdvantageEstimator for Grpo {
    fn estimate(&self, groups: &[ScoredGroup]) -> Result<Vec<Vec<Credit>>> {
        sequence_credits(groups, |r| self.advantages(r))
    }
}

foil_core::register_part!(
    AdvantageEstimator,
    "grpo",
    Grpo,
    "(r − group mean) / group std (GRPO, Shao et al. 2024); scale: none is Dr. GRPO (Liu et al. 2025)"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::testing::{scored, seq};

    fn close(got: &[f32], want: &[f32], tol: f32) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < tol, "got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn one_correct_of_eight() {
        // r = [1, 0×7]: mean = 1/8 = 0.125.
        // unbiased var = (0.875² + 7·0.125²)/7 = (0.765625 + 0.109375)/7 = 0.875/7 = 0.125
        //   (= 8·0.125·0.875/7), std = sqrt(0.125) = 0.353553.
        // A_correct = 0.875/0.353553 = 2.474874; A_wrong = −0.125/0.353553 = −0.353553.
        let mut r = vec![0.0; 8];
        r[0] = 1.0;
        let out = Grpo::default().estimate(&[scored(&r)]).unwrap();
        let mut want = vec![-0.353553; 8];
        want[0] = 2.474874;
        close(&seq(&out[0]), &want, 1e-4);
    }

    #[test]
    fn dr_grpo_only_centres() {
        // scale none: A = r − mean = [1 − 0.125, 0 − 0.125, …] = [0.875, −0.125×7].
        let mut r = vec![0.0; 8];
        r[0] = 1.0;
        let g = Grpo {
            scale: Scale::None,
            ..Grpo::default()
        };
        let out = g.estimate(&[scored(&r)]).unwrap();
        let mut want = vec![-0.125; 8];
        want[0] = 0.875;
        close(&seq(&out[0]), &want, 1e-6);
    }

    #[test]
    fn non_binary_rewards() {
        // r = [0, 1, 2, 5]: mean = 8/4 = 2; deviations −2, −1, 0, 3;
        // var = (4 + 1 + 0 + 9)/3 = 14/3, std = sqrt(14/3) = 2.160247.
        // A = [−2/2.160247, −1/2.160247, 0, 3/2.160247] = [−0.92582, −0.46291, 0, 1.38873].
        let out = Grpo::default()
            .estimate(&[scored(&[0.0, 1.0, 2.0, 5.0])])
            .unwrap();
        close(&seq(&out[0]), &[-0.92582, -0.46291, 0.0, 1.38873], 1e-4);
    }

    #[test]
    fn degenerate_groups_get_zero() {
        // All equal: every deviation is 0, std = 0, 0/(0 + eps) = 0 (both scales).
        // Size one: no baseline, A = 0. Empty: no credits.
        for scale in [Scale::Std, Scale::None] {
            let g = Grpo {
                scale,
                ..Grpo::default()
            };
            let out = g
                .estimate(&[
                    scored(&[1.0; 4]),
                    scored(&[0.0; 4]),
                    scored(&[1.0]),
                    scored(&[]),
                ])
                .unwrap();
            assert_eq!(seq(&out[0]), [0.0; 4]);
            assert_eq!(seq(&out[1]), [0.0; 4]);
            assert_eq!(seq(&out[2]), [0.0]);
            assert!(out[3].is_empty());
        }
    }

    #[test]
    fn groups_are_independent() {
        // Group 1 r = [1, 0, 0, 0]: mean 0.25, deviations 0.75, −0.25 ×3;
        //   var = (0.5625 + 3·0.0625)/3 = 0.75/3 = 0.25, std = 0.5,
        //   A = [0.75/0.5, −0.25/0.5 ×3] = [1.5, −0.5, −0.5, −0.5].
        // Group 2 r = [1, 1]: A = 0, unaffected by group 1.
        let out = Grpo::default()
            .estimate(&[scored(&[1.0, 0.0, 0.0, 0.0]), scored(&[1.0, 1.0])])
            .unwrap();
        close(&seq(&out[0]), &[1.5, -0.5, -0.5, -0.5], 1e-5);
        close(&seq(&out[1]), &[0.0, 0.0], 1e-6);
    }

    #[test]
    fn mismatched_verdicts_are_an_error() {
        let mut g = scored(&[1.0, 0.0]);
        g.verdicts.pop();
        assert!(Grpo::default().estimate(&[g]).is_err());
    }

    #[test]
    fn deserializes_by_name_and_rejects_unknown_fields() {
        let e: Box<dyn AdvantageEstimator> =
            serde_json::from_str(r#"{"type":"grpo","scale":"none"}"#).unwrap();
        // Dr. GRPO on [1, 0]: A = [0.5, −0.5].
        let out = e.estimate(&[scored(&[1.0, 0.0])]).unwrap();
        assert_eq!(seq(&out[0]), [0.5, -0.5]);
        assert!(
            serde_json::from_str::<Box<dyn AdvantageEstimator>>(r#"{"type":"grpo","scal":"std"}"#)
                .is_err()
        );
        assert!(
            serde_json::from_str::<Box<dyn AdvantageEstimator>>(r#"{"type":"grpo","scale":"mad"}"#)
                .is_err()
        );
        assert_eq!(
            foil_core::registry::defaults_of::<Grpo>(),
            serde_json::json!({"scale": "std", "eps": 1e-6f32})
        );
        assert!(foil_core::registry::names_of("AdvantageEstimator").contains(&"grpo"));
    }
}
