//! Training data for reward models: responses with outcome labels, optional step labels,
//! and the preference pairs among them. Built from the run itself (the policy's own
//! samples and the task's reference solutions, judged by a verifier) or read from JSONL.
//!
//! From the run [recon]: for each problem, the reference solution and `n` sampled
//! completions (duplicates dropped) are judged by the verifier; `label = 1` when the
//! verdict is correct, step labels are `step_rewards ≥ 0.5`; pairs are correct ≻ incorrect
//! within a problem, at most `max_pairs_per_prompt` of them (a seeded choice).
//!
//! JSONL, one object per line, either a pair `{"prompt", "chosen", "rejected"}` or a
//! labelled sample `{"prompt", "response", "label"}` (label `true`/`false` or a number in
//! `[0, 1]`, optional `"steps": [1, 0, …]` for a process model). Labelled samples of one
//! prompt are paired correct ≻ incorrect like sampled ones.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use rand::seq::SliceRandom;
use serde::Deserialize;

use foil_core::ScoredGroup;

/// One response with what is known about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub prompt: String,
    pub response: String,
    /// Outcome label in `[0, 1]` (1 = correct / preferred).
    pub label: f32,
    /// Step labels (process models); empty when unknown.
    pub steps: Vec<f32>,
}

/// Items and the `(preferred, dispreferred)` index pairs among them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dataset {
    pub items: Vec<Item>,
    pub pairs: Vec<(usize, usize)>,
}

impl Dataset {
    /// Adds pairs correct ≻ incorrect among `members` (indices of one prompt's items),
    /// at most `max` (0 = all), chosen with `rng`.
    fn pair_up(&mut self, members: &[usize], max: usize, rng: &mut impl rand::Rng) {
        let mut pairs: Vec<(usize, usize)> = Vec::new();
        for &i in members {
            for &j in members {
                if self.items[i].label >= 0.5 && self.items[j].label < 0.5 {
                    pairs.push((i, j));
                }
            }
        }
        if max > 0 && pairs.len() > max {
            pairs.shuffle(rng);
            pairs.truncate(max);
        }
        self.pairs.extend(pairs);
    }

    /// From judged groups: every distinct response of a group (the reference solution
    /// first when `reference` gives its verdict) becomes an item.
    pub fn from_groups(
        groups: &[(ScoredGroup, Option<foil_core::Verdict>)],
        max_pairs_per_prompt: usize,
        rng: &mut impl rand::Rng,
    ) -> Self {
        let mut d = Dataset::default();
        for (g, reference) in groups {
            let mut members: Vec<usize> = Vec::new();
            let mut seen: Vec<&str> = Vec::new();
            let candidates = reference
                .iter()
                .map(|v| (g.group.problem.solution.as_str(), v))
                .chain(
                    g.group
                        .completions
                        .iter()
                        .map(|c| c.text.as_str())
                        .zip(&g.verdicts),
                );
            for (text, verdict) in candidates {
                if seen.contains(&text) {
                    continue;
                }
                seen.push(text);
                members.push(d.items.len());
                d.items.push(Item {
                    prompt: g.group.problem.prompt.clone(),
                    response: text.to_string(),
                    label: if verdict.correct { 1.0 } else { 0.0 },
                    steps: verdict
                        .step_rewards
                        .iter()
                        .map(|&r| if r >= 0.5 { 1.0 } else { 0.0 })
                        .collect(),
                });
            }
            d.pair_up(&members, max_pairs_per_prompt, rng);
        }
        d
    }

