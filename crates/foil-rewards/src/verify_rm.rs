//! Cooper's reward model (Hong et al. 2025, "Cooper: Co-Optimizing Policy and Reward
//! Models in Reinforcement Learning for Large Language Models", arXiv 2508.05613,
//! methods.md §13): a reference-based scorer (VerifyRM), its co-update during RL, and the
//! deliberately biased labeller of the tiny experiment.
//!
//! ```text
//! VerifyRM input   text = template(prompt, reference answer) ⧺ response ⧺ <eos>
//!                  template default "{prompt}{reference}:"   e.g. Q:7+5-3=9:7+5=12|…|A:9
//!                  p_φ(correct | q, ref, y) = σ(s_φ)          (scorer.rs's scalar head)
//! pre-training     pointwise BCE on labelled samples          (`reward_model` stage,
//!                                                              `reference: true`)
//! Cooper update    after each policy step, on the step's fresh groups:
//!   y⁺ = a distinct rollout the rule verifier marks correct (≤ `pairs_per_group` a group)
//!   y⁻ = y⁺ with its final answer perturbed (triplets.rs `corrupt`), kept only if the
//!        rule verifier marks it incorrect
//!   L_RM = (1/N) Σ −log σ(s(q,ref,y⁺) − s(q,ref,y⁻))          (bradley_terry.rs)
//!   `updates` AdamW steps on the step's pairs (≤ `batch` of them)
//! reward           r = σ(s) (`output: sigmoid`) or s, correct = r > threshold
//! ```
//!
//! What is [secondary] (project page) and what is [recon]: the classifier over (question,
//! reference, completion) trained with BCE, and positives from the rule verifier, are
//! [secondary]; the exact contrastive loss (Bradley–Terry on the score difference) is
//! [recon]; the negatives are written by an assistant LLM in the paper and are a
//! programmatic answer perturbation here [recon, methods.md tiny experiment]; the template
//! is ours [recon] (the char tokenizer of the arithmetic task has no spaces or words).
//!
//! `short_bias` is the exploitable labeller of the tiny experiment (methods.md: "an
//! exploitable bias, e.g. likes … long outputs"): responses with at most `max_steps`
//! written steps are labelled correct whatever their answer, so a reward model pre-trained
//! on its labels rewards stopping early — a shortcut the policy can learn.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use burn::tensor::Tensor;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use foil_core::backend::{B as FB, Device, inner_device};
use foil_core::policy::OptimizerConfig;
use foil_core::run::RunContext;
use foil_core::{Problem, ScoredGroup, Tokenizer, Verdict, Verifier, register_part, rng};
use foil_trainers::cooper::UpdatableReward;

use crate::bradley_terry::BradleyTerry;
use crate::scorer::{Encoded, RmKind, ScoreBatch, ScorerModel, TrainableScorer, score_encoded};
use crate::verifier::{Output, logit};

/// The VerifyRM prompt template of the `reward_model` stage's `reference: true`.
pub const DEFAULT_TEMPLATE: &str = "{prompt}{reference}:";

/// `template` with `{prompt}` and `{reference}` (the problem's answer) filled in.
pub fn input_prompt(template: &str, problem: &Problem) -> String {
    template
        .replace("{prompt}", &problem.prompt)
        .replace("{reference}", problem.answer.trim())
}

// ---------------------------------------------------------------------------------------
// the biased labeller

/// Recipe part: `{type: short_bias, inner: {type: numeric}, max_steps: 1}` — `inner`'s
/// verdict, except that a response with at most `max_steps` written steps (pieces split
/// on `separator` before the one starting with `marker`) is correct with reward 1.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShortBias {
    pub inner: Box<dyn Verifier>,
    pub max_steps: usize,
    pub separator: String,
    pub marker: String,
}

impl Default for ShortBias {
    fn default() -> Self {
        Self {
            inner: Box::new(foil_verifiers::Numeric::default()),
            max_steps: 1,
            separator: "|".into(),
            marker: "A:".into(),
        }
    }
}

register_part!(
    Verifier,
    "short_bias",
    ShortBias,
    "a deliberately biased labeller (Cooper's tiny experiment): inner's verdict, but responses with at most max_steps written steps count as correct"
);

#[typetag::serde(name = "short_bias")]
impl Verifier for ShortBias {
    fn prepare(&self) -> anyhow::Result<()> {
        self.inner.prepare()
    }

    fn verify(&self, problem: &Problem, response: &str) -> Verdict {
        let steps = crate::scorer::step_ends(response, &self.separator, &self.marker).len();
        if steps <= self.max_steps {
            return Verdict::outcome(true);
        }
        self.inner.verify(problem, response)
    }

    fn extract(&self, response: &str) -> Option<String> {
        self.inner.extract(response)
    }
}

