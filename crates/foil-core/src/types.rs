//! Data that flows through the loop: problems, completions, groups, verdicts and credit.

use serde::{Deserialize, Serialize};

/// One task instance: what the policy is asked, and what the verifier checks against.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Problem {
    /// Stable identifier within its task (e.g. `train-00042`).
    pub id: String,
    /// The text the policy continues.
    pub prompt: String,
    /// A reference demonstration (the SFT target), without the end-of-sequence marker.
    pub solution: String,
    /// The final answer the verifier compares with.
    pub answer: String,
    /// A difficulty label (e.g. number of operands) for per-difficulty reports.
    pub difficulty: u32,
}

/// Why generation of a completion stopped.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    /// The end-of-sequence token was produced.
    Eos,
    /// A stop string was produced (it is kept in `text`).
    Stop,
    /// `max_tokens` was reached.
    Length,
}

/// One sampled response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Completion {
    /// Generated token ids, including the final EOS when `finish == Eos`.
    pub tokens: Vec<u32>,
    /// Decoded text without special tokens.
    pub text: String,
    /// Behaviour-policy log-probability of each token in `tokens` (after temperature and
    /// truncation were applied, i.e. of the distribution actually sampled from).
    pub logprobs: Vec<f32>,
    /// Entropy `H_t = −Σ_v p_v log p_v` of the model's own next-token distribution
    /// (`softmax(logits)`, before temperature and truncation) at each generated token.
    /// Filled by the local sampler; empty when a sampler cannot see the logits.
    #[serde(default)]
    pub entropies: Vec<f32>,
    /// Why it stopped.
    pub finish: Finish,
}

/// The `n` completions sampled for one problem.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Group {
    pub problem: Problem,
    pub completions: Vec<Completion>,
}

/// A verifier's judgement of one completion.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Verdict {
    /// Scalar reward.
    pub reward: f32,
    /// Whether the final answer is correct (the outcome used for pass@k).
    pub correct: bool,
    /// Per-step rewards when the verifier checks steps (empty otherwise).
    pub step_rewards: Vec<f32>,
}

impl Verdict {
    /// A binary outcome verdict: reward 1 if correct, else 0.
    pub fn outcome(correct: bool) -> Self {
        Self {
            reward: if correct { 1.0 } else { 0.0 },
            correct,
            step_rewards: Vec::new(),
        }
    }
}

/// What a learned reward model says about one response ([`crate::RewardModel`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RewardScore {
    /// The response's score (a logit). For a process reward model: its step scores
    /// combined (by the model's `combine` rule).
    pub score: f32,
    /// One score (logit) per written step for a process reward model; empty otherwise.
    pub steps: Vec<f32>,
}

/// A group with one verdict per completion.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScoredGroup {
    pub group: Group,
    pub verdicts: Vec<Verdict>,
    /// The verdict of a baseline completion of the same prompt that is not trained on
    /// (ReMax's greedy rollout), when the stage samples one (`rl.baseline_sampler`).
    #[serde(default)]
    pub baseline: Option<Verdict>,
}

impl ScoredGroup {
    /// `group` with each completion judged by `verifier`, in order (no baseline).
    pub fn verified(group: Group, verifier: &dyn crate::Verifier) -> Self {
        let verdicts = group
            .completions
            .iter()
            .map(|c| verifier.verify(&group.problem, &c.text))
            .collect();
        Self {
            group,
            verdicts,
            baseline: None,
        }
    }

    /// The scalar rewards of the group, in completion order.
    pub fn rewards(&self) -> Vec<f32> {
        self.verdicts.iter().map(|v| v.reward).collect()
    }
    /// Number of completions judged correct.
    pub fn num_correct(&self) -> usize {
        self.verdicts.iter().filter(|v| v.correct).count()
    }
}

/// Credit assigned to one completion by an advantage estimator. Lowered to a per-token
/// advantage before an objective sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Credit {
    /// One advantage shared by every token of the completion.
    Sequence(f32),
    /// One advantage per generated token.
    Token(Vec<f32>),
    /// Left out of the update altogether (not even counted by token-mean aggregation),
    /// e.g. the negatives under positive-sample reinforcement.
    Excluded,
}

impl Credit {
    /// Per-token advantages for a completion of `len` tokens (`None` when excluded).
    pub fn per_token(&self, len: usize) -> Option<Vec<f32>> {
        Some(match self {
            Credit::Excluded => return None,
            Credit::Sequence(a) => vec![*a; len],
            Credit::Token(v) => {
                let mut out = v.clone();
                out.resize(len, 0.0);
                out
            }
        })
    }

    /// The sequence-level value, if this credit is one.
    pub fn sequence(&self) -> Option<f32> {
        match self {
            Credit::Sequence(a) => Some(*a),
            _ => None,
        }
    }
}
