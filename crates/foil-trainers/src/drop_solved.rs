//! `drop_solved`: drop groups in which every completion is correct, keep the rest —
//! including all-incorrect groups (NGRPO's `filter_groups` with `strategy: all_correct`;
//! Nan et al. 2025, arXiv 2509.18851). With an estimator that gives all-wrong groups a
//! non-zero advantage (`ngrpo`, `nsr`), those groups carry the negative signal.
//!
//! ```text
//! keep(g)  ⇔  ∃ i ∈ g : y_i incorrect
//! ```

use foil_core::{Filter, ScoredGroup, register_part};
use serde::{Deserialize, Serialize};

/// Recipe part: `filters: [{type: drop_solved}]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DropSolved {}

register_part!(
    Filter,
    "drop_solved",
    DropSolved,
    "drop groups whose completions are all correct, keep all-wrong ones (NGRPO, Nan et al. 2025)"
);

#[typetag::serde(name = "drop_solved")]
impl Filter for DropSolved {
    fn keep(&self, group: &ScoredGroup) -> bool {
        group.verdicts.iter().any(|v| !v.correct)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamic_sampling::tests::group;

    #[test]
    fn drops_only_fully_solved_groups() {
        let f = DropSolved::default();
        assert!(!f.keep(&group(&[1.0, 1.0, 1.0])));
        assert!(f.keep(&group(&[0.0, 0.0, 0.0])));
        assert!(f.keep(&group(&[1.0, 0.0])));
        assert!(!f.refill());
    }
}
