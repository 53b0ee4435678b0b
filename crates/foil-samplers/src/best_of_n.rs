//! `best_of_n`: planning at inference with a scorer (ARMAP's Best-of-N, Chen et al. 2025,
//! arXiv 2502.12130, methods.md §18).
//!
//! ```text
//! for each prompt x:  y_1 … y_N ~ inner sampler (N = inner.n)
//!                     s_i = r(x, y_i)            reward_model: the learned RM's score (a logit)
//!                                                verifier:     the verdict's reward
//!                     keep the k candidates with the largest s_i, best first
//!                     (k = this sampler's n; ties keep the earlier candidate)
//! ```
//!
//! ARMAP picks `argmax_n r(intent, τ_n)` [code, `Eval/game24/scripts/ARMAP-B`]; with `k = 1`
//! this is that rule, so an `eval` stage with `k: [1]` measures best-of-N accuracy. With a
//! rule verifier as the scorer it is the oracle best-of-N (the ceiling: pass@N of the
//! inner sampler). Exactly one of `reward_model` / `verifier` must be set. The scorer is
//! prepared (loaded) on the first call, so a bad path is an error naming it.
//!
//! ARMAP's Reflexion-style retries are the `reflexion` sampler (`reflexion.rs`); MCTS is
//! not implemented.

use foil_core::policy::InferenceModel;
use foil_core::{Group, Problem, RewardModel, Sampler, Tokenizer, Verifier, register_part};
use serde::{Deserialize, Serialize};

use crate::local::Local;
use crate::scoring;

/// Recipe part: `sampler: {type: best_of_n, n: 1, inner: {type: local, n: 8},
/// reward_model: {type: learned, path: runs/x/reward_model}}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BestOfN {
    /// Completions returned per prompt (the k best-scored).
    pub n: usize,
    /// Draws the N candidates per prompt.
    pub inner: Box<dyn Sampler>,
    /// Scores candidates with a learned reward model (its raw score).
    pub reward_model: Option<Box<dyn RewardModel>>,
    /// Or with a verifier (its reward): the oracle best-of-N with a rule verifier.
    pub verifier: Option<Box<dyn Verifier>>,
}

impl Default for BestOfN {
    fn default() -> Self {
        Self {
            n: 1,
            inner: Box::new(Local::default()),
            reward_model: None,
            verifier: None,
        }
    }
}

register_part!(
    Sampler,
    "best_of_n",
    BestOfN,
    "best-of-N planning (ARMAP, arXiv 2502.12130): an inner sampler's N candidates per prompt, the n best by a reward model (or verifier) score"
);

/// Indices of the `k` largest scores, best first; ties keep the earlier index; NaN ranks
/// last.
pub fn top_k(scores: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    let key = |i: usize| {
        if scores[i].is_nan() {
            f32::NEG_INFINITY
        } else {
            scores[i]
        }
    };
    // stable sort: equal scores keep their order
    idx.sort_by(|&a, &b| key(b).total_cmp(&key(a)));
    idx.truncate(k);
    idx
}

#[typetag::serde(name = "best_of_n")]
impl Sampler for BestOfN {
    fn sample(
        &self,
        model: &dyn InferenceModel,
        tokenizer: &dyn Tokenizer,
        problems: &[Problem],
        seed: u64,
    ) -> anyhow::Result<Vec<Group>> {
        anyhow::ensure!(self.n > 0, "best_of_n: n must be at least 1");
        let big_n = self.inner.n();
        anyhow::ensure!(
            self.n <= big_n,
            "best_of_n: n = {} needs at least as many candidates, but the inner sampler draws {big_n}",
            self.n
        );
        scoring::prepare("best_of_n", &self.reward_model, &self.verifier)?;
        let groups = self.inner.sample(model, tokenizer, problems, seed)?;
        groups
            .into_iter()
            .map(|g| {
                let texts: Vec<&str> = g.completions.iter().map(|c| c.text.as_str()).collect();
                let scores = scoring::scores(
                    "best_of_n",
                    &self.reward_model,
                    &self.verifier,
                    &g.problem,
                    &texts,
                )?;
                let keep = top_k(&scores, self.n);
                let mut slots: Vec<Option<foil_core::Completion>> =
                    g.completions.into_iter().map(Some).collect();
                let completions = keep.iter().filter_map(|&i| slots[i].take()).collect();
                Ok(Group {
                    problem: g.problem,
                    completions,
                })
            })
            .collect()
    }