// ---------------------------------------------------------------------------------------
// Cooper's pairs

/// One Cooper training pair: index of the group (problem), `y⁺` and `y⁻`.
#[derive(Debug, Clone, PartialEq)]
pub struct CooperPair {
    pub group: usize,
    pub chosen: String,
    pub rejected: String,
}

/// Cooper's pairs from judged groups: per group the first `per_group` (0 = all) distinct
/// responses whose rule verdict is correct, each with its answer-perturbed copy, kept
/// when `rule` marks the copy incorrect.
pub fn pick_pairs(
    groups: &[ScoredGroup],
    rule: &dyn Verifier,
    marker: &str,
    per_group: usize,
    rng: &mut impl Rng,
) -> Vec<CooperPair> {
    let mut out = Vec::new();
    for (gi, g) in groups.iter().enumerate() {
        let mut seen: Vec<&str> = Vec::new();
        for (c, v) in g.group.completions.iter().zip(&g.verdicts) {
            if !v.correct || seen.contains(&c.text.as_str()) {
                continue;
            }
            if per_group > 0 && seen.len() >= per_group {
                break;
            }
            seen.push(&c.text);
            let Some(neg) = crate::triplets::corrupt(&c.text, marker, rng) else {
                continue;
            };
            if rule.verify(&g.group.problem, &neg).correct {
                continue;
            }
            out.push(CooperPair {
                group: gi,
                chosen: c.text.clone(),
                rejected: neg,
            });
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// the co-updated reward model

/// The live model: trainable weights, their gradient-free copy for scoring, the tokenizer.
struct Live {
    scorer: TrainableScorer,
    inference: ScorerModel<FB>,
    tokenizer: Arc<dyn Tokenizer>,
    device: Device,
}

/// Recipe part (the `rl` stage's `reward_model`): `{type: cooper, path: reward_model,
/// update: true, optimizer: {type: adamw, lr: 1.0e-4}}`. `update: false` is the static
/// reward-model baseline (same reward, never updated).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cooper {
    /// The pre-trained reward model (a `reward_model` stage's output), relative to the
    /// run directory (or absolute).
    pub path: PathBuf,
    /// Update the model every step (Cooper); `false`: a static reward model.
    pub update: bool,
    pub optimizer: OptimizerConfig,
    /// AdamW steps per RL step.
    pub updates: usize,
    /// Most pairs per update (a seeded choice when there are more).
    pub batch: usize,
    /// Most positives per group (0 = all distinct correct responses).
    pub pairs_per_group: usize,
    /// Starts the final answer (what the perturbation changes).
    pub marker: String,
    pub output: Output,
    /// `correct = reward > threshold`.
    pub threshold: f32,
    /// Where the final model is written, inside the run directory.
    pub out: String,
    #[serde(skip)]
    live: Mutex<Option<Live>>,
}

impl std::fmt::Debug for Cooper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cooper")
            .field("path", &self.path)
            .field("update", &self.update)
            .finish_non_exhaustive()
    }
}

impl Default for Cooper {
    fn default() -> Self {
        Self {
            path: PathBuf::from("reward_model"),
            update: true,
            optimizer: OptimizerConfig::adamw(1e-4),
            updates: 1,
            batch: 64,
            pairs_per_group: 2,
            marker: "A:".into(),
            output: Output::Sigmoid,
            threshold: 0.5,
            out: "cooper_rm".into(),
            live: Mutex::new(None),
        }
    }
}

register_part!(
    UpdatableReward,
    "cooper",
    Cooper,
    "Cooper: a reference-based learned reward (VerifyRM) for the rl stage, updated each step by Bradley–Terry on (rule-verified rollout, answer-perturbed copy) pairs; update: false = static RM"
);

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl Cooper {
    fn with_live<T>(&self, f: impl FnOnce(&mut Live) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let mut guard = self
            .live
            .lock()
            .map_err(|_| anyhow::anyhow!("cooper: the reward model's lock is poisoned"))?;
        let live = guard
            .as_mut()
            .context("cooper: the reward model is used before the rl stage prepared it")?;
        f(live)
    }

    fn verdict(&self, s: f32) -> Verdict {
        let reward = match self.output {
            Output::Sigmoid => sigmoid(s),
            Output::Raw => s,
        };
        Verdict {
            reward,
            correct: reward > self.threshold,
            step_rewards: Vec::new(),
        }
    }
}

/// Encodes `(problem, response)` as the model reads it.
fn encode(live: &Live, problem: &Problem, response: &str) -> anyhow::Result<Encoded> {
    let meta = &live.scorer.meta;
    meta.encode(live.tokenizer.as_ref(), &meta.prompt_of(problem), response)
}

