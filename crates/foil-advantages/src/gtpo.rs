//! `gtpo`: Group Token Policy Optimization (Simoni et al. 2025, "GTPO: Trajectory-Based
//! Policy Optimization in Large Language Models", arXiv 2508.03772; released code
//! `github.com/winstonsmith1897/GTPO`, `gtpo/gtpo_training.py`: `build_conflict_mask`,
//! `gtpo_compute_loss`, `UnslothEfficientGTPO.forward`). methods.md §16.
//!
//! Everything GTPO changes is per-token credit: its loss is linear in the advantage, so
//! the conflict weights and the entropy filter become a [`Credit::Token`] per completion
//! and the objective is a plain `ppo_clip` with one epoch (ratio 1 on-policy, the same
//! gradient as the code's `exp(logp − sg(logp))`) and no KL term (β = 0, no reference
//! model). For a group of G completions with rewards `r_i`, generated tokens `y_{i,t}`
//! (`t = 0..L_i−1`) and the model's own next-token entropies `H_{i,t}`
//! ([`foil_core::Completion::entropies`]):
//!
//! ```text
//! A_i   = r_i − mean_g r                                   (no std division)      [code]
//! H_i   = (1/L_i) Σ_t H_{i,t}                              (mean token entropy)   [code]
//! Â_i   = 0                        if H_i > entropy_threshold   (0.7 ≈ ln 2)      [code]
//!       = A_i − entropy_scale·H_i  otherwise                    (0.1)             [code]
//! pos_i = A_i > 0,  neg_i = A_i < 0       (signs of the RAW advantage A_i)         [code]
//! c_{i,t} = y_{i,t} occurs at position t in some pos and in some neg completion
//! F_i   = {t : c_{i,s} for every s ≤ t}          (conflict prefix, "cumprod")      [code]
//! B_i   = the same on right-aligned sequences    (conflict suffix: t-th token from
//!                                                 the end against t-th from the end)
//! λ_{i,t} = λᶠ_{i,t} · λᵇ_{i,t},  λᶠ = w if t ∈ F_i and pos_i, 0 if t ∈ F_i and neg_i,
//!                                       1 otherwise  (w = conflict_weight = 2); λᵇ alike
//! credit_{i,t} = λ_{i,t} · Â_i  [ / max(1, |F_i ∪ B_i|) with normalise_by_conflicts ]
//! ```
//!
//! Details, each as the released code does it [code]:
//!
//! - **Sign.** `build_conflict_mask` receives `pos_flags = adv > 0`, `neg_flags = adv < 0`
//!   computed from the centred rewards *before* the entropy shaping (which comes after, in
//!   `UnslothEfficientGTPO.forward`), so the conflict sets use the raw sign of `A_i`. A
//!   positive completion whose shaped `Â_i` turned negative still gets `w` on its
//!   conflict tokens (and pushes them down, by `w·Â_i`).
//! - **Filtered completions stay in the batch** with `Â_i = 0` (zero gradient, still
//!   counted by token-mean aggregation), and still take part in the conflict sets by the
//!   sign of their raw `A_i`.
//! - **Completions with `A_i = 0`** (e.g. every completion of an all-equal group) are
//!   "inactive": all their weights are 1, and their credit is the entropy-shaped
//!   `Â_i = −entropy_scale·H_i` (a small push down on low-entropy samples), or 0 when
//!   filtered. GTPO is therefore not exactly zero on all-equal groups, unlike GRPO.
//! - **Prefix and suffix multiply**: a token of a positive completion in both runs (for
//!   instance a completion that equals a negative one) weighs `w² = 4`.
//! - **Normalisation** (`normalise_by_conflicts`, off by default): the code divides each
//!   completion's loss by its number of conflict tokens, clamped ≥ 1 — an unusual choice
//!   (methods.md calls it so) kept optional here. The code counts `conflict_fwd |
//!   conflict_rev` with the backward mask still in reversed coordinates, which
//!   undercounts when both runs are non-empty; this estimator counts the actual union
//!   `|F_i ∪ B_i|` of positions [recon].
//! - **Entropy** is the current policy's full-distribution entropy averaged over the
//!   completion's tokens (`compute_completion_stats`); with one on-policy update the
//!   current policy is the sampling one, whose entropies the local sampler records
//!   (before temperature). The paper's δ_i against the *initial* model's entropy [paper]
//!   is not what the code does and is not implemented.
//! - Signs of `A_i` are decided with a tolerance of `1e-9` (f64), so rounding in the mean
//!   of equal rewards never creates spurious conflicts [recon].
//!
//! The code's per-completion loss is `−(1/L_i) Σ_t λ_{i,t} Â_i ρ_t`, i.e. a sequence
//! mean: `aggregate: seq_mean_token_mean` in `ppo_clip` matches it (up to the constant
//! 1/G); `recipes/gtpo.yaml` keeps the repository's usual `token_mean`.

