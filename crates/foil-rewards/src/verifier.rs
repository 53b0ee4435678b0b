//! Using a trained reward model: the `reward_model` verifier and the `learned`
//! [`RewardModel`] part, both loading a directory written by the `reward_model` stage.
//!
//! ```text
//! outcome model:  s = r(x, y)                         (a logit)
//! process model:  p_j = σ(r_j(x, y))  per written step,  c = combine_j p_j
//!                 combine ∈ {min, product, mean, last}  (Lightman et al. 2023 use
//!                 product and min) [paper];  no written steps → c = ½ [recon]
//!                 s = logit(c)
//! verdict:        reward = σ(s) (output: sigmoid, default) or s (output: raw)
//!                 correct = reward > threshold,  step_rewards = [p_j] (process models)
//! ```
//!
//! The model is loaded by `prepare` (stages call it before sampling), or on the first
//! `verify`; an unreadable directory is an error that names it. A response the model's
//! tokenizer cannot encode is judged `reward = 0` (raw: the score of `c = 0`), incorrect.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use foil_core::backend::parse_device;
use foil_core::{Problem, RewardModel, RewardScore, Verdict, Verifier, register_part};

use crate::scorer::{LoadedRewardModel, RmKind};

/// How a process model's step probabilities become one score.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Combine {
    /// The weakest step.
    #[default]
    Min,
    /// Probability that every step is right (independent steps).
    Product,
    Mean,
    /// The last step's.
    Last,
}

/// Verdict reward scale.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// `σ(s)` in (0, 1).
    #[default]
    Sigmoid,
    /// The logit `s`.
    Raw,
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `ln(p / (1 − p))`, with `p` kept inside `[1e-6, 1 − 1e-6]`.
pub fn logit(p: f32) -> f32 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

/// Combined step probability of step logits `steps` (½ without steps).
pub fn combine_steps(steps: &[f32], how: Combine) -> f32 {
    if steps.is_empty() {
        return 0.5;
    }
    let p = steps.iter().map(|&s| sigmoid(s));
    match how {
        Combine::Min => p.fold(1.0, f32::min),
        Combine::Product => p.product(),
        Combine::Mean => p.sum::<f32>() / steps.len() as f32,
        Combine::Last => sigmoid(steps[steps.len() - 1]),
    }
}

/// The loaded model, shared by clones of a part.
#[derive(Debug, Default)]
struct Lazy(OnceLock<Arc<LoadedRewardModel>>);

impl Lazy {
    fn get(&self, path: &Path, device: &str) -> anyhow::Result<Arc<LoadedRewardModel>> {
        if let Some(m) = self.0.get() {
            return Ok(m.clone());
        }
        let device = parse_device(device)?;
        let m = Arc::new(LoadedRewardModel::load(path, &device)?);
        Ok(self.0.get_or_init(|| m).clone())
    }
}

/// Scores of responses by a loaded model: (score logit, step logits).
fn score(
    model: &LoadedRewardModel,
    problem: &Problem,
    responses: &[&str],
    combine: Combine,
) -> Vec<RewardScore> {
    responses
        .iter()
        .map(
            |r| match model.score_texts(&[(&model.meta.prompt_of(problem), r)]) {
                Ok(mut s) => {
                    let s = s.remove(0);
                    match model.meta.kind {
                        RmKind::Outcome => RewardScore {
                            score: s[0],
                            steps: Vec::new(),
                        },
                        RmKind::Process => RewardScore {
                            score: logit(combine_steps(&s, combine)),
                            steps: s,
                        },
                    }
                }
                Err(_) => RewardScore {
                    score: logit(0.0),
                    steps: Vec::new(),
                },
            },
        )
        .collect()
}

/// Recipe part: `verifier: {type: reward_model, path: runs/x/reward_model, output: sigmoid,
/// combine: min, threshold: 0.5, device: cpu}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RewardModelVerifier {
    /// A directory written by the `reward_model` stage.
    pub path: PathBuf,
    pub output: Output,
    /// Step combination (process models).
    pub combine: Combine,
    /// `correct = reward > threshold` (in the units of `output`).
    pub threshold: f32,
    /// Where the model runs (`cpu`, `cuda:0`, …).
    pub device: String,
    #[serde(skip)]
    loaded: Lazy,
}

