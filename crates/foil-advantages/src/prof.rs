//! `prof`: PRocess cOnsistency Filter (Ye et al. 2025, "Beyond Correctness: Harmonizing
//! Process and Outcome Rewards through RL Training", arXiv 2509.03403; methods.md §11;
//! released code `amazon-science/PROF-GRPO`, `prof_grpo/blend_grpo/prof_ray_trainer.py`).
//!
//! A process reward model is used as a filter, not as a reward: in each group, keep the
//! correct responses whose steps the PRM likes and the incorrect ones whose steps it
//! dislikes, removing `R` responses so that the kept set stays balanced; then the `inner`
//! estimator (GRPO by default) computes credit on the kept responses only.
//!
//! With outcome `r_i = 1` if the verdict is correct else 0, PRM step values
//! `v_{i,j} = step_rewards[j]` (`L_i` of them):
//!
//! ```text
//! c_i = (1/L_i) Σ_j (2 v_{i,j} − 1)(2 r_i − 1)  −  λ_len · 1[L_i < min_steps ∨ L_i > max_steps]
//!       (c_i's first term is 0 when L_i = 0)             [code, compute_verify_step_level_score]
//! per group of n with n⁺ correct, n⁻ incorrect; R = min(remove, n):
//!   Δ  = n⁺ − n⁻
//!   k⁺ = min(R, round_half_even((Δ + R) / 2))           (Python round)      [code]
//!   k⁺ > 0: drop the min(k⁺, n⁺) correct with lowest c, then the
//!           min(R − min(k⁺, n⁺), n⁻) incorrect with lowest c
//!   else:   drop the min(R, n⁻) incorrect with lowest c                  [code, filter_trajectories]
//! dropped → Credit::Excluded;  kept → inner.estimate(groups restricted to the kept)
//! ```
//!
//! Ties keep the group's order (Python's `sort` is stable, so is ours). With `R ≤ n` both
//! `min`s with `n⁺`, `n⁻` never bind (k⁺ ≤ round(n⁺) = n⁺ and R − k⁺ ≤ n⁻), so exactly R
//! are removed; `remove > n` removes the whole group, as the code does. Example (the
//! README figure): n = 8, n⁺ = 5, n⁻ = 3, R = 4 → k⁺ = min(4, round(3)) = 3, k⁻ = 1 →
//! keep 2 correct + 2 incorrect.
//!
//! `mode` selects the paper's variants [code, `prof_grpo_correct/prof_ray_trainer.py`]:
//! `both` (default; rank both sides by c), `correct` (rank correct ones by c, remove the
//! incorrect ones at random), `incorrect` (the mirror image), `no_separation` (rank all
//! n by c together and drop the R lowest, ignoring the balance) [paper, ablation]. The
//! random choice is a seeded hash of (`seed`, problem id, response, index): the same
//! inputs always drop the same responses.
//!
//! Defaults `remove: 4` (of n = 8), `len_coef: 10`, `min_steps: 2`, `max_steps: 30` are the
//! released run script's [code, `run_prof_grpo.sh`]; the step bounds are for
//! paragraph-sized steps, so recipes on the arithmetic task set `min_steps: 1`. A batch in
//! which no completion has step rewards is an error (the verifier does not score steps).

use foil_core::anyhow::{Result, bail};
use foil_core::{AdvantageEstimator, Credit, ScoredGroup, Verdict, register_part, rng};
use serde::{Deserialize, Serialize};

use crate::group::rewards;

/// Which side(s) of a group are ranked by consistency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Rank correct and incorrect responses by consistency (PROF-Both).
    #[default]
    Both,
    /// Rank correct ones by consistency; remove incorrect ones at random (Filter-Correct).
    Correct,
    /// Rank incorrect ones by consistency; remove correct ones at random (Filter-Incorrect).
    Incorrect,
    /// Rank all responses together and drop the R least consistent (no balance).
    NoSeparation,
}

/// Recipe part: `advantage: {type: prof, remove: 4, inner: {type: grpo}}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Prof {
    /// Credit for the kept responses, computed on them alone.
    pub inner: Box<dyn AdvantageEstimator>,
    /// `R`: responses removed per group (the code's `prof_filter`).
    pub remove: usize,
    /// `λ_len`: subtracted from c when the step count is out of bounds.
    pub len_coef: f64,
    /// Fewest steps before the length penalty applies.
    pub min_steps: usize,
    /// Most steps before the length penalty applies.
    pub max_steps: usize,
    /// Variant: `both`, `correct`, `incorrect`, `no_separation`.
    pub mode: Mode,
    /// Seed of the random removal in `correct` / `incorrect` modes.
    pub seed: u64,
}

