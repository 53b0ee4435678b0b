//! ARMAP-style triplets (Chen et al. 2025, arXiv 2502.12130, methods.md §18): for each
//! intent (problem) a positive trajectory and a synthesized negative for the same intent.
//!
//! ARMAP's agents explore a web/science environment, an LLM relabels the intent a
//! trajectory fulfils and writes a negative trajectory [paper/code]. The text-task
//! analogue here [recon, methods.md §18 "tiny experiment"]: the intent is the prompt,
//! a positive is a correct trajectory (the reference solution or a correct self-sample),
//! and its negative is the same trajectory with one step perturbed so that it reaches
//! another value:
//!
//! ```text
//! positive   17+5=22|22-3=19|A:19
//! negative   17+5=22|22-3=16|A:16     one digit of the answer changed (here 9 → 6, a
//!                                     seeded choice of position and digit); the last
//!                                     written step's result, when it equals the answer,
//!                                     follows it, so the trajectory reaches 16
//! ```
//!
//! No checker judges the negative: it is labelled incorrect by construction (a different
//! final value for the same intent), as in ARMAP. When the positive has step labels the
//! negative keeps them with the last one set to 0.

use rand::Rng;

use foil_core::{Completion, Finish, ScoredGroup, Verdict};

/// The perturbed copy of `response`, or `None` when it has no digit after `marker`.
pub fn corrupt(response: &str, marker: &str, rng: &mut impl Rng) -> Option<String> {
    let at = response.rfind(marker)? + marker.len();
    let answer: String = response[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    let digits: Vec<usize> = answer
        .char_indices()
        .filter(|(_, c)| c.is_ascii_digit())
        .map(|(i, _)| i)
        .collect();
    if digits.is_empty() {
        return None;
    }
    let pos = digits[rng.random_range(0..digits.len())];
    let old = answer.as_bytes()[pos] - b'0';
    // a leading digit of a multi-digit number stays non-zero
    let leading = pos == digits[0] && digits.len() > 1;
    let choices: Vec<u8> = (0..10u8)
        .filter(|&d| d != old && !(leading && d == 0))
        .collect();
    let new = choices[rng.random_range(0..choices.len())];
    let mut changed = answer.clone().into_bytes();
    changed[pos] = b'0' + new;
    let changed = String::from_utf8(changed).ok()?;
    let mut head = response[..at].to_string();
    // the last written step `…=v|` before the marker follows the new answer
    let step_end = head.len() - marker.len();
    let before = &head[..step_end];
    let sep_len = before
        .chars()
        .last()
        .filter(|c| !c.is_ascii_digit())
        .map_or(0, char::len_utf8);
    let step = &before[..before.len() - sep_len];
    if let Some(eq) = step.rfind('=')
        && step[eq + 1..] == answer
    {
        head = format!("{}{}{}", &step[..eq + 1], changed, &head[step.len()..]);
    }
    Some(format!("{head}{changed}{}", &response[at + answer.len()..]))
}

/// Appends to every group one synthesized negative per distinct correct trajectory (the
/// reference solution when `reference` judged it correct, and the correct samples), so
/// that the dataset pairs each positive with its negative for the same intent.
pub fn add_negatives(
    groups: &mut [(ScoredGroup, Option<Verdict>)],
    marker: &str,
    rng: &mut impl Rng,
) {
    for (g, reference) in groups.iter_mut() {
        let mut positives: Vec<(String, Vec<f32>)> = Vec::new();
        if let Some(v) = reference
            && v.correct
        {
            positives.push((g.group.problem.solution.clone(), v.step_rewards.clone()));
        }
        for (c, v) in g.group.completions.iter().zip(&g.verdicts) {
            if v.correct && !positives.iter().any(|(t, _)| *t == c.text) {
                positives.push((c.text.clone(), v.step_rewards.clone()));
            }
        }
        for (text, steps) in positives {
            let Some(negative) = corrupt(&text, marker, rng) else {
                continue;
            };
            let mut step_rewards = steps;
            if let Some(last) = step_rewards.last_mut() {
                *last = 0.0;
            }
            g.group.completions.push(Completion {
                tokens: Vec::new(),
                text: negative,
                logprobs: Vec::new(),
                entropies: Vec::new(),
                finish: Finish::Eos,
            });
            g.verdicts.push(Verdict {
                reward: 0.0,
                correct: false,
                step_rewards,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Dataset;
    use foil_core::{Group, Problem};

    #[test]
    fn corruption_changes_one_answer_digit_and_the_last_step_follows() {
        let mut r = foil_core::rng::rng(0, &[7]);
        for _ in 0..50 {
            let n = corrupt("17+5=22|22-3=19|A:19", "A:", &mut r).unwrap();
            // shape: "17+5=22|22-3=" + v + "|A:" + v with v ≠ 19, two digits, no leading 0
            let v = n.strip_prefix("17+5=22|22-3=").unwrap();
            let (a, b) = v.split_once("|A:").unwrap();
            assert_eq!(a, b, "{n}");
            assert_ne!(a, "19");
            assert_eq!(a.len(), 2);
            assert!(!a.starts_with('0'));
            // exactly one of the two digits differs from 19
            let diff = a.bytes().zip("19".bytes()).filter(|(x, y)| x != y).count();
            assert_eq!(diff, 1, "{n}");
        }
        // the last step's result differs from the answer (a shortcut): only the answer moves
        let n = corrupt("2+3=5|A:7", "A:", &mut r).unwrap();
        assert!(n.starts_with("2+3=5|A:") && n != "2+3=5|A:7", "{n}");
        // nothing to corrupt
        assert_eq!(corrupt("2+3=5", "A:", &mut r), None);
        assert_eq!(corrupt("A:", "A:", &mut r), None);
    }

    #[test]
    fn each_positive_gets_a_negative_paired_below_it() {
        let problem = Problem {
            id: "p".into(),
            prompt: "Q:2+3=".into(),
            solution: "2+3=5|A:5".into(),
            answer: "5".into(),
            difficulty: 2,
        };
        let c = |t: &str| Completion {
            tokens: vec![],
            text: t.into(),
            logprobs: vec![],
            entropies: vec![],
            finish: Finish::Eos,
        };
        let mut groups = vec![(
            ScoredGroup {
                group: Group {
                    problem,
                    completions: vec![c("2+3=5|A:5"), c("2+3=6|A:6")],
                },
                verdicts: vec![Verdict::outcome(true), Verdict::outcome(false)],
                baseline: None,
            },
            Some(Verdict::outcome(true)),
        )];
        let mut r = foil_core::rng::rng(0, &[8]);
        add_negatives(&mut groups, "A:", &mut r);
        // positives: the reference "2+3=5|A:5" (the correct sample is the same text): one
        // synthesized negative "2+3=d|A:d", d ≠ 5
        let g = &groups[0].0;
        assert_eq!(g.group.completions.len(), 3);
        assert!(!g.verdicts[2].correct);
        let neg = &g.group.completions[2].text;
        assert!(neg.starts_with("2+3=") && neg != "2+3=5|A:5", "{neg}");
        let d = Dataset::from_groups(&groups, 0, &mut r);
        // items: reference ✓, "2+3=6|A:6" ✗, the negative ✗ (unless it is also 6 → dup)
        // pairs: reference ≻ each incorrect item
        let wrong = d.items.len() - 1;
        assert_eq!(d.pairs.len(), wrong);
        assert!(d.pairs.iter().all(|&(i, _)| i == 0));
    }
}
