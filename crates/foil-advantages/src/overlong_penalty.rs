//! `overlong_penalty`: DAPO's soft overlong punishment (Yu et al. 2025, "DAPO: An
//! Open-Source LLM Reinforcement Learning System at Scale", arXiv 2503.14476, §3.4 Eq. 13;
//! verl's `DAPORewardManager` `overlong_buffer`). A length-aware term is added to each
//! completion's reward, then the `inner` estimator assigns credit from the shaped rewards.
//!
//! With `|y|` the completion's token count (EOS included), `L_max = max_len`,
//! `L_cache = cache_len`:
//!
//! ```text
//! R_length(y) = 0                                  |y| ≤ L_max − L_cache
//!             = ((L_max − L_cache) − |y|) / L_cache  L_max − L_cache < |y| ≤ L_max
//!             = −1                                 L_max < |y|
//! r'_i = r_i + penalty_factor · R_length(y_i)
//! credit = inner(groups with r')
//! ```
//!
//! So the penalty is 0 up to `L_max − L_cache` tokens, falls linearly to −1 at `L_max`,
//! and stays −1 beyond. DAPO uses `L_max` = 20480 and `L_cache` = 4096 with the sampler's
//! `max_tokens` = `L_max`; set both to the recipe's scale. `cache_len: 0` is a hard step:
//! 0 up to `L_max`, −1 beyond. Only `reward` changes: `correct` (which sample-sign
//! estimators read) does not. Pair it with `truncation_mask` for DAPO's overlong filtering.

use foil_core::anyhow::{Result, ensure};
use foil_core::{AdvantageEstimator, Credit, ScoredGroup, register_part};
use serde::{Deserialize, Serialize};

/// Recipe part: `advantage: {type: overlong_penalty, max_len: 32, cache_len: 8,
/// inner: {type: grpo}}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OverlongPenalty {
    /// The estimator that assigns credit from the shaped rewards.
    pub inner: Box<dyn AdvantageEstimator>,
    /// `L_max`: the length at which the penalty reaches −1 (DAPO: the generation limit).
    pub max_len: usize,
    /// `L_cache`: the width of the linear ramp before `max_len`.
    pub cache_len: usize,
    /// Scale of the penalty (verl's `overlong_buffer.penalty_factor`).
    pub penalty_factor: f32,
}

impl Default for OverlongPenalty {
    fn default() -> Self {
        Self {
            inner: Box::new(crate::Grpo::default()),
            max_len: 20480,
            cache_len: 4096,
            penalty_factor: 1.0,
        }
    }
}

register_part!(
    AdvantageEstimator,
    "overlong_penalty",
    OverlongPenalty,
    "DAPO soft overlong punishment: reward − linear ramp to −1 over the last cache_len tokens before max_len, then the inner estimator (Yu et al. 2025)"
);

impl OverlongPenalty {
    /// `R_length` for a completion of `len` tokens (before `penalty_factor`).
    pub fn length_penalty(&self, len: usize) -> f64 {
        let expected = self.max_len - self.cache_len;
        if len <= expected {
            0.0
        } else if len <= self.max_len {
            (expected as f64 - len as f64) / self.cache_len as f64
        } else {
            -1.0
        }
    }
}

