//! `reflexion`: Reflexion-style retries guided by a scorer (ARMAP's planning with a
//! reward model, Chen et al. 2025, arXiv 2502.12130, methods.md §18; Reflexion: Shinn et
//! al. 2023, arXiv 2303.11366).
//!
//! ```text
//! for each prompt x:  memory ← []
//!   for attempt a = 1 … max_attempts:
//!       x_a = x ⧺ render(feedback, m) for the last `memory` failed attempts m
//!       y_a ~ inner(x_a)                     (one draw, seed derived from the round)
//!       s_a = r(x, y_a)                      reward model score or verifier reward
//!       if s_a ≥ accept: return y_a
//!       memory.push((y_a, s_a))
//!   return y_{argmax_a s_a}                  (ties: the earliest attempt)
//! ```
//!
//! `render` replaces `{response}` and `{score}` (two decimals) in the `feedback` template.
//! ARMAP-R runs up to 10 retries with the reward model's feedback [code,
//! `Eval/game24/scripts/ARMAP-R`]; its exact feedback prompt is written for an
//! instruction-following LLM and is not reproduced: write one that suits the policy (a chat
//! model reads a sentence such as `Previous answer: {response} (score {score}). Try
//! again.`). With `feedback: ""` the retries re-sample the bare prompt with a fresh seed:
//! rejection sampling against the scorer with early stopping, which is what a tiny policy
//! trained on bare prompts can use.
//!
//! All prompts still unresolved in a round are sampled together (one batched call of the
//! inner sampler). With feedback, a returned attempt's `logprobs` are conditional on the
//! feedback-extended prompt, not on `x`: use this sampler to plan or evaluate, not as the
//! behaviour policy of an RL stage. It returns one completion per prompt (`n` = 1).

use foil_core::policy::InferenceModel;
use foil_core::{
    Completion, Group, Problem, RewardModel, Sampler, Tokenizer, Verifier, register_part,
};
use serde::{Deserialize, Serialize};

use crate::local::Local;
use crate::scoring;

/// Recipe part: `sampler: {type: reflexion, max_attempts: 10, accept: 0.0,
/// inner: {type: local, n: 1}, reward_model: {type: learned, path: …}}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Reflexion {
    /// Draws each attempt; its `n` must be 1.
    pub inner: Box<dyn Sampler>,
    /// Scores attempts with a learned reward model (its raw score, a logit for the
    /// Bradley–Terry and pointwise models).
    pub reward_model: Option<Box<dyn RewardModel>>,
    /// Or with a verifier (its reward).
    pub verifier: Option<Box<dyn Verifier>>,
    /// Most attempts per prompt, the first included (ARMAP: 10).
    pub max_attempts: usize,
    /// An attempt scoring at least this ends the retries for its prompt.
    pub accept: f32,
    /// Appended to the prompt for each remembered failed attempt; `{response}` and
    /// `{score}` are filled in. Empty: retry the bare prompt.
    pub feedback: String,
    /// How many of the latest failed attempts the prompt carries.
    pub memory: usize,
}

impl Default for Reflexion {
    fn default() -> Self {
        Self {
            inner: Box::new(Local {
                n: 1,
                ..Default::default()
            }),
            reward_model: None,
            verifier: None,
            max_attempts: 10,
            accept: 0.0,
            feedback: String::new(),
            memory: 1,
        }
    }
}

register_part!(
    Sampler,
    "reflexion",
    Reflexion,
    "Reflexion-style retries (ARMAP, arXiv 2502.12130): re-sample a prompt, with the scorer's feedback appended, until an attempt scores at least `accept` or `max_attempts` are spent"
);

/// `template` with `{response}` and `{score}` filled in.
pub fn render_feedback(template: &str, response: &str, score: f32) -> String {
    template
        .replace("{score}", &format!("{score:.2}"))
        .replace("{response}", response)
}