impl Default for Prof {
    fn default() -> Self {
        Self {
            inner: Box::new(crate::Grpo::default()),
            remove: 4,
            len_coef: 10.0,
            min_steps: 2,
            max_steps: 30,
            mode: Mode::Both,
            seed: 0,
        }
    }
}

register_part!(
    AdvantageEstimator,
    "prof",
    Prof,
    "PROF: per group drop the R responses least consistent with a PRM (c = mean (2v−1)(2r−1)), keeping correct/incorrect balanced, then the inner estimator on the kept (Ye et al. 2025)"
);

/// FNV-1a, 64 bit (platform-independent).
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Prof {
    /// The consistency `c_i` of one verdict.
    pub fn consistency(&self, v: &Verdict) -> f64 {
        let l = v.step_rewards.len();
        let s = if v.correct { 1.0 } else { -1.0 };
        let mean = if l == 0 {
            0.0
        } else {
            v.step_rewards
                .iter()
                .map(|&x| (2.0 * f64::from(x) - 1.0) * s)
                .sum::<f64>()
                / l as f64
        };
        let out = l < self.min_steps || l > self.max_steps;
        mean - if out { self.len_coef } else { 0.0 }
    }

    /// `k⁺`, the number of correct responses to remove (before the `min` with n⁺).
    pub fn k_pos(n_pos: usize, n_neg: usize, remove: usize) -> i64 {
        let delta = n_pos as i64 - n_neg as i64;
        let half = ((delta + remove as i64) as f64 / 2.0).round_ties_even() as i64;
        half.min(remove as i64)
    }

    /// Which responses of `group` are kept (`true`), following `filter_trajectories`.
    pub fn kept(&self, group: &ScoredGroup) -> Vec<bool> {
        let n = group.verdicts.len();
        let r = self.remove.min(n);
        let mut keep = vec![true; n];
        if r == 0 {
            return keep;
        }
        let c: Vec<f64> = group.verdicts.iter().map(|v| self.consistency(v)).collect();
        let random: Vec<f64> = (0..n)
            .map(|i| {
                let text = group
                    .group
                    .completions
                    .get(i)
                    .map_or("", |c| c.text.as_str());
                let h = rng::derive(
                    self.seed,
                    &[fnv1a(&group.group.problem.id), fnv1a(text), i as u64],
                );
                (h >> 11) as f64 / (1u64 << 53) as f64
            })
            .collect();
        // the `count` lowest-keyed of `idx` (stable: ties keep the group's order)
        let mut drop = |idx: Vec<usize>, by_c: bool, count: usize| {
            let key = |i: &usize| if by_c { c[*i] } else { random[*i] };
            let mut idx = idx;
            idx.sort_by(|a, b| key(a).total_cmp(&key(b)));
            for &i in idx.iter().take(count) {
                keep[i] = false;
            }
            count.min(idx.len())
        };
        if self.mode == Mode::NoSeparation {
            drop((0..n).collect(), true, r);
            return keep;
        }
        let pos: Vec<usize> = (0..n).filter(|&i| group.verdicts[i].correct).collect();
        let neg: Vec<usize> = (0..n).filter(|&i| !group.verdicts[i].correct).collect();
        let pos_by_c = matches!(self.mode, Mode::Both | Mode::Correct);
        let neg_by_c = matches!(self.mode, Mode::Both | Mode::Incorrect);
        let k_pos = Self::k_pos(pos.len(), neg.len(), r);
        if k_pos > 0 {
            let removed = drop(pos, pos_by_c, k_pos as usize);
            drop(neg, neg_by_c, r - removed);
        } else {
            drop(neg, neg_by_c, r);
        }
        keep
    }
}

