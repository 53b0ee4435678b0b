//! `truncation_mask`: DAPO's overlong filtering (Yu et al. 2025, "DAPO: An Open-Source LLM
//! Reinforcement Learning System at Scale", arXiv 2503.14476, §3.4; TRL's
//! `mask_truncated_completions`): completions cut off by the generation limit are left out
//! of the loss, so a reasoning chain that was merely too long is not punished as if it
//! were wrong.
//!
//! ```text
//! A = inner(groups)                         (the truncated completions still count in
//!                                            the inner estimator's statistics)
//! credit_i = Excluded    if y_i stopped at max_tokens (finish = length)
//!          = A_i         otherwise
//! ```
//!
//! It is an estimator wrapper rather than a `Filter` because filters keep or drop whole
//! groups, while this drops single completions ([`Credit::Excluded`]: out of the batch and
//! out of token-mean denominators). A completion stopped by a full context also counts as
//! truncated.

use foil_core::anyhow::Result;
use foil_core::{AdvantageEstimator, Credit, Finish, ScoredGroup, register_part};
use serde::{Deserialize, Serialize};

/// Recipe part: `advantage: {type: truncation_mask, inner: {type: grpo}}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TruncationMask {
    /// The estimator whose credit the non-truncated completions keep.
    pub inner: Box<dyn AdvantageEstimator>,
}

impl Default for TruncationMask {
    fn default() -> Self {
        Self {
            inner: Box::new(crate::Grpo::default()),
        }
    }
}

register_part!(
    AdvantageEstimator,
    "truncation_mask",
    TruncationMask,
    "DAPO overlong filtering: completions that hit max_tokens are excluded from the loss (Yu et al. 2025)"
);

#[typetag::serde(name = "truncation_mask")]
impl AdvantageEstimator for TruncationMask {
    fn estimate(&self, groups: &[ScoredGroup]) -> Result<Vec<Vec<Credit>>> {
        let credits = self.inner.estimate(groups)?;
        Ok(groups
            .iter()
            .zip(credits)
            .map(|(g, cs)| {
                g.group
                    .completions
                    .iter()
                    .zip(cs)
                    .map(|(c, credit)| match c.finish {
                        Finish::Length => Credit::Excluded,
                        Finish::Eos | Finish::Stop => credit,
                    })
                    .collect()
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::testing::scored_lens;
    use crate::{Grpo, Scale};

    #[test]
    fn truncated_completions_are_excluded_after_the_inner_estimate() {
        // r = [1, 0, 0, 0]; the last one was cut off at max_tokens.
        // inner dr_grpo over all four: mean 0.25 → A = [0.75, −0.25, −0.25, −0.25]
        // (the truncated one still counts in the mean), then it is excluded.
        let t = TruncationMask {
            inner: Box::new(Grpo {
                scale: Scale::None,
                ..Grpo::default()
            }),
        };
        let g = scored_lens(
            &[1.0, 0.0, 0.0, 0.0],
            &[3, 3, 2, 8],
            &[Finish::Eos, Finish::Stop, Finish::Eos, Finish::Length],
        );
        let out = t.estimate(&[g]).unwrap();
        assert_eq!(
            out[0],
            [
                Credit::Sequence(0.75),
                Credit::Sequence(-0.25),
                Credit::Sequence(-0.25),
                Credit::Excluded
            ]
        );
    }

    #[test]
    fn composes_with_the_overlong_penalty() {
        // DAPO's overlong reward shaping = both parts; with max_tokens = L_max = 8 and
        // L_cache = 4: lengths [3, 6, 8(truncated)], r = [1, 1, 0]
        // r' = [1, 1 + (4 − 6)/4, 0 − 1] = [1, 0.5, −1]; rloo:
        // A_0 = 1 − (0.5 − 1)/2 = 1.25, A_1 = 0.5 − (1 − 1)/2 = 0.5, the third excluded
        let e: Box<dyn AdvantageEstimator> = serde_saphyr::from_str(
            "type: truncation_mask\ninner:\n  type: overlong_penalty\n  max_len: 8\n  cache_len: 4\n  inner: {type: rloo}\n",
        )
        .unwrap();
        let g = scored_lens(
            &[1.0, 1.0, 0.0],
            &[3, 6, 8],
            &[Finish::Eos, Finish::Eos, Finish::Length],
        );
        let out = e.estimate(&[g]).unwrap();
        assert_eq!(
            out[0],
            [
                Credit::Sequence(1.25),
                Credit::Sequence(0.5),
                Credit::Excluded
            ]
        );
        assert!(
            serde_saphyr::from_str::<Box<dyn AdvantageEstimator>>(
                "type: truncation_mask\nmax_tokens: 8\n"
            )
            .is_err()
        );
        assert!(foil_core::registry::names_of("AdvantageEstimator").contains(&"truncation_mask"));
    }
}