    /// Reads a JSONL file of pairs and/or labelled samples. Errors name the file and line.
    pub fn from_jsonl(
        path: &Path,
        max_pairs_per_prompt: usize,
        rng: &mut impl rand::Rng,
    ) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read reward-model data {}", path.display()))?;
        let mut d = Dataset::default();
        let mut by_prompt: HashMap<String, Vec<usize>> = HashMap::new();
        let mut order: Vec<String> = Vec::new();
        for (k, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let at = || format!("{} line {}", path.display(), k + 1);
            let record: Line = serde_json::from_str(line).with_context(|| {
                format!(
                    "{}: expected {{\"prompt\", \"chosen\", \"rejected\"}} or \
                     {{\"prompt\", \"response\", \"label\"}}",
                    at()
                )
            })?;
            match record {
                Line::Pair {
                    prompt,
                    chosen,
                    rejected,
                } => {
                    let i = d.items.len();
                    for (response, label) in [(chosen, 1.0), (rejected, 0.0)] {
                        d.items.push(Item {
                            prompt: prompt.clone(),
                            response,
                            label,
                            steps: Vec::new(),
                        });
                    }
                    d.pairs.push((i, i + 1));
                }
                Line::Label {
                    prompt,
                    response,
                    label,
                    steps,
                } => {
                    let label = match label {
                        LabelValue::Bool(b) => f32::from(u8::from(b)),
                        LabelValue::Number(x) if (0.0..=1.0).contains(&x) => x,
                        LabelValue::Number(x) => {
                            anyhow::bail!("{}: label {x} is outside [0, 1]", at())
                        }
                    };
                    if let Some(bad) = steps.iter().find(|s| !(0.0..=1.0).contains(*s)) {
                        anyhow::bail!("{}: step label {bad} is outside [0, 1]", at());
                    }
                    if !by_prompt.contains_key(&prompt) {
                        order.push(prompt.clone());
                    }
                    by_prompt
                        .entry(prompt.clone())
                        .or_default()
                        .push(d.items.len());
                    d.items.push(Item {
                        prompt,
                        response,
                        label,
                        steps,
                    });
                }
            }
        }
        anyhow::ensure!(!d.items.is_empty(), "{} holds no records", path.display());
        for prompt in order {
            let members = by_prompt[&prompt].clone();
            d.pair_up(&members, max_pairs_per_prompt, rng);
        }
        Ok(d)
    }

    /// Splits off the last `fraction` of items (with the pairs inside each part); pairs
    /// that straddle the cut are dropped.
    pub fn split(self, fraction: f64) -> (Dataset, Dataset) {
        let n = self.items.len();
        let cut = n - ((n as f64 * fraction).round() as usize).min(n);
        let (a, b) = self.items.split_at(cut);
        let train_pairs = self
            .pairs
            .iter()
            .filter(|(i, j)| *i < cut && *j < cut)
            .copied()
            .collect();
        let test_pairs = self
            .pairs
            .iter()
            .filter(|(i, j)| *i >= cut && *j >= cut)
            .map(|(i, j)| (i - cut, j - cut))
            .collect();
        (
            Dataset {
                items: a.to_vec(),
                pairs: train_pairs,
            },
            Dataset {
                items: b.to_vec(),
                pairs: test_pairs,
            },
        )
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Line {
    Pair {
        prompt: String,
        chosen: String,
        rejected: String,
    },
    Label {
        prompt: String,
        response: String,
        label: LabelValue,
        #[serde(default)]
        steps: Vec<f32>,
    },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum LabelValue {
    Bool(bool),
    Number(f32),
}

#[cfg(test)]
mod tests {
    use super::*;
    use foil_core::{Completion, Finish, Group, Problem, Verdict};

    fn rng() -> impl rand::Rng {
        foil_core::rng::rng(0, &[1])
    }

    #[test]
    fn groups_pair_correct_over_incorrect_and_drop_duplicates() {
        let problem = Problem {
            id: "p".into(),
            prompt: "Q:1+1=".into(),
            solution: "1+1=2|A:2".into(),
            answer: "2".into(),
            difficulty: 2,
        };
        let c = |t: &str| Completion {
            tokens: vec![],
            text: t.into(),
            logprobs: vec![],
            entropies: vec![],
            finish: Finish::Eos,
        };
        let g = ScoredGroup {
            group: Group {
                problem,
                completions: vec![c("1+1=3|A:3"), c("1+1=2|A:2"), c("1+1=3|A:3")],
            },
            verdicts: vec![
                Verdict {
                    reward: 0.0,
                    correct: false,
                    step_rewards: vec![0.0],
                },
                Verdict::outcome(true),
                Verdict::outcome(false),
            ],
            baseline: None,
        };
        let d = Dataset::from_groups(&[(g, Some(Verdict::outcome(true)))], 0, &mut rng());
        // reference (correct), "…=3" (wrong); "…=2" duplicates the reference, the second
        // "…=3" duplicates the first: 2 items, 1 pair reference ≻ wrong
        assert_eq!(d.items.len(), 2);
        assert_eq!(d.items[1].steps, vec![0.0]);
        assert_eq!(d.pairs, vec![(0, 1)]);
    }

    #[test]
    fn jsonl_reads_pairs_and_labels_and_names_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.jsonl");
        std::fs::write(
            &path,
            "{\"prompt\":\"a\",\"chosen\":\"x\",\"rejected\":\"y\"}\n\n\
             {\"prompt\":\"b\",\"response\":\"u\",\"label\":true}\n\
             {\"prompt\":\"b\",\"response\":\"v\",\"label\":0.0}\n",
        )
        .unwrap();
        let d = Dataset::from_jsonl(&path, 0, &mut rng()).unwrap();
        assert_eq!(d.items.len(), 4);
        // the pair line, then the label lines of prompt "b" paired u ≻ v
        assert_eq!(d.pairs, vec![(0, 1), (2, 3)]);
        std::fs::write(&path, "{\"prompt\":\"a\",\"chosen\":\"x\"}\n").unwrap();
        let e = format!(
            "{:#}",
            Dataset::from_jsonl(&path, 0, &mut rng()).unwrap_err()
        );
        assert!(e.contains("d.jsonl line 1"), "{e}");
        std::fs::write(&path, "{\"prompt\":\"a\",\"response\":\"x\",\"label\":3}\n").unwrap();
        let e = format!(
            "{:#}",
            Dataset::from_jsonl(&path, 0, &mut rng()).unwrap_err()
        );
        assert!(e.contains("line 1") && e.contains("outside [0, 1]"), "{e}");
    }

    #[test]
    fn split_keeps_pairs_inside_each_part() {
        let item = |l: f32| Item {
            prompt: "p".into(),
            response: format!("{l}"),
            label: l,
            steps: vec![],
        };
        let d = Dataset {
            items: vec![item(1.0), item(0.0), item(1.0), item(0.0)],
            pairs: vec![(0, 1), (1, 2), (2, 3)],
        };
        // 4 items, fraction 0.5 → cut at 2: (0,1) train, (2,3) → (0,1) test, (1,2) dropped
        let (a, b) = d.split(0.5);
        assert_eq!(a.pairs, vec![(0, 1)]);
        assert_eq!(b.pairs, vec![(0, 1)]);
    }
}
