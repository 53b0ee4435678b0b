//! Acceptance rules: each part of a claim becomes a [`Check`] on per-seed values, decided
//! by a rule fixed before the numbers are seen.
//!
//! | rule | holds when (over the per-seed values `v`, n seeds) |
//! |---|---|
//! | [`raises`] | `mean(v) > 0` and `mean(v) > sem(v)`: the mean rise is more than one standard error above zero (with one seed: `v > 0`) |
//! | [`lowers`] | `mean(v) < 0` and `mean(v) < −sem(v)` |
//! | [`keeps_or_raises`] | `mean(v) ≥ −tol` |
//! | [`at_least`] | `mean(v) ≥ −tol` on paired differences `a − b` (a is at least as good as b, within `tol`) |
//! | [`all_zero`] | every value is exactly `0.0` |
//! | [`all_positive`] | every value is `> 0` |
//! | [`all_negative`] | every value is `< 0` |
//!
//! `v` is a change (after − before) or a paired difference between two methods trained
//! from the same checkpoint with the same seed. `sem = std / sqrt(n)` with the sample
//! standard deviation.
//!
//! A check is *gating* (it decides the claim and the exit status) unless marked
//! [`Check::reported`]: `--quick` versions report, without gating on them, the parts of a
//! claim they cannot decide reliably or that do not hold at this scale.

use serde::Serialize;

use crate::stats::{Summary, mean, sem};

/// Tolerance of "keeps" and "at least as good as": 0.02 absolute (two points of pass@k).
pub const TOL: f64 = 0.02;

/// One part of a claim, decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// What is claimed, in words.
    pub claim: String,
    /// The rule applied, in words.
    pub rule: String,
    /// The per-seed values the rule was applied to.
    pub values: Summary,
    pub holds: bool,
    /// Whether it decides the claim (false: shown in the report only).
    pub gating: bool,
}

impl Check {
    fn new(claim: &str, rule: String, values: &[f64], holds: bool) -> Self {
        Self {
            claim: claim.to_string(),
            rule,
            values: Summary::of(values),
            holds,
            gating: true,
        }
    }

    /// The same check, shown in the report but not deciding the claim.
    pub fn reported(self) -> Self {
        Self {
            gating: false,
            ..self
        }
    }
}

/// The value rises: `mean > 0` and `mean > sem`.
pub fn raises(claim: &str, changes: &[f64]) -> Check {
    let (m, s) = (mean(changes), sem(changes));
    Check::new(
        claim,
        format!("mean > 0 and > one standard error ({s:.4})"),
        changes,
        m > 0.0 && m > s,
    )
}

/// The value falls: `mean < 0` and `mean < −sem`.
pub fn lowers(claim: &str, changes: &[f64]) -> Check {
    let (m, s) = (mean(changes), sem(changes));
    Check::new(
        claim,
        format!("mean < 0 and < −(one standard error) ({s:.4})"),
        changes,
        m < 0.0 && m < -s,
    )
}

/// The value does not fall by more than `tol` on average.
pub fn keeps_or_raises(claim: &str, changes: &[f64], tol: f64) -> Check {
    Check::new(
        claim,
        format!("mean ≥ −{tol}"),
        changes,
        mean(changes) >= -tol,
    )
}

/// `a − b` (paired per seed) is not below `−tol` on average.
pub fn at_least(claim: &str, differences: &[f64], tol: f64) -> Check {
    Check::new(
        claim,
        format!("mean ≥ −{tol}"),
        differences,
        mean(differences) >= -tol,
    )
}

/// Every value is exactly zero.
pub fn all_zero(claim: &str, values: &[f64]) -> Check {
    Check::new(
        claim,
        "every value exactly 0".into(),
        values,
        !values.is_empty() && values.iter().all(|&v| v == 0.0),
    )
}

/// Every value is strictly positive.
pub fn all_positive(claim: &str, values: &[f64]) -> Check {
    Check::new(
        claim,
        "every value > 0".into(),
        values,
        !values.is_empty() && values.iter().all(|&v| v > 0.0),
    )
}

/// Every value is strictly negative.
pub fn all_negative(claim: &str, values: &[f64]) -> Check {
    Check::new(
        claim,
        "every value < 0".into(),
        values,
        !values.is_empty() && values.iter().all(|&v| v < 0.0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raises_needs_more_than_one_standard_error() {
        // mean 0.05, std 0.01 → sem 0.0058: holds
        assert!(raises("x", &[0.04, 0.05, 0.06]).holds);
        // mean 0.01 but spread ±0.1 (sem ≈ 0.058): a rise within noise does not hold
        assert!(!raises("x", &[0.11, 0.01, -0.09]).holds);
        // a fall does not hold
        assert!(!raises("x", &[-0.04, -0.05, -0.06]).holds);
        // nothing changed does not hold
        assert!(!raises("x", &[0.0, 0.0]).holds);
        // one seed: the sign decides
        assert!(raises("x", &[0.001]).holds);
        assert!(!raises("x", &[-0.001]).holds);
    }

    #[test]
    fn lowers_is_the_mirror_of_raises() {
        assert!(lowers("x", &[-0.04, -0.05, -0.06]).holds);
        assert!(!lowers("x", &[-0.11, -0.01, 0.09]).holds);
        assert!(!lowers("x", &[0.04, 0.05, 0.06]).holds);
    }

    #[test]
    fn keeps_allows_a_fall_within_the_tolerance_only() {
        assert!(keeps_or_raises("x", &[0.1, 0.2], TOL).holds);
        assert!(keeps_or_raises("x", &[-0.01, -0.015, -0.02], TOL).holds); // mean −0.015
        assert!(!keeps_or_raises("x", &[-0.02, -0.03, -0.04], TOL).holds); // mean −0.03
    }

    #[test]
    fn at_least_as_good_fails_when_clearly_worse() {
        // W-REINFORCE 0.371 vs GRPO 0.489 on one seed: −0.118 < −0.02
        assert!(!at_least("w ≥ grpo", &[0.371 - 0.489], TOL).holds);
        assert!(at_least("w ≥ grpo", &[0.01, -0.03], TOL).holds); // mean −0.01
    }

    #[test]
    fn exact_rules() {
        assert!(all_zero("g", &[0.0, 0.0, -0.0]).holds);
        assert!(!all_zero("g", &[0.0, 1e-30]).holds);
        assert!(!all_zero("g", &[]).holds);
        assert!(all_positive("g", &[1e-9, 2.0]).holds);
        assert!(!all_positive("g", &[1.0, 0.0]).holds);
        assert!(all_negative("a", &[-1.0 / 3.0; 8]).holds);
        assert!(!all_negative("a", &[-1.0, 0.0]).holds);
        assert!(!all_positive("g", &[f64::NAN]).holds);
    }
}
