//! Shared checks for group-relative estimators.

use foil_core::anyhow::{Result, bail};
use foil_core::{Credit, ScoredGroup};

/// Applies a per-group rule `rewards → advantages` to every group, one
/// [`Credit::Sequence`] per completion.
pub(crate) fn sequence_credits(
    groups: &[ScoredGroup],
    rule: impl Fn(&[f64]) -> Vec<f64>,
) -> Result<Vec<Vec<Credit>>> {
    groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let r = rewards(i, g)?;
            Ok(rule(&r)
                .into_iter()
                .map(|a| Credit::Sequence(a as f32))
                .collect())
        })
        .collect()
}

/// The rewards of `group` as `f64`, after checking there is one verdict per completion.
pub(crate) fn rewards(index: usize, group: &ScoredGroup) -> Result<Vec<f64>> {
    let (n, v) = (group.group.completions.len(), group.verdicts.len());
    if n != v {
        bail!(
            "group {index} (problem {}) has {n} completions but {v} verdicts",
            group.group.problem.id
        );
    }
    Ok(group.verdicts.iter().map(|v| f64::from(v.reward)).collect())
}

/// Mean of a non-empty slice.
pub(crate) fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

#[cfg(test)]
pub(crate) mod testing {
    use foil_core::{Completion, Finish, Group, Problem, ScoredGroup, Verdict};

    /// A scored group with one empty completion per reward.
    pub fn scored(rewards: &[f32]) -> ScoredGroup {
        let completion = Completion {
            tokens: vec![],
            text: String::new(),
            logprobs: vec![],
            entropies: vec![],
            finish: Finish::Eos,
        };
        ScoredGroup {
            group: Group {
                problem: Problem {
                    id: "p".into(),
                    prompt: String::new(),
                    solution: String::new(),
                    answer: String::new(),
                    difficulty: 0,
                },
                completions: vec![completion; rewards.len()],
            },
            verdicts: rewards
                .iter()
                .map(|&r| Verdict {
                    reward: r,
                    correct: r > 0.5,
                    step_rewards: vec![],
                })
                .collect(),
            baseline: None,
        }
    }

    /// A scored group whose completion `i` has `lens[i]` tokens and the given finish
    /// reasons (`Finish::Eos` where `finish` is shorter than `rewards`).
    pub fn scored_lens(rewards: &[f32], lens: &[usize], finish: &[Finish]) -> ScoredGroup {
        assert_eq!(rewards.len(), lens.len());
        let mut g = scored(rewards);
        for (i, c) in g.group.completions.iter_mut().enumerate() {
            c.tokens = vec![1; lens[i]];
            c.logprobs = vec![0.0; lens[i]];
            c.finish = finish.get(i).copied().unwrap_or(Finish::Eos);
        }
        g
    }

    /// The sequence advantages of one estimated group.
    pub fn seq(credits: &[foil_core::Credit]) -> Vec<f32> {
        credits
            .iter()
            .map(|c| match c {
                foil_core::Credit::Sequence(a) => *a,
                other => panic!("expected sequence credit, got {other:?}"),
            })
            .collect()
    }
}