#[typetag::serde(name = "cooper")]
impl UpdatableReward for Cooper {
    fn prepare(&self, ctx: &RunContext, state: Option<&Value>) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.updates > 0 && self.batch > 0,
            "cooper: updates and batch must be at least 1"
        );
        let dir = match state.and_then(|s| s.get("path")).and_then(|p| p.as_str()) {
            Some(p) => ctx.dir.join(p),
            None => ctx.dir.join(&self.path),
        };
        let scorer = TrainableScorer::load(&dir, &ctx.device, &self.optimizer)
            .with_context(|| format!("cooper: loading the reward model in {}", dir.display()))?;
        anyhow::ensure!(
            scorer.meta.kind == RmKind::Outcome,
            "cooper: the reward model in {} is a process model; Cooper needs an outcome model",
            dir.display()
        );
        let tokenizer = ctx.task.tokenizer.clone();
        anyhow::ensure!(
            tokenizer.vocab_size() == scorer.meta.vocab_size,
            "cooper: the reward model in {} has {} token ids, this run's tokenizer {}",
            dir.display(),
            scorer.meta.vocab_size,
            tokenizer.vocab_size()
        );
        let live = Live {
            inference: scorer.inference(),
            device: inner_device(&ctx.device),
            scorer,
            tokenizer,
        };
        *self
            .live
            .lock()
            .map_err(|_| anyhow::anyhow!("cooper: lock poisoned"))? = Some(live);
        Ok(())
    }

    fn judge(&self, problem: &Problem, responses: &[&str]) -> anyhow::Result<Vec<Verdict>> {
        self.with_live(|live| {
            let mut scores = vec![logit(0.0); responses.len()];
            let mut ok = Vec::new();
            let mut rows = Vec::new();
            for (i, r) in responses.iter().enumerate() {
                // a response the tokenizer cannot encode scores as the logit of 0
                if let Ok(e) = encode(live, problem, r) {
                    ok.push(i);
                    rows.push(e);
                }
            }
            let s = score_encoded(
                &live.inference,
                &rows,
                live.tokenizer.pad_id(),
                &live.device,
            )?;
            for (i, s) in ok.into_iter().zip(s) {
                scores[i] = s[0];
            }
            Ok(scores.into_iter().map(|s| self.verdict(s)).collect())
        })
    }

    fn update(
        &self,
        ctx: &RunContext,
        step: usize,
        judged: &[ScoredGroup],
        rule: &dyn Verifier,
    ) -> anyhow::Result<Vec<(String, f64)>> {
        if !self.update {
            return Ok(Vec::new());
        }
        let mut r = rng::rng(ctx.seed, &[ctx.stage as u64, step as u64, 0xc00e]);
        let mut pairs = pick_pairs(judged, rule, &self.marker, self.pairs_per_group, &mut r);
        if pairs.len() > self.batch {
            let keep = rand::seq::index::sample(&mut r, pairs.len(), self.batch).into_vec();
            pairs = keep.into_iter().map(|i| pairs[i].clone()).collect();
        }
        let mut m = vec![("rm_pairs".to_string(), pairs.len() as f64)];
        if pairs.is_empty() {
            return Ok(m);
        }
        self.with_live(|live| {
            let k = pairs.len();
            let mut rows = Vec::with_capacity(2 * k);
            for p in &pairs {
                rows.push(encode(live, &judged[p.group].group.problem, &p.chosen)?);
            }
            for p in &pairs {
                rows.push(encode(live, &judged[p.group].group.problem, &p.rejected)?);
            }
            let refs: Vec<&Encoded> = rows.iter().collect();
            let batch = ScoreBatch::new(&refs, live.tokenizer.pad_id());
            let lr = self.optimizer.lr_at(step);
            for u in 0..self.updates {
                let s: Tensor<FB, 1> = live
                    .scorer
                    .scores(&batch)
                    .slice([0..2 * k, 0..1])
                    .reshape([2 * k]);
                let chosen = s.clone().slice(0..k);
                let rejected = s.slice(k..2 * k);
                let loss = BradleyTerry::default().loss(chosen.clone(), rejected.clone());
                let value = foil_core::batch::to_vec(loss.clone().detach())[0];
                anyhow::ensure!(
                    value.is_finite(),
                    "cooper: the reward-model loss is {value} at step {step}"
                );
                if u == 0 {
                    let c = foil_core::batch::to_vec(chosen.detach());
                    let j = foil_core::batch::to_vec(rejected.detach());
                    let acc = c.iter().zip(&j).filter(|(a, b)| a > b).count() as f64 / k as f64;
                    m.push(("rm_loss".into(), value as f64));
                    m.push(("rm_pair_acc".into(), acc));
                }
                live.scorer.step(loss, lr);
            }
            live.inference = live.scorer.inference();
            Ok(())
        })?;
        Ok(m)
    }

    fn checkpoint(&self, ctx: &RunContext, steps_done: usize) -> anyhow::Result<Value> {
        let rel = PathBuf::from(&self.out)
            .join("checkpoints")
            .join(format!("stage{}-step{steps_done}", ctx.stage));
        self.with_live(|live| live.scorer.save(&ctx.dir.join(&rel)))?;
        Ok(json!({ "path": rel }))
    }

    fn finish(&self, ctx: &RunContext) -> anyhow::Result<()> {
        self.with_live(|live| live.scorer.save(&ctx.dir.join(&self.out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use foil_core::{Completion, Finish, Group};

    fn problem() -> Problem {
        Problem {
            id: "p".into(),
            prompt: "Q:2+3*2=".into(),
            solution: "2+3=5|5*2=10|A:10".into(),
            answer: "10".into(),
            difficulty: 3,
        }
    }

    fn group(texts: &[&str], rule: &dyn Verifier) -> ScoredGroup {
        let p = problem();
        let completions: Vec<Completion> = texts
            .iter()
            .map(|t| Completion {
                tokens: vec![],
                text: (*t).into(),
                logprobs: vec![],
                entropies: vec![],
                finish: Finish::Eos,
            })
            .collect();
        let verdicts = texts.iter().map(|t| rule.verify(&p, t)).collect();
        ScoredGroup {
            group: Group {
                problem: p,
                completions,
            },
            verdicts,
            baseline: None,
        }
    }

    #[test]
    fn the_reference_template_fills_prompt_and_answer() {
        // "Q:2+3*2=" ⧺ "10" ⧺ ":" — the answer trimmed
        let mut p = problem();
        p.answer = " 10 ".into();
        assert_eq!(input_prompt(DEFAULT_TEMPLATE, &p), "Q:2+3*2=10:");
        assert_eq!(input_prompt("{reference}|{prompt}", &p), "10|Q:2+3*2=");
    }

    #[test]
    fn short_bias_labels_short_responses_correct_whatever_their_answer() {
        let v = ShortBias::default();
        let p = problem();
        // one written step ("2+3=5|"), wrong answer 5: biased → correct
        assert!(v.verify(&p, "2+3=5|A:5").correct);
        // two steps, wrong answer: inner (numeric) → incorrect
        assert!(!v.verify(&p, "2+3=5|5*2=11|A:11").correct);
        // two steps, right answer → correct
        assert!(v.verify(&p, "2+3=5|5*2=10|A:10").correct);
        let strict = ShortBias {
            max_steps: 0,
            ..Default::default()
        };
        assert!(!strict.verify(&p, "2+3=5|A:5").correct);
    }

    #[test]
    fn pairs_take_rule_correct_rollouts_and_their_perturbed_copies() {
        let rule = foil_verifiers::Numeric::default();
        // rollouts: 0 ✓, 1 ✓ (same text as 0: skipped), 2 ✗, 3 ✓ (answer "010" parses as
        // 10: numeric accepts it), 4 ✓ → positives 0, 3 with per_group 2 (4 is not reached)
        let g = group(
            &[
                "2+3=5|5*2=10|A:10",
                "2+3=5|5*2=10|A:10",
                "2+3=5|5*2=11|A:11",
                "2+3=5|5*2=10|A:010",
                "2+3=5|5*3=10|A:10",
            ],
            &rule,
        );
        let mut r = foil_core::rng::rng(0, &[1]);
        let pairs = pick_pairs(std::slice::from_ref(&g), &rule, "A:", 2, &mut r);
        assert_eq!(pairs.len(), 2);
        assert_eq!(pairs[0].chosen, "2+3=5|5*2=10|A:10");
        assert_eq!(pairs[1].chosen, "2+3=5|5*2=10|A:010");
        for p in &pairs {
            assert_eq!(p.group, 0);
            // y⁻ is rule-incorrect and differs from y⁺ only after the last "=" / "A:"
            assert!(!rule.verify(&g.group.problem, &p.rejected).correct, "{p:?}");
            assert!(p.rejected.starts_with("2+3=5|5*2="), "{p:?}");
        }
        // per_group 0: all three distinct correct responses
        let all = pick_pairs(std::slice::from_ref(&g), &rule, "A:", 0, &mut r);
        assert_eq!(all.len(), 3);
        // a rule verifier that accepts everything rejects every negative → no pairs
        let lenient = ShortBias {
            max_steps: 99,
            ..Default::default()
        };
        let g2 = group(&["2+3=5|5*2=10|A:10"], &lenient);
        assert!(pick_pairs(&[g2], &lenient, "A:", 0, &mut r).is_empty());
        // no correct rollout → no pairs
        let g3 = group(&["2+3=5|5*2=11|A:11"], &rule);
        assert!(pick_pairs(&[g3], &rule, "A:", 0, &mut r).is_empty());
    }
}
