//! `rloo`: REINFORCE leave-one-out baseline (Kool et al. 2019, "Buy 4 REINFORCE Samples,
//! Get a Baseline for Free!"; Ahmadian et al. 2024, "Back to Basics: Revisiting
//! REINFORCE-Style Optimization for Learning from Human Feedback in LLMs").
//!
//! Each completion's baseline is the mean reward of the other G − 1 completions:
//!
//! ```text
//! A_i = r_i − (1/(G−1)) Σ_{j≠i} r_j  =  G/(G−1) · (r_i − mean)
//! ```
//!
//! A group of one completion has no other sample, so A = 0. Every token of a completion
//! shares its advantage ([`Credit::Sequence`]).

use foil_core::anyhow::Result;
use foil_core::{AdvantageEstimator, Credit, ScoredGroup};
use serde::{Deserialize, Serialize};

use crate::group::{mean, sequence_credits};

/// RLOO leave-one-out advantage. It has no options.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rloo {}

impl Rloo {
    /// The advantages of one group's rewards.
    pub fn advantages(&self, r: &[f64]) -> Vec<f64> {
        let g = r.len();
        if g < 2 {
            return vec![0.0; g];
        }
        let mu = mean(r);
        let k = g as f64 / (g - 1) as f64;
        r.iter().map(|x| k * (x - mu)).collect()
    }
}

#[foil_core::typetag::serde(name = "rloo")]
impl AdvantageEstimator for Rloo {
    fn estimate(&self, groups: &[ScoredGroup]) -> Result<Vec<Vec<Credit>>> {
        sequence_credits(groups, |r| self.advantages(r))
    }
}

foil_core::register_part!(
    AdvantageEstimator,
    "rloo",
    Rloo,
    "r_i − mean of the other rewards in the group (RLOO, Kool et al. 2019; Ahmadian et al. 2024)"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::testing::{scored, seq};

    fn close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn leave_one_out_by_hand() {
        // r = [1, 0, 0, 1], G = 4.
        // i=0: others [0,0,1] mean 1/3 → 1 − 1/3 = 0.666667
        // i=1: others [1,0,1] mean 2/3 → 0 − 2/3 = −0.666667
        // check: G/(G−1)·(r − mean) = 4/3·(1 − 0.5) = 0.666667.
        let out = Rloo::default()
            .estimate(&[scored(&[1.0, 0.0, 0.0, 1.0])])
            .unwrap();
        close(&seq(&out[0]), &[0.666667, -0.666667, -0.666667, 0.666667]);
    }

    #[test]
    fn one_correct_of_eight_and_non_binary() {
        // r = [1, 0×7]: correct one's baseline = 0 → A = 1;
        // a wrong one's baseline = 1/7 → A = −0.142857.
        let mut r = vec![0.0; 8];
        r[0] = 1.0;
        let mut want = vec![-1.0 / 7.0; 8];
        want[0] = 1.0;
        let out = Rloo::default().estimate(&[scored(&r)]).unwrap();
        close(&seq(&out[0]), &want);
        // r = [2, 4, 9]: i=0: 2 − (4+9)/2 = −4.5; i=1: 4 − (2+9)/2 = −1.5;
        // i=2: 9 − (2+4)/2 = 6.
        let out = Rloo::default()
            .estimate(&[scored(&[2.0, 4.0, 9.0])])
            .unwrap();
        close(&seq(&out[0]), &[-4.5, -1.5, 6.0]);
    }

    #[test]
    fn degenerate_groups_get_zero() {
        // All equal: r_i equals every other reward, A = 0. Size one: A = 0. Empty: nothing.
        let out = Rloo::default()
            .estimate(&[scored(&[1.0; 3]), scored(&[0.7]), scored(&[])])
            .unwrap();
        assert_eq!(seq(&out[0]), [0.0; 3]);
        assert_eq!(seq(&out[1]), [0.0]);
        assert!(out[2].is_empty());
    }

    #[test]
    fn mismatched_verdicts_are_an_error() {
        let mut g = scored(&[1.0, 0.0]);
        g.verdicts.push(g.verdicts[0].clone());
        assert!(Rloo::default().estimate(&[g]).is_err());
    }

    #[test]
    fn deserializes_by_name_and_rejects_unknown_fields() {
        let e: Box<dyn AdvantageEstimator> = serde_json::from_str(r#"{"type":"rloo"}"#).unwrap();
        // [1, 0]: A = ±1 (each one's baseline is the other reward).
        assert_eq!(
            seq(&e.estimate(&[scored(&[1.0, 0.0])]).unwrap()[0]),
            [1.0, -1.0]
        );
        assert!(
            serde_json::from_str::<Box<dyn AdvantageEstimator>>(r#"{"type":"rloo","k":2}"#)
                .is_err()
        );
        assert!(foil_core::registry::names_of("AdvantageEstimator").contains(&"rloo"));
    }
}