use foil_core::anyhow::{Result, bail};
use foil_core::{AdvantageEstimator, Credit, ScoredGroup, register_part};
use serde::{Deserialize, Serialize};

use crate::group::{mean, rewards};

/// Tolerance below which a centred reward counts as zero (neither positive nor negative).
const SIGN_EPS: f64 = 1e-9;

/// Recipe part: `advantage: {type: gtpo, entropy_threshold: 0.7, entropy_scale: 0.1,
/// conflict_weight: 2.0, normalise_by_conflicts: false}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Gtpo {
    /// Completions whose mean token entropy exceeds this get zero advantage
    /// (`ENT_THRESHOLD`, 0.7 ≈ ln 2). `.inf` turns the filter off.
    pub entropy_threshold: f32,
    /// `A_i := A_i − entropy_scale · H_i` for the others (`ENT_SCALE`, 0.1).
    pub entropy_scale: f32,
    /// Weight of conflict tokens of positive completions (`W_RAW`, 2.0); those of negative
    /// completions get 0.
    pub conflict_weight: f32,
    /// Whether conflict tokens are protected at all (`false`: every weight is 1, the
    /// "entropy only" ablation).
    pub conflicts: bool,
    /// Divide each completion's credit by its number of conflict tokens (clamped ≥ 1), as
    /// the released code does.
    pub normalise_by_conflicts: bool,
}

impl Default for Gtpo {
    fn default() -> Self {
        Self {
            entropy_threshold: 0.7,
            entropy_scale: 0.1,
            conflict_weight: 2.0,
            conflicts: true,
            normalise_by_conflicts: false,
        }
    }
}

register_part!(
    AdvantageEstimator,
    "gtpo",
    Gtpo,
    "r − group mean, entropy-filtered and shaped, with conflict tokens shared by positive and negative completions weighted ×2 / ×0 (GTPO, Simoni et al. 2025)"
);

/// Number of leading positions `t` (from the start, or from the end when `from_end`) at
/// which completion `i`'s token also occurs at that position in some positive and some
/// negative completion of the group. Only meaningful for active completions.
fn conflict_run(tokens: &[&[u32]], pos: &[bool], neg: &[bool], i: usize, from_end: bool) -> usize {
    let at = |seq: &[u32], t: usize| -> Option<u32> {
        if t >= seq.len() {
            None
        } else if from_end {
            Some(seq[seq.len() - 1 - t])
        } else {
            Some(seq[t])
        }
    };
    let own = tokens[i];
    let mut run = 0;
    for t in 0..own.len() {
        let tok = at(own, t);
        let shared_with = |flags: &[bool]| {
            tokens
                .iter()
                .zip(flags)
                .any(|(seq, &f)| f && at(seq, t) == tok)
        };
        if shared_with(pos) && shared_with(neg) {
            run += 1;
        } else {
            break;
        }
    }
    run
}

