//! Shared machinery of the sample-sign parts (`psr`, `nsr`, `w_reinforce`): start from a
//! base advantage (or from ±1 when there is none) and keep, scale or exclude each
//! completion by whether it was correct.

use foil_core::anyhow::{Result, bail};
use foil_core::{AdvantageEstimator, Credit, ScoredGroup};

use crate::group::sequence_credits;

/// `rule(correct, a)` maps a completion's base advantage `a` (±1 without a base: +1 when
/// correct, −1 when not) to its credit.
pub(crate) fn by_outcome(
    groups: &[ScoredGroup],
    base: Option<&dyn AdvantageEstimator>,
    rule: impl Fn(bool, f32) -> Credit,
) -> Result<Vec<Vec<Credit>>> {
    let base_credits = match base {
        Some(b) => b.estimate(groups)?,
        // validates verdict counts; the values are replaced below
        None => sequence_credits(groups, |r| vec![0.0; r.len()])?,
    };
    groups
        .iter()
        .zip(base_credits)
        .map(|(g, credits)| {
            g.verdicts
                .iter()
                .zip(credits)
                .map(|(v, c)| {
                    let a = match (base, c) {
                        (None, _) => {
                            if v.correct {
                                1.0
                            } else {
                                -1.0
                            }
                        }
                        (Some(_), Credit::Sequence(a)) => a,
                        (Some(_), other) => bail!(
                            "sample-sign weighting needs a sequence-level base advantage, got {other:?}"
                        ),
                    };
                    Ok(rule(v.correct, a))
                })
                .collect()
        })
        .collect()
}