    fn n(&self) -> usize {
        self.n
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

    use foil_core::{RewardScore, Verdict};

    #[test]
    fn top_k_orders_by_score_and_keeps_ties_in_order() {
        // scores 0.5, 2.0, -1.0, 2.0, NaN: the largest is 2.0 at indices 1 and 3 (1 first,
        // stable), then 0.5 (index 0), then -1.0 (2), NaN last (4)
        let s = [0.5, 2.0, -1.0, 2.0, f32::NAN];
        assert_eq!(top_k(&s, 1), vec![1]);
        assert_eq!(top_k(&s, 3), vec![1, 3, 0]);
        assert_eq!(top_k(&s, 9), vec![1, 3, 0, 2, 4]);
    }

    /// A reward model that scores a response by its length (longer = better).
    #[derive(Debug, Serialize, Deserialize, Default)]
    struct ByLength;
    #[typetag::serde(name = "test_by_length")]
    impl RewardModel for ByLength {
        fn score(&self, _: &Problem, responses: &[&str]) -> anyhow::Result<Vec<RewardScore>> {
            Ok(responses
                .iter()
                .map(|r| RewardScore {
                    score: r.chars().count() as f32,
                    steps: vec![],
                })
                .collect())
        }
    }

    /// A verifier whose reward is the number of `1`s in the response.
    #[derive(Debug, Serialize, Deserialize, Default)]
    struct CountOnes;
    #[typetag::serde(name = "test_count_ones")]
    impl Verifier for CountOnes {
        fn verify(&self, _: &Problem, response: &str) -> Verdict {
            let k = response.matches('1').count() as f32;
            Verdict {
                reward: k,
                correct: k > 0.0,
                step_rewards: vec![],
            }
        }
    }

    fn setup() -> (Box<dyn InferenceModel>, foil_core::TaskData) {
        crate::testutil::arithmetic_setup()
    }

    fn inner() -> Local {
        Local {
            n: 6,
            max_tokens: 12,
            ..Default::default()
        }
    }

    #[test]
    fn returns_the_argmax_of_the_reward_model_among_the_inner_candidates() {
        let (model, task) = setup();
        let tok = task.tokenizer.as_ref();
        // the same seed gives the inner sampler's same 6 candidates
        let all = inner().sample(model.as_ref(), tok, &task.train, 3).unwrap();
        let bon = BestOfN {
            n: 2,
            inner: Box::new(inner()),
            reward_model: Some(Box::new(ByLength)),
            verifier: None,
        };
        let best = bon.sample(model.as_ref(), tok, &task.train, 3).unwrap();
        assert_eq!(best.len(), all.len());
        for (b, a) in best.iter().zip(&all) {
            assert_eq!(b.completions.len(), 2);
            let lens: Vec<usize> = a
                .completions
                .iter()
                .map(|c| c.text.chars().count())
                .collect();
            let max = *lens.iter().max().unwrap();
            // the first kept is the first candidate of maximal length
            let first = lens.iter().position(|&l| l == max).unwrap();
            assert_eq!(b.completions[0], a.completions[first]);
            // the second is no longer than the first, and every other candidate is no
            // longer than the second
            let second = b.completions[1].text.chars().count();
            assert!(second <= max);
            assert!(lens.iter().filter(|&&l| l > second).count() <= 1);
        }
    }

    #[test]
    fn a_verifier_scores_too_and_bad_settings_are_errors() {
        let (model, task) = setup();
        let tok = task.tokenizer.as_ref();
        let all = inner().sample(model.as_ref(), tok, &task.train, 4).unwrap();
        let bon = BestOfN {
            n: 1,
            inner: Box::new(inner()),
            reward_model: None,
            verifier: Some(Box::new(CountOnes)),
        };
        let best = bon.sample(model.as_ref(), tok, &task.train, 4).unwrap();
        for (b, a) in best.iter().zip(&all) {
            let most = a
                .completions
                .iter()
                .map(|c| c.text.matches('1').count())
                .max()
                .unwrap();
            assert_eq!(b.completions[0].text.matches('1').count(), most);
        }
        let none = BestOfN {
            inner: Box::new(inner()),
            ..Default::default()
        };
        let e = format!(
            "{:#}",
            none.sample(model.as_ref(), tok, &task.train, 0)
                .unwrap_err()
        );
        assert!(e.contains("exactly one scorer"), "{e}");
        let too_many = BestOfN {
            n: 7,
            inner: Box::new(inner()),
            reward_model: Some(Box::new(ByLength)),
            verifier: None,
        };
        let e = format!(
            "{:#}",
            too_many
                .sample(model.as_ref(), tok, &task.train, 0)
                .unwrap_err()
        );
        assert!(e.contains("n = 7"), "{e}");
    }
}