impl Gtpo {
    /// Per-token credit of one group, or an error naming the offending completion.
    fn group_credits(&self, index: usize, group: &ScoredGroup) -> Result<Vec<Credit>> {
        let r = rewards(index, group)?;
        let completions = &group.group.completions;
        if r.is_empty() {
            return Ok(Vec::new());
        }
        let mu = mean(&r);
        let raw: Vec<f64> = r.iter().map(|x| x - mu).collect();

        // mean token entropy per completion
        let mut shaped = Vec::with_capacity(r.len());
        for (j, (c, a)) in completions.iter().zip(&raw).enumerate() {
            let h = if c.tokens.is_empty() {
                0.0
            } else if c.entropies.len() != c.tokens.len() {
                bail!(
                    "gtpo: completion {j} of group {index} (problem {}) has {} tokens but {} \
                     entropies; GTPO needs the model's per-token entropy — the sampler must \
                     record entropies (the `local` sampler does; remote samplers may not)",
                    group.group.problem.id,
                    c.tokens.len(),
                    c.entropies.len()
                );
            } else {
                c.entropies.iter().map(|&e| f64::from(e)).sum::<f64>() / c.tokens.len() as f64
            };
            if !h.is_finite() {
                bail!(
                    "gtpo: completion {j} of group {index} (problem {}) has a non-finite mean entropy",
                    group.group.problem.id
                );
            }
            shaped.push(if h > f64::from(self.entropy_threshold) {
                0.0
            } else {
                a - f64::from(self.entropy_scale) * h
            });
        }

        let pos: Vec<bool> = raw.iter().map(|&a| a > SIGN_EPS).collect();
        let neg: Vec<bool> = raw.iter().map(|&a| a < -SIGN_EPS).collect();
        let tokens: Vec<&[u32]> = completions.iter().map(|c| c.tokens.as_slice()).collect();
        let w = f64::from(self.conflict_weight);

        Ok((0..r.len())
            .map(|i| {
                let len = tokens[i].len();
                let mut weights = vec![1.0f64; len];
                let mut n_conflict = 0usize;
                if self.conflicts && (pos[i] || neg[i]) {
                    let on_conflict = if pos[i] { w } else { 0.0 };
                    let fwd = conflict_run(&tokens, &pos, &neg, i, false);
                    let bwd = conflict_run(&tokens, &pos, &neg, i, true);
                    for (t, wt) in weights.iter_mut().enumerate() {
                        let in_fwd = t < fwd;
                        let in_bwd = t >= len - bwd;
                        if in_fwd {
                            *wt *= on_conflict;
                        }
                        if in_bwd {
                            *wt *= on_conflict;
                        }
                        if in_fwd || in_bwd {
                            n_conflict += 1;
                        }
                    }
                }
                let norm = if self.normalise_by_conflicts {
                    n_conflict.max(1) as f64
                } else {
                    1.0
                };
                let a = shaped[i] / norm;
                Credit::Token(weights.iter().map(|&l| (l * a) as f32).collect())
            })
            .collect())
    }
}