impl Default for RewardModelVerifier {
    fn default() -> Self {
        Self {
            path: PathBuf::from("reward_model"),
            output: Output::Sigmoid,
            combine: Combine::Min,
            threshold: 0.5,
            device: "cpu".into(),
            loaded: Lazy::default(),
        }
    }
}

register_part!(
    Verifier,
    "reward_model",
    RewardModelVerifier,
    "a trained reward model as the verifier: reward σ(score) or the score, correct = reward > threshold, step rewards from a process model"
);

impl RewardModelVerifier {
    /// The verifier of the model in `path`, other settings at their defaults.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            ..Default::default()
        }
    }

    fn model(&self) -> anyhow::Result<Arc<LoadedRewardModel>> {
        self.loaded.get(&self.path, &self.device)
    }
}

#[typetag::serde(name = "reward_model")]
impl Verifier for RewardModelVerifier {
    fn prepare(&self) -> anyhow::Result<()> {
        self.model().map(|_| ())
    }

    fn verify(&self, problem: &Problem, response: &str) -> Verdict {
        // prepare() reports a bad path as an error; a caller that skipped it learns here
        let model = self
            .model()
            .unwrap_or_else(|e| panic!("reward_model verifier: {e:#}"));
        let s = score(&model, problem, &[response], self.combine).remove(0);
        let reward = match self.output {
            Output::Sigmoid => sigmoid(s.score),
            Output::Raw => s.score,
        };
        Verdict {
            reward,
            correct: reward > self.threshold,
            step_rewards: s.steps.iter().map(|&x| sigmoid(x)).collect(),
        }
    }
}

/// Recipe part: `{type: learned, path: runs/x/reward_model, combine: min, device: cpu}`,
/// a [`RewardModel`] for filters, best-of-N samplers and stages.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LearnedRewardModel {
    pub path: PathBuf,
    pub combine: Combine,
    pub device: String,
    #[serde(skip)]
    loaded: Lazy,
}

impl Default for LearnedRewardModel {
    fn default() -> Self {
        Self {
            path: PathBuf::from("reward_model"),
            combine: Combine::Min,
            device: "cpu".into(),
            loaded: Lazy::default(),
        }
    }
}

register_part!(
    RewardModel,
    "learned",
    LearnedRewardModel,
    "a reward model trained by the reward_model stage, loaded from its directory"
);

impl LearnedRewardModel {
    /// The model in `path`, other settings at their defaults.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            ..Default::default()
        }
    }
}

#[typetag::serde(name = "learned")]
impl RewardModel for LearnedRewardModel {
    fn prepare(&self) -> anyhow::Result<()> {
        self.loaded.get(&self.path, &self.device).map(|_| ())
    }

    fn score(&self, problem: &Problem, responses: &[&str]) -> anyhow::Result<Vec<RewardScore>> {
        let model = self.loaded.get(&self.path, &self.device)?;
        Ok(score(&model, problem, responses, self.combine))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_combinations_match_hand_values() {
        // logits 0 and ln 3 → p = 0.5 and 0.75
        let s = [0.0, 3f32.ln()];
        assert!((combine_steps(&s, Combine::Min) - 0.5).abs() < 1e-6);
        assert!((combine_steps(&s, Combine::Product) - 0.375).abs() < 1e-6); // 0.5·0.75
        assert!((combine_steps(&s, Combine::Mean) - 0.625).abs() < 1e-6); // (0.5+0.75)/2
        assert!((combine_steps(&s, Combine::Last) - 0.75).abs() < 1e-6);
        assert_eq!(combine_steps(&[], Combine::Min), 0.5);
        // logit(0.75) = ln 3 = 1.098612
        assert!((logit(0.75) - 1.098612).abs() < 1e-5);
    }

    #[test]
    fn a_missing_model_is_an_error_naming_its_path() {
        let v = RewardModelVerifier {
            path: PathBuf::from("/nonexistent/runs/x/reward_model"),
            ..Default::default()
        };
        let e = format!("{:#}", v.prepare().unwrap_err());
        assert!(e.contains("/nonexistent/runs/x/reward_model"), "{e}");
        let m = LearnedRewardModel {
            path: PathBuf::from("/nope/rm"),
            ..Default::default()
        };
        let e = format!("{:#}", m.prepare().unwrap_err());
        assert!(e.contains("/nope/rm"), "{e}");
    }
}