#[typetag::serde(name = "prof")]
impl AdvantageEstimator for Prof {
    fn estimate(&self, groups: &[ScoredGroup]) -> Result<Vec<Vec<Credit>>> {
        for (i, g) in groups.iter().enumerate() {
            rewards(i, g)?; // one verdict per completion
        }
        let any = groups.iter().any(|g| !g.verdicts.is_empty());
        let scored = groups
            .iter()
            .any(|g| g.verdicts.iter().any(|v| !v.step_rewards.is_empty()));
        if any && !scored {
            bail!(
                "prof: no completion has step rewards, so there is nothing to rank by process \
                 consistency; use a verifier that scores steps, e.g. verifier: {{type: \
                 process_reward, outcome: {{type: numeric}}, process: {{type: steps}}}}"
            );
        }
        let masks: Vec<Vec<bool>> = groups.iter().map(|g| self.kept(g)).collect();
        let restricted: Vec<ScoredGroup> = groups
            .iter()
            .zip(&masks)
            .map(|(g, keep)| {
                let mut k = g.clone();
                let pick = |i: &usize| keep[*i];
                k.group.completions = (0..keep.len())
                    .filter(pick)
                    .map(|i| g.group.completions[i].clone())
                    .collect();
                k.verdicts = (0..keep.len())
                    .filter(pick)
                    .map(|i| g.verdicts[i].clone())
                    .collect();
                k
            })
            .collect();
        let inner = self.inner.estimate(&restricted)?;
        if inner.len() != groups.len() {
            bail!(
                "prof: inner estimator returned {} groups for {}",
                inner.len(),
                groups.len()
            );
        }
        masks
            .iter()
            .zip(inner)
            .enumerate()
            .map(|(gi, (keep, credits))| {
                let kept = keep.iter().filter(|&&k| k).count();
                if credits.len() != kept {
                    bail!(
                        "prof: inner estimator gave {} credits for the {kept} kept responses of group {gi}",
                        credits.len()
                    );
                }
                let mut credits = credits.into_iter();
                Ok(keep
                    .iter()
                    .map(|&k| {
                        if k {
                            credits.next().unwrap_or(Credit::Excluded)
                        } else {
                            Credit::Excluded
                        }
                    })
                    .collect())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::testing::{scored, seq};

    /// A group with outcome `correct[i]` and step values `steps[i]`; completion texts are
    /// distinct ("0", "1", …).
    fn group(correct: &[bool], steps: &[&[f32]]) -> ScoredGroup {
        let r: Vec<f32> = correct.iter().map(|&c| f32::from(u8::from(c))).collect();
        let mut g = scored(&r);
        for (i, (v, s)) in g.verdicts.iter_mut().zip(steps).enumerate() {
            v.step_rewards = s.to_vec();
            g.group.completions[i].text = i.to_string();
        }
        g
    }

    fn prof(mode: Mode, remove: usize) -> Prof {
        Prof {
            mode,
            remove,
            min_steps: 1,
            ..Prof::default()
        }
    }

    fn kept_idx(p: &Prof, g: &ScoredGroup) -> Vec<usize> {
        p.kept(g)
            .iter()
            .enumerate()
            .filter(|(_, k)| **k)
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn consistency_by_hand() {
        let p = Prof::default(); // min_steps 2, max_steps 30, λ_len 10
        let v = |correct, steps: &[f32]| Verdict {
            reward: 0.0,
            correct,
            step_rewards: steps.to_vec(),
        };
        // v = [1, 0, 1], r = 1: ((+1) + (−1) + (+1))/3 = 1/3
        assert!((p.consistency(&v(true, &[1.0, 0.0, 1.0])) - 1.0 / 3.0).abs() < 1e-12);
        // r = 0 flips the sign: −1/3
        assert!((p.consistency(&v(false, &[1.0, 0.0, 1.0])) + 1.0 / 3.0).abs() < 1e-12);
        // v = [0.75, 0.25], r = 1: (0.5 − 0.5)/2 = 0
        assert!(p.consistency(&v(true, &[0.75, 0.25])).abs() < 1e-12);
        // one step (< min_steps 2): (2·1 − 1)·1 − 10 = −9
        assert!((p.consistency(&v(true, &[1.0])) + 9.0).abs() < 1e-12);
        // no steps: 0 − 10 = −10; 31 steps (> 30) of 0, r = 0: (+1) − 10 = −9
        assert!((p.consistency(&v(true, &[])) + 10.0).abs() < 1e-12);
        assert!((p.consistency(&v(false, &[0.0; 31])) + 9.0).abs() < 1e-12);
    }

    #[test]
    fn k_pos_uses_bankers_rounding() {
        // (Δ + R)/2 with Δ = n⁺ − n⁻:
        assert_eq!(Prof::k_pos(5, 3, 4), 3); // (2 + 4)/2 = 3
        assert_eq!(Prof::k_pos(7, 1, 4), 4); // (6 + 4)/2 = 5 → min(4, 5) = 4
        assert_eq!(Prof::k_pos(5, 3, 3), 2); // (2 + 3)/2 = 2.5 → 2 (even)
        assert_eq!(Prof::k_pos(6, 2, 3), 3); // (4 + 3)/2 = 3.5 → 4 → min(3, 4) = 3
        assert_eq!(Prof::k_pos(4, 4, 3), 2); // 1.5 → 2
        assert_eq!(Prof::k_pos(2, 6, 3), 0); // −0.5 → −0 = 0
        assert_eq!(Prof::k_pos(1, 7, 4), -1); // (−6 + 4)/2 = −1
    }

    #[test]
    fn readme_example_keeps_two_and_two() {
        // n = 8, n⁺ = 5 (0..5), n⁻ = 3 (5..8), R = 4 → k⁺ = 3, k⁻ = 1 → keep 2 + 2.
        // Correct: c = mean(2v − 1): [1,1] → 1, [1,0] → 0, [0,0] → −1, [1,1] → 1, [0,1] → 0;
        //   the 3 lowest are 2 (−1), then the two zeros 1, 4 (stable) → keep 0, 3.
        // Incorrect: c = −mean(2v − 1): [1,1] → −1, [0,0] → 1, [0,1] → 0 → drop 5 → keep 6, 7.
        let g = group(
            &[true, true, true, true, true, false, false, false],
            &[
                &[1.0, 1.0],
                &[1.0, 0.0],
                &[0.0, 0.0],
                &[1.0, 1.0],
                &[0.0, 1.0],
                &[1.0, 1.0],
                &[0.0, 0.0],
                &[0.0, 1.0],
            ],
        );
        let p = prof(Mode::Both, 4);
        assert_eq!(kept_idx(&p, &g), [0, 3, 6, 7]);
        // GRPO on the kept rewards [1, 1, 0, 0]: mean 0.5, unbiased std
        // = sqrt(4·0.25/3) = 0.57735 → A = ±0.5/0.57735 = ±0.866025.
        let c = p.estimate(&[g]).unwrap();
        let want = [0.866025, 0.0, 0.0, 0.866025, 0.0, 0.0, -0.866025, -0.866025];
        for (i, (got, w)) in c[0].iter().zip(want).enumerate() {
            match got {
                Credit::Sequence(a) => assert!((a - w).abs() < 1e-4, "{i}: {a} vs {w}"),
                Credit::Excluded => assert!([1, 2, 4, 5].contains(&i), "{i} excluded"),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            c[0].iter().filter(|c| **c == Credit::Excluded).count(),
            4,
            "{c:?}"
        );
    }

    #[test]
    fn unbalanced_and_homogeneous_groups() {
        let steps: Vec<&[f32]> = vec![
            &[1.0],
            &[0.0],
            &[1.0],
            &[0.0],
            &[1.0],
            &[0.0],
            &[1.0],
            &[0.0],
        ];
        let p = prof(Mode::Both, 4);
        // n⁺ = 7, n⁻ = 1: k⁺ = 4, k⁻ = 0 → keep 3 correct + the 1 incorrect.
        // Correct c: +1 at 0, 2, 4, 6; −1 at 1, 3, 5 → drop 1, 3, 5 and then 0 (first tie).
        let mut correct = [true; 8];
        correct[7] = false;
        assert_eq!(kept_idx(&p, &group(&correct, &steps)), [2, 4, 6, 7]);
        // n⁺ = 1, n⁻ = 7: k⁺ = −1 ≤ 0 → drop 4 incorrect, keep the correct one + 3.
        // Incorrect (1..8) c = −(2v − 1): 1 → +1, 2 → −1, 3 → +1, 4 → −1, 5 → +1, 6 → −1,
        // 7 → +1 → drop 2, 4, 6 and then 1 (first of the +1 ties) → keep 0, 3, 5, 7.
        let mut correct = [false; 8];
        correct[0] = true;
        assert_eq!(kept_idx(&p, &group(&correct, &steps)), [0, 3, 5, 7]);
        // All correct: Δ = 8, k⁺ = min(4, 6) = 4 → the 4 lowest-c correct go; GRPO on
        // four equal rewards gives 0.
        let g = group(&[true; 8], &steps);
        assert_eq!(kept_idx(&p, &g), [0, 2, 4, 6]);
        let c = p.estimate(&[g]).unwrap();
        assert_eq!(
            c[0].iter().filter(|c| **c == Credit::Sequence(0.0)).count(),
            4
        );
        // remove > n removes the whole group; remove 0 keeps it.
        let g = group(&[true, false], &[&[1.0], &[0.0]]);
        assert!(kept_idx(&prof(Mode::Both, 5), &g).is_empty());
        assert_eq!(kept_idx(&prof(Mode::Both, 0), &g), [0, 1]);
    }

    #[test]
    fn modes() {
        // n⁺ = 4 (0..4), n⁻ = 4 (4..8), R = 4 → k⁺ = round(2) = 2, k⁻ = 2.
        // Correct c: 0 → −1, 1 → +1, 2 → −1, 3 → +1. Incorrect c: 4 → −1, 5 → +1, 6 → −1,
        // 7 → +1.
        let correct = [true, true, true, true, false, false, false, false];
        let steps: Vec<&[f32]> = vec![
            &[0.0],
            &[1.0],
            &[0.0],
            &[1.0],
            &[1.0],
            &[0.0],
            &[1.0],
            &[0.0],
        ];
        let g = group(&correct, &steps);
        assert_eq!(kept_idx(&prof(Mode::Both, 4), &g), [1, 3, 5, 7]);
        // no_separation: the four −1s go, whichever side: 0, 2, 4, 6.
        assert_eq!(kept_idx(&prof(Mode::NoSeparation, 4), &g), [1, 3, 5, 7]);
        // Unbalanced: make every correct one consistent (+1) except 0; all incorrect −1
        // except 7. no_separation drops 4, 5, 6 (−1) and 0 → keeps 1, 2, 3, 7 (3 + 1);
        // both keeps 2 + 2.
        let steps: Vec<&[f32]> = vec![
            &[0.0],
            &[1.0],
            &[1.0],
            &[1.0],
            &[1.0],
            &[1.0],
            &[1.0],
            &[0.0],
        ];
        let g = group(&correct, &steps);
        assert_eq!(kept_idx(&prof(Mode::NoSeparation, 4), &g), [1, 2, 3, 7]);
        let both = kept_idx(&prof(Mode::Both, 4), &g);
        assert_eq!(both.iter().filter(|&&i| i < 4).count(), 2);
        // correct mode: the correct side is ranked (0 goes, then the first tie 1), the
        // incorrect side is random but balanced, seeded and repeatable.
        let pc = prof(Mode::Correct, 4);
        let k = kept_idx(&pc, &g);
        assert_eq!(&k[..2], [2, 3]);
        assert_eq!(k.len(), 4);
        assert_eq!(k, kept_idx(&pc, &g));
        // Over many seeds the random side keeps each incorrect response about half the
        // time, so it is not ranking by c (which would always keep 7).
        let mut kept7 = 0;
        for seed in 0..200 {
            let p = Prof {
                seed,
                ..prof(Mode::Correct, 4)
            };
            let k = kept_idx(&p, &g);
            assert_eq!(k.iter().filter(|&&i| i >= 4).count(), 2);
            kept7 += usize::from(k.contains(&7));
        }
        // Binomial(200, 0.5): sd ≈ 7
        assert!((60..=140).contains(&kept7), "{kept7}");
        // incorrect mode: the incorrect side is ranked: −1 ties at 4, 5, 6 → drop 4, 5
        // → keep 6, 7.
        let k = kept_idx(&prof(Mode::Incorrect, 4), &g);
        assert_eq!(&k[2..], [6, 7]);
    }

    #[test]
    fn no_step_rewards_is_an_error_naming_the_fix() {
        let e = Prof::default()
            .estimate(&[scored(&[1.0, 0.0])])
            .unwrap_err()
            .to_string();
        assert!(e.contains("process_reward"), "{e}");
        // empty batches are fine
        assert!(Prof::default().estimate(&[]).unwrap().is_empty());
    }

    #[test]
    fn deserializes_by_name_and_rejects_unknown_fields() {
        let p: Box<dyn AdvantageEstimator> = serde_saphyr::from_str(
            "type: prof\nremove: 2\nmin_steps: 1\nmode: no_separation\ninner: {type: grpo, scale: none}\n",
        )
        .unwrap();
        // r = [1, 0, 0, 0], c = [+1, −1, +1, +1]: the 2 lowest are 1 (−1), then 0 (first
        // of the +1 ties) → keep 2, 3 (both incorrect) → Dr. GRPO: 0, 0.
        let g = group(
            &[true, false, false, false],
            &[&[1.0], &[1.0], &[0.0], &[0.0]],
        );
        let c = p.estimate(&[g]).unwrap();
        assert_eq!(c[0][..2], [Credit::Excluded, Credit::Excluded]);
        assert_eq!(seq(&c[0][2..]), [0.0, 0.0]);
        assert!(
            serde_json::from_str::<Box<dyn AdvantageEstimator>>(r#"{"type":"prof","remov":2}"#)
                .is_err()
        );
        assert!(foil_core::registry::names_of("AdvantageEstimator").contains(&"prof"));
    }
}