#[typetag::serde(name = "gtpo")]
impl AdvantageEstimator for Gtpo {
    fn estimate(&self, groups: &[ScoredGroup]) -> Result<Vec<Vec<Credit>>> {
        groups
            .iter()
            .enumerate()
            .map(|(i, g)| self.group_credits(i, g))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::testing::scored;

    /// A group with the given rewards, token sequences and one entropy value per
    /// completion (repeated over its tokens).
    fn group(rewards: &[f32], tokens: &[&[u32]], entropy: &[f32]) -> ScoredGroup {
        let mut g = scored(rewards);
        for (i, c) in g.group.completions.iter_mut().enumerate() {
            c.tokens = tokens[i].to_vec();
            c.logprobs = vec![0.0; tokens[i].len()];
            c.entropies = vec![entropy[i]; tokens[i].len()];
        }
        g
    }

    fn tok(c: &Credit) -> Vec<f32> {
        match c {
            Credit::Token(v) => v.clone(),
            other => panic!("expected token credit, got {other:?}"),
        }
    }

    fn close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len(), "got {got:?}, want {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "got {got:?}, want {want:?}");
        }
    }

    /// Estimator without entropy shaping, so the conflict weights are read off directly.
    fn no_entropy() -> Gtpo {
        Gtpo {
            entropy_scale: 0.0,
            ..Gtpo::default()
        }
    }

    #[test]
    fn conflict_prefix_and_suffix() {
        // r = [1, 0]: mean 0.5, A = [+0.5, −0.5].
        // pos: [5 6 7 8 9], neg: [5 6 1 8 9]. Forward: t=0 (5/5) and t=1 (6/6) shared,
        // t=2 differs (7 vs 1) → prefix F = {0, 1}. Backward: last (9/9) and second-last
        // (8/8) shared, third-last differs → suffix B = {3, 4}.
        // pos weights [2 2 1 2 2] → credit 0.5·λ = [1, 1, 0.5, 1, 1];
        // neg weights [0 0 1 0 0] → credit −0.5·λ = [0, 0, −0.5, 0, 0].
        let g = group(
            &[1.0, 0.0],
            &[&[5, 6, 7, 8, 9], &[5, 6, 1, 8, 9]],
            &[0.0, 0.0],
        );
        let out = no_entropy().estimate(&[g]).unwrap();
        close(&tok(&out[0][0]), &[1.0, 1.0, 0.5, 1.0, 1.0]);
        close(&tok(&out[0][1]), &[0.0, 0.0, -0.5, 0.0, 0.0]);
    }

    #[test]
    fn run_stops_at_first_non_conflict_and_suffix_is_right_aligned() {
        // r = [1, 0, 0]: mean 1/3, A = [2/3, −1/3, −1/3].
        // c0 (pos) [1 2 3 4], c1 (neg) [1 9 3 4 4], c2 (neg) [7 2].
        // Forward, position by position, token sets pos {·}, neg {·}:
        //   t=0: pos {1}, neg {1,7} → conflict tokens {1}; t=1: pos {2}, neg {9,2} → {2};
        //   t=2: pos {3}, neg {3} → {3};  t=3: pos {4}, neg {4} → {4}.
        //   c0: 1,2,3,4 all conflict → F = {0,1,2,3}.
        //   c1: 1 yes, 9 no → F = {0} (3 at t=2 is shared but not contiguous).
        //   c2: 7 no → F = {}.
        // Backward (t-th from the end): c0 reversed [4 3 2 1], c1 [4 4 3 9 1], c2 [2 7].
        //   r=0: pos {4}, neg {4,2} → {4}; r=1: pos {3}, neg {4,7} → {} ; so
        //   c0: B = {last} (position 3); c1: reversed 4 yes, 4 no → B = {position 4};
        //   c2: reversed 2 no → B = {}.
        // c0 weights: t0..t2 prefix only → 2; t3 prefix and suffix → 2·2 = 4.
        //   credit = (2/3)·[2 2 2 4] = [4/3, 4/3, 4/3, 8/3].
        // c1 weights [0 1 1 1 0] → credit −1/3·λ = [0, −1/3, −1/3, −1/3, 0].
        // c2 weights [1 1] → [−1/3, −1/3].
        let g = group(
            &[1.0, 0.0, 0.0],
            &[&[1, 2, 3, 4], &[1, 9, 3, 4, 4], &[7, 2]],
            &[0.0; 3],
        );
        let out = no_entropy().estimate(&[g]).unwrap();
        let (a, b) = (4.0 / 3.0, 8.0 / 3.0);
        close(&tok(&out[0][0]), &[a, a, a, b]);
        let t = 1.0 / 3.0;
        close(&tok(&out[0][1]), &[0.0, -t, -t, -t, 0.0]);
        close(&tok(&out[0][2]), &[-t, -t]);
    }

    #[test]
    fn entropy_filter_and_shaping() {
        // r = [1, 0, 1, 0], mean 0.5, A = [+0.5, −0.5, +0.5, −0.5]; disjoint tokens (no
        // conflicts: every λ = 1). Entropies per completion: 0.2, 0.5, 0.9, 0.7.
        // c0: 0.2 ≤ 0.7 → 0.5 − 0.1·0.2 = 0.48.   c1: −0.5 − 0.1·0.5 = −0.55.
        // c2: 0.9 > 0.7 → filtered, 0 (kept in the batch: zero credit on each token).
        // c3: 0.7 is not > 0.7 → −0.5 − 0.07 = −0.57.
        let g = group(
            &[1.0, 0.0, 1.0, 0.0],
            &[&[1, 1], &[2, 2], &[3, 3, 3], &[4]],
            &[0.2, 0.5, 0.9, 0.7],
        );
        let out = Gtpo::default().estimate(&[g]).unwrap();
        close(&tok(&out[0][0]), &[0.48, 0.48]);
        close(&tok(&out[0][1]), &[-0.55, -0.55]);
        close(&tok(&out[0][2]), &[0.0, 0.0, 0.0]);
        close(&tok(&out[0][3]), &[-0.57]);
    }

    #[test]
    fn entropy_is_the_mean_over_tokens() {
        // One completion with entropies [0.2, 1.0] (mean 0.6 ≤ 0.7: kept although one token
        // is above the threshold), r = [1, 0], disjoint tokens.
        // c0: 0.5 − 0.1·0.6 = 0.44; c1 entropies [0.9, 0.9] mean 0.9 > 0.7 → 0.
        let mut g = group(&[1.0, 0.0], &[&[1, 2], &[3, 4]], &[0.0, 0.9]);
        g.group.completions[0].entropies = vec![0.2, 1.0];
        let out = Gtpo::default().estimate(&[g]).unwrap();
        close(&tok(&out[0][0]), &[0.44, 0.44]);
        close(&tok(&out[0][1]), &[0.0, 0.0]);
    }

    #[test]
    fn conflict_sign_is_the_raw_advantage() {
        // r = [0.6, 0.4]: mean 0.5, raw A = [+0.1, −0.1]. Entropies 0.5 and 0.
        // Shaped: c0 = 0.1 − 0.05 = 0.05 (still +), c1 = −0.1.
        // Now with entropy_scale 0.4: c0 = 0.1 − 0.2 = −0.1 (negative after shaping), yet
        // its raw sign is +, so its shared prefix token keeps weight 2: credit
        // [2·(−0.1), 1·(−0.1)] = [−0.2, −0.1]; c1 (raw −) has weight 0 there:
        // [0, −0.1]. Had the shaped sign been used, both would be negative, no
        // conflict, and credits would be [−0.1, −0.1] and [−0.1, −0.1].
        let g = group(&[0.6, 0.4], &[&[1, 2], &[1, 3]], &[0.5, 0.0]);
        let est = Gtpo {
            entropy_scale: 0.4,
            ..Gtpo::default()
        };
        let out = est.estimate(&[g]).unwrap();
        close(&tok(&out[0][0]), &[-0.2, -0.1]);
        close(&tok(&out[0][1]), &[0.0, -0.1]);
    }

    #[test]
    fn filtered_completions_still_define_conflicts() {
        // r = [1, 0]: A = [+0.5, −0.5]. c0 has entropy 0.9 > 0.7 → Â = 0, but it is still
        // positive for the conflict sets, so c1's shared first token gets weight 0:
        // c1 = −0.5 − 0.1·0.1 = −0.51, credit [0, −0.51]. c0: [0, 0].
        let g = group(&[1.0, 0.0], &[&[4, 5], &[4, 6]], &[0.9, 0.1]);
        let out = Gtpo::default().estimate(&[g]).unwrap();
        close(&tok(&out[0][0]), &[0.0, 0.0]);
        close(&tok(&out[0][1]), &[0.0, -0.51]);
    }

    #[test]
    fn normalisation_by_conflict_count() {
        // The conflict_prefix_and_suffix pair plus a third, positive completion [2 3]
        // that shares no aligned token with the negative one.
        // r = [1, 0, 1]: mean 2/3, A = [1/3, −2/3, 1/3].
        // c0, c1: F ∪ B = {0,1,3,4} as before (c2's tokens 2, 3 join only the positive
        // sets) → 4 conflict tokens each.
        //   c0: [2 2 1 2 2]·(1/3)/4 = [1/6, 1/6, 1/12, 1/6, 1/6];
        //   c1: [0 0 1 0 0]·(−2/3)/4 = [0, 0, −1/6, 0, 0].
        // c2: no conflicts → count clamped to 1 → credit 1/3 on each token.
        let g = group(
            &[1.0, 0.0, 1.0],
            &[&[5, 6, 7, 8, 9], &[5, 6, 1, 8, 9], &[2, 3]],
            &[0.0; 3],
        );
        let est = Gtpo {
            normalise_by_conflicts: true,
            ..no_entropy()
        };
        let out = est.estimate(&[g]).unwrap();
        let (s, t) = (1.0 / 6.0, 1.0 / 12.0);
        close(&tok(&out[0][0]), &[s, s, t, s, s]);
        close(&tok(&out[0][1]), &[0.0, 0.0, -s, 0.0, 0.0]);
        close(&tok(&out[0][2]), &[1.0 / 3.0, 1.0 / 3.0]);
    }

    #[test]
    fn normalisation_counts_the_union_once() {
        // r = [1, 0], identical sequences [3 3]: both positions are in the prefix and in
        // the suffix; the union has 2 positions (not 4). pos λ = 2·2 = 4 per token,
        // credit 0.5·4/2 = 1 each; neg λ = 0 → 0.
        let g = group(&[1.0, 0.0], &[&[3, 3], &[3, 3]], &[0.0; 2]);
        let est = Gtpo {
            normalise_by_conflicts: true,
            ..no_entropy()
        };
        let out = est.estimate(&[g]).unwrap();
        close(&tok(&out[0][0]), &[1.0, 1.0]);
        close(&tok(&out[0][1]), &[0.0, 0.0]);
    }

    #[test]
    fn conflicts_off_is_entropy_only() {
        // conflict_prefix_and_suffix group with conflicts: false → λ = 1 everywhere:
        // [0.5; 5] and [−0.5; 5].
        let g = group(
            &[1.0, 0.0],
            &[&[5, 6, 7, 8, 9], &[5, 6, 1, 8, 9]],
            &[0.0, 0.0],
        );
        let est = Gtpo {
            conflicts: false,
            ..no_entropy()
        };
        let out = est.estimate(&[g]).unwrap();
        close(&tok(&out[0][0]), &[0.5; 5]);
        close(&tok(&out[0][1]), &[-0.5; 5]);
    }

    #[test]
    fn all_equal_rewards_and_empty_groups() {
        // r = [1, 1, 1]: A = 0 for all, no positives or negatives → no conflicts (the
        // identical sequences are not conflicts), λ = 1; entropy shaping only:
        // entropies 0.3, 0.5, 0.8 → −0.03, −0.05, and 0 (filtered).
        // An empty group gives no credits; a group of one gets A = 0 − 0.1·0.2 = −0.02.
        let g = group(&[1.0; 3], &[&[1, 2], &[1, 2], &[1, 2]], &[0.3, 0.5, 0.8]);
        let one = group(&[1.0], &[&[1]], &[0.2]);
        let out = Gtpo::default().estimate(&[g, scored(&[]), one]).unwrap();
        close(&tok(&out[0][0]), &[-0.03, -0.03]);
        close(&tok(&out[0][1]), &[-0.05, -0.05]);
        close(&tok(&out[0][2]), &[0.0, 0.0]);
        assert!(out[1].is_empty());
        close(&tok(&out[2][0]), &[-0.02]);
    }

    #[test]
    fn empty_completion_gets_empty_credit() {
        // r = [1, 0]: c0 has no tokens (entropy taken as 0): credit []. c1: −0.5 − 0.1·0.4.
        let g = group(&[1.0, 0.0], &[&[], &[2]], &[0.0, 0.4]);
        let out = Gtpo::default().estimate(&[g]).unwrap();
        assert_eq!(tok(&out[0][0]), Vec::<f32>::new());
        close(&tok(&out[0][1]), &[-0.54]);
    }

    #[test]
    fn missing_entropies_are_a_clear_error() {
        let mut g = group(&[1.0, 0.0], &[&[1], &[2]], &[0.1, 0.1]);
        g.group.completions[1].entropies.clear();
        let err = Gtpo::default().estimate(&[g]).unwrap_err().to_string();
        assert!(err.contains("sampler must record entropies"), "{err}");
        let mut g = group(&[1.0, 0.0], &[&[1], &[2]], &[0.1, 0.1]);
        g.group.completions[0].entropies = vec![f32::NAN];
        assert!(Gtpo::default().estimate(&[g]).is_err());
        let mut g = group(&[1.0, 0.0], &[&[1], &[2]], &[0.1, 0.1]);
        g.verdicts.pop();
        assert!(Gtpo::default().estimate(&[g]).is_err());
    }

    #[test]
    fn deserializes_by_name_and_rejects_unknown_fields() {
        let e: Box<dyn AdvantageEstimator> =
            serde_json::from_str(r#"{"type":"gtpo","conflict_weight":3.0}"#).unwrap();
        // r = [1, 0], tokens [1 2] / [1 3], entropy 0: c0 [3·0.5, 0.5], c1 [0, −0.5].
        let g = group(&[1.0, 0.0], &[&[1, 2], &[1, 3]], &[0.0, 0.0]);
        let out = e.estimate(&[g]).unwrap();
        close(&tok(&out[0][0]), &[1.5, 0.5]);
        close(&tok(&out[0][1]), &[0.0, -0.5]);
        assert!(
            serde_json::from_str::<Box<dyn AdvantageEstimator>>(r#"{"type":"gtpo","beta":0.1}"#)
                .is_err()
        );
        assert_eq!(
            foil_core::registry::defaults_of::<Gtpo>(),
            serde_json::json!({
                "entropy_threshold": 0.7f32, "entropy_scale": 0.1f32, "conflict_weight": 2.0f32,
                "conflicts": true, "normalise_by_conflicts": false
            })
        );
        assert!(foil_core::registry::names_of("AdvantageEstimator").contains(&"gtpo"));
    }
}