/// The seed of retry round `round` (round 0 uses `seed` itself, so the first attempt is
/// exactly the inner sampler's draw).
fn round_seed(seed: u64, round: usize) -> u64 {
    seed.wrapping_add((round as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// One prompt's retries so far.
struct Chain {
    attempts: Vec<(Completion, f32)>,
    done: bool,
}

impl Reflexion {
    fn prompt(&self, problem: &Problem, chain: &Chain) -> Problem {
        let mut p = problem.clone();
        if !self.feedback.is_empty() {
            let from = chain.attempts.len().saturating_sub(self.memory);
            for (c, s) in &chain.attempts[from..] {
                p.prompt
                    .push_str(&render_feedback(&self.feedback, &c.text, *s));
            }
        }
        p
    }
}

#[typetag::serde(name = "reflexion")]
impl Sampler for Reflexion {
    fn sample(
        &self,
        model: &dyn InferenceModel,
        tokenizer: &dyn Tokenizer,
        problems: &[Problem],
        seed: u64,
    ) -> anyhow::Result<Vec<Group>> {
        anyhow::ensure!(
            self.max_attempts > 0,
            "reflexion: max_attempts must be at least 1"
        );
        anyhow::ensure!(
            self.inner.n() == 1,
            "reflexion: the inner sampler must draw one completion per prompt (n: 1), not {}",
            self.inner.n()
        );
        scoring::prepare("reflexion", &self.reward_model, &self.verifier)?;
        let mut chains: Vec<Chain> = problems
            .iter()
            .map(|_| Chain {
                attempts: Vec::new(),
                done: false,
            })
            .collect();
        for round in 0..self.max_attempts {
            let open: Vec<usize> = (0..problems.len()).filter(|&i| !chains[i].done).collect();
            if open.is_empty() {
                break;
            }
            let prompts: Vec<Problem> = open
                .iter()
                .map(|&i| self.prompt(&problems[i], &chains[i]))
                .collect();
            let groups = self
                .inner
                .sample(model, tokenizer, &prompts, round_seed(seed, round))?;
            anyhow::ensure!(
                groups.len() == open.len(),
                "reflexion: the inner sampler returned {} groups for {} prompts",
                groups.len(),
                open.len()
            );
            for (&i, g) in open.iter().zip(groups) {
                let c = g.completions.into_iter().next().ok_or_else(|| {
                    anyhow::anyhow!("reflexion: the inner sampler returned an empty group")
                })?;
                // scored against the original problem: the feedback is context, not task
                let s = scoring::scores(
                    "reflexion",
                    &self.reward_model,
                    &self.verifier,
                    &problems[i],
                    &[c.text.as_str()],
                )?[0];
                let chain = &mut chains[i];
                chain.done = s >= self.accept;
                chain.attempts.push((c, s));
            }
        }
        problems
            .iter()
            .zip(chains)
            .map(|(p, chain)| {
                let scores: Vec<f32> = chain.attempts.iter().map(|(_, s)| *s).collect();
                let pick = if chain.done {
                    scores.len() - 1
                } else {
                    crate::best_of_n::top_k(&scores, 1)[0]
                };
                let completion = chain.attempts.into_iter().nth(pick).map(|(c, _)| c);
                Ok(Group {
                    problem: p.clone(),
                    completions: completion.into_iter().collect(),
                })
            })
            .collect()
    }

    fn n(&self) -> usize {
        1
    }

    fn max_tokens(&self) -> usize {
        self.inner.max_tokens()
    }

    fn sync_weights(
        &self,
        policy: &dyn foil_core::policy::Policy,
        step: usize,
    ) -> anyhow::Result<Vec<(String, f64)>> {
        self.inner.sync_weights(policy, step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use foil_core::{Finish, Verdict};

    use std::sync::{Arc, Mutex};

    /// (problem id, prompt, seed) of every draw.
    type Record = Arc<Mutex<Vec<(String, String, u64)>>>;

    /// Answers `<id>:<k>` on its k-th call for a problem (k from 0) and records every
    /// prompt and seed it was given.
    #[derive(Debug, Serialize, Deserialize, Default)]
    struct Scripted {
        #[serde(skip)]
        seen: Record,
    }
    #[typetag::serde(name = "test_scripted")]
    impl Sampler for Scripted {
        fn sample(
            &self,
            _: &dyn InferenceModel,
            _: &dyn Tokenizer,
            problems: &[Problem],
            seed: u64,
        ) -> anyhow::Result<Vec<Group>> {
            let mut seen = self.seen.lock().unwrap();
            Ok(problems
                .iter()
                .map(|p| {
                    let k = seen.iter().filter(|(id, _, _)| *id == p.id).count();
                    seen.push((p.id.clone(), p.prompt.clone(), seed));
                    Group {
                        problem: p.clone(),
                        completions: vec![Completion {
                            tokens: vec![],
                            text: format!("{}:{k}", p.id),
                            logprobs: vec![],
                            entropies: vec![],
                            finish: Finish::Eos,
                        }],
                    }
                })
                .collect())
        }
        fn n(&self) -> usize {
            1
        }
        fn max_tokens(&self) -> usize {
            4
        }
    }

    /// Reward of `<id>:<k>`: problem `a` scores k; problem `b` scores 5 − (k − 1)², i.e.
    /// 4, 5, 4, 1 for k = 0…3.
    #[derive(Debug, Serialize, Deserialize, Default)]
    struct ByAttempt;
    #[typetag::serde(name = "test_by_attempt")]
    impl Verifier for ByAttempt {
        fn verify(&self, p: &Problem, response: &str) -> Verdict {
            let k: f32 = response.rsplit(':').next().unwrap().parse().unwrap();
            let reward = if p.id == "a" {
                k
            } else {
                5.0 - (k - 1.0).powi(2)
            };
            Verdict {
                reward,
                correct: false,
                step_rewards: vec![],
            }
        }
    }

    fn problem(id: &str) -> Problem {
        Problem {
            id: id.into(),
            prompt: format!("Q{id}="),
            solution: String::new(),
            answer: String::new(),
            difficulty: 0,
        }
    }

    fn setup() -> (Box<dyn InferenceModel>, foil_core::TaskData) {
        crate::testutil::arithmetic_setup()
    }

    fn scripted(accept: f32, seen: &Record) -> Reflexion {
        Reflexion {
            inner: Box::new(Scripted { seen: seen.clone() }),
            verifier: Some(Box::new(ByAttempt)),
            reward_model: None,
            max_attempts: 4,
            accept,
            feedback: "|{response}={score}".into(),
            memory: 2,
        }
    }

    #[test]
    fn stops_at_the_first_accepted_attempt() {
        let (model, task) = setup();
        let seen = Record::default();
        let out = scripted(2.0, &seen)
            .sample(
                model.as_ref(),
                task.tokenizer.as_ref(),
                &[problem("a"), problem("b")],
                7,
            )
            .unwrap();
        // a scores 0, 1, 2: accepted at its third attempt; b scores 4 ≥ 2 at once
        assert_eq!(out[0].completions[0].text, "a:2");
        assert_eq!(out[1].completions[0].text, "b:0");
        let seen = seen.lock().unwrap();
        // round 0 draws a and b together, rounds 1 and 2 only a; no fourth round
        let ids: Vec<&str> = seen.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(ids, vec!["a", "b", "a", "a"]);
        let prompts: Vec<&str> = seen.iter().map(|r| r.1.as_str()).collect();
        assert_eq!(
            prompts,
            vec![
                "Qa=",
                "Qb=",
                "Qa=|a:0=0.00",
                // memory 2: both failed attempts, oldest first
                "Qa=|a:0=0.00|a:1=1.00",
            ]
        );
        // round 0 uses the seed itself, later rounds fresh ones
        let seeds: Vec<u64> = seen.iter().map(|r| r.2).collect();
        assert_eq!(seeds[0], 7);
        assert_eq!(seeds[1], 7);
        assert_eq!(seeds[2], 7u64.wrapping_add(0x9E37_79B9_7F4A_7C15));
        assert_ne!(seeds[3], seeds[2]);
    }

    #[test]
    fn falls_back_to_the_best_attempt_and_keeps_only_the_remembered_feedback() {
        let (model, task) = setup();
        let seen = Record::default();
        let r = Reflexion {
            memory: 1,
            ..scripted(9.0, &seen)
        };
        let out = r
            .sample(
                model.as_ref(),
                task.tokenizer.as_ref(),
                &[problem("a"), problem("b")],
                7,
            )
            .unwrap();
        // nothing reaches 9: a's best of 0, 1, 2, 3 is a:3; b's best of 4, 5, 4, 1 is b:1
        assert_eq!(out[0].completions[0].text, "a:3");
        assert_eq!(out[1].completions[0].text, "b:1");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 8, "4 attempts each");
        // memory 1: b's fourth prompt carries only its third attempt (score 4)
        assert_eq!(seen[7].1, "Qb=|b:2=4.00");
    }

    #[test]
    fn without_feedback_or_retries_it_is_the_inner_samplers_draw() {
        let (model, task) = setup();
        let tok = task.tokenizer.as_ref();
        let inner = || Local {
            n: 1,
            max_tokens: 12,
            ..Default::default()
        };
        let once = inner().sample(model.as_ref(), tok, &task.train, 3).unwrap();
        // accept −∞: every first attempt is accepted
        let r = Reflexion {
            inner: Box::new(inner()),
            verifier: Some(Box::new(Len)),
            accept: f32::NEG_INFINITY,
            ..Default::default()
        };
        let out = r.sample(model.as_ref(), tok, &task.train, 3).unwrap();
        for (o, a) in out.iter().zip(&once) {
            assert_eq!(o.completions, a.completions);
        }
        let bad = Reflexion {
            inner: Box::new(Local {
                n: 2,
                ..Default::default()
            }),
            verifier: Some(Box::new(ByAttempt)),
            ..Default::default()
        };
        let e = format!(
            "{:#}",
            bad.sample(model.as_ref(), tok, &task.train, 0).unwrap_err()
        );
        assert!(e.contains("n: 1"), "{e}");
        let none = Reflexion::default();
        let e = format!(
            "{:#}",
            none.sample(model.as_ref(), tok, &task.train, 0)
                .unwrap_err()
        );
        assert!(e.contains("exactly one scorer"), "{e}");
    }

    /// Reward = response length.
    #[derive(Debug, Serialize, Deserialize, Default)]
    struct Len;
    #[typetag::serde(name = "test_len")]
    impl Verifier for Len {
        fn verify(&self, _: &Problem, response: &str) -> Verdict {
            Verdict {
                reward: response.len() as f32,
                correct: false,
                step_rewards: vec![],
            }
        }
    }
}