#[typetag::serde(name = "overlong_penalty")]
impl AdvantageEstimator for OverlongPenalty {
    fn estimate(&self, groups: &[ScoredGroup]) -> Result<Vec<Vec<Credit>>> {
        ensure!(
            self.cache_len <= self.max_len,
            "overlong_penalty: cache_len ({}) must not exceed max_len ({})",
            self.cache_len,
            self.max_len
        );
        let shaped: Vec<ScoredGroup> = groups
            .iter()
            .map(|g| {
                let mut g = g.clone();
                for (v, c) in g.verdicts.iter_mut().zip(&g.group.completions) {
                    let p = f64::from(self.penalty_factor) * self.length_penalty(c.tokens.len());
                    v.reward = (f64::from(v.reward) + p) as f32;
                }
                g
            })
            .collect();
        self.inner.estimate(&shaped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::testing::{scored_lens, seq};
    use crate::{Grpo, Rloo, Scale};

    fn penalty(max_len: usize, cache_len: usize) -> OverlongPenalty {
        OverlongPenalty {
            inner: Box::new(Rloo::default()),
            max_len,
            cache_len,
            penalty_factor: 1.0,
        }
    }

    #[test]
    fn ramp_by_hand() {
        // L_max = 10, L_cache = 4 → free up to 6 tokens, then (6 − |y|)/4:
        // 6 → 0, 7 → −0.25, 8 → −0.5, 10 → −1, 12 → −1 (beyond L_max)
        let p = penalty(10, 4);
        for (len, want) in [
            (0, 0.0),
            (6, 0.0),
            (7, -0.25),
            (8, -0.5),
            (10, -1.0),
            (12, -1.0),
        ] {
            assert_eq!(p.length_penalty(len), want, "len {len}");
        }
        // cache_len 0: a hard step at L_max
        let p = penalty(10, 0);
        assert_eq!(p.length_penalty(10), 0.0);
        assert_eq!(p.length_penalty(11), -1.0);
    }

    #[test]
    fn shaped_rewards_go_through_the_inner_estimator() {
        // L_max = 10, L_cache = 4; r = [1, 1, 0], lengths [4, 8, 10]
        // r' = [1 + 0, 1 − 0.5, 0 − 1] = [1, 0.5, −1]
        // inner dr_grpo: mean r' = 0.5/3 = 0.166667 → A = [0.833333, 0.333333, −1.166667]
        let p = OverlongPenalty {
            inner: Box::new(Grpo {
                scale: Scale::None,
                ..Grpo::default()
            }),
            ..penalty(10, 4)
        };
        let out = p
            .estimate(&[scored_lens(&[1.0, 1.0, 0.0], &[4, 8, 10], &[])])
            .unwrap();
        let a = seq(&out[0]);
        for (g, w) in a.iter().zip([0.833333, 0.333333, -1.166667]) {
            assert!((g - w).abs() < 1e-5, "{a:?}");
        }
        // penalty_factor 0.5 halves the term: r' = [1, 0.75, −0.5];
        // rloo A_0 = 1 − (0.75 − 0.5)/2 = 0.875
        let p = OverlongPenalty {
            penalty_factor: 0.5,
            ..penalty(10, 4)
        };
        let out = p
            .estimate(&[scored_lens(&[1.0, 1.0, 0.0], &[4, 8, 10], &[])])
            .unwrap();
        assert!((seq(&out[0])[0] - 0.875).abs() < 1e-6);
    }

    #[test]
    fn short_completions_are_untouched_and_bad_lengths_rejected() {
        // every completion within L_max − L_cache: same credit as the inner estimator alone
        let g = [scored_lens(&[1.0, 0.0], &[3, 5], &[])];
        let with = penalty(10, 4).estimate(&g).unwrap();
        assert_eq!(with, Rloo::default().estimate(&g).unwrap());
        assert!(penalty(4, 10).estimate(&g).is_err());
    }

    #[test]
    fn deserializes_with_an_inner_estimator() {
        let e: Box<dyn AdvantageEstimator> = serde_saphyr::from_str(
            "type: overlong_penalty\nmax_len: 10\ncache_len: 4\ninner: {type: rloo}\n",
        )
        .unwrap();
        // r' = [1, 0.5] (lengths 2 and 8) → rloo: [0.5, −0.5]
        let out = e
            .estimate(&[scored_lens(&[1.0, 1.0], &[2, 8], &[])])
            .unwrap();
        assert_eq!(seq(&out[0]), [0.5, -0.5]);
        assert!(
            serde_saphyr::from_str::<Box<dyn AdvantageEstimator>>(
                "type: overlong_penalty\nmax_length: 10\n"
            )
            .is_err()
        );
        let d = foil_core::registry::defaults_of::<OverlongPenalty>();
        assert_eq!(d["max_len"], 20480);
        assert_eq!(d["cache_len"], 4096);
        assert_eq!(d["inner"]["type"], "grpo");
    }
}
