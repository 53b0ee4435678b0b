//! Step values and step advantages from Monte Carlo rollouts (Setlur et al. 2024, "RL on
//! Incorrect Synthetic Data Scales the Efficiency of LLM Math Reasoning by Eight-Fold",
//! arXiv 2406.14532, §4 and §6; `methods.md` §1).
//!
//! A response `ŷ` is split into steps `ŷ_1 … ŷ_L` at a separator (`|` in the arithmetic
//! task; each step keeps its trailing separator, so the steps concatenate back to the
//! response). For every step prefix `ŷ_{1:i}`, `i = 0 … L − 1`, `M` continuations
//! `z_1 … z_M` are sampled with the current policy from `prompt + ŷ_{1:i}` (one batched
//! call of the recipe's rollout sampler, `M` = its `n`), and each `ŷ_{1:i} ∘ z_m` is
//! verified:
//!
//! ```text
//! q_i        = (1/M) Σ_m 1[verifier(x, ŷ_{1:i} ∘ z_m) correct]          plain MC success rate
//! Q(ŷ_{1:i}) = 1 − (1 − q_i)^K                                          Best-of-K value (K = 1: q_i)
//! Q(ŷ_{1:L}) = 1[ŷ correct]                                              the finished response
//! A_i        = Q(ŷ_{1:i}) − Q(ŷ_{1:i−1}),   i = 1 … L                    step advantage (Eq. 3)
//! first pit  c = min { i ≥ 1 : Q(ŷ_{1:i}) = min_{j ≥ 1} Q(ŷ_{1:j}) }
//! ```
//!
//! Provenance: `Q` under `π̃ = BoK(π_sft)` with `K = 5`, the advantage and the first pit are
//! [secondary] (course notes citing §4/§6.1); `Q_BoK = 1 − (1 − q)^K` with the plug-in
//! `q̂` (biased for `K > 1`; the unbiased pass@K estimator would need `M ≥ K`) and the
//! rollouts of the finished response replaced by its verdict are [recon]. Prefixes shared by
//! several responses of one problem (always `i = 0`, the bare prompt) are rolled out once
//! and their value shared, so equal prefixes get equal `Q`.
//!
//! The prefix is re-encoded through the tokenizer; it must encode as the prompt followed by
//! the prefix (`encode_prompt(x + ŷ_{1:i}) = encode_prompt(x) ++ encode(ŷ_{1:i})`), which
//! holds for character tokenizers and raw prompts; a chat template breaks it and is refused
//! with an error.

use std::collections::HashMap;

use foil_core::policy::InferenceModel;
use foil_core::tokenizer::Tokenizer;
use foil_core::{Problem, Sampler, Verifier};

/// Splits `text` into steps at `sep`; every step but possibly the last ends with `sep`, and
/// the steps concatenate to `text`. No empty steps (an empty text has none).
pub fn split_steps(text: &str, sep: &str) -> Vec<String> {
    if sep.is_empty() {
        return if text.is_empty() {
            Vec::new()
        } else {
            vec![text.to_string()]
        };
    }
    text.split_inclusive(sep)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `1 − (1 − q)^K`: the chance that at least one of `K` independent tries succeeds.
pub fn best_of_k(q: f64, k: u32) -> f64 {
    1.0 - (1.0 - q).powi(k as i32)
}

/// The values of one response's step prefixes.
#[derive(Debug, Clone, PartialEq)]
pub struct StepValues {
    /// The steps of the response (they concatenate to it).
    pub steps: Vec<String>,
    /// `Q(ŷ_{1:i})` for `i = 0 … L` (`L + 1` entries).
    pub q: Vec<f64>,
    /// The plain MC success rate `q_i` behind each `Q` (`i = L`: the verdict).
    pub success: Vec<f64>,
}

impl StepValues {
    /// Number of steps `L`.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether the response has no step.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// `A_i = Q_i − Q_{i−1}` for `i = 1 … L` (index `i − 1`).
    pub fn advantages(&self) -> Vec<f64> {
        self.q.windows(2).map(|w| w[1] - w[0]).collect()
    }

    /// The first pit `c ∈ 1 … L` (`None` without steps).
    pub fn first_pit(&self) -> Option<usize> {
        first_pit(&self.q)
    }
}

/// The first index `i ≥ 1` attaining `min_{j ≥ 1} q_j` (`None` when `q` has no `i ≥ 1`).
pub fn first_pit(q: &[f64]) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, &v) in q.iter().enumerate().skip(1) {
        if best.is_none_or(|(_, b)| v < b) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i)
}

/// For each generated token, the index (0-based) of the step it belongs to: the number of
/// separators in the text decoded before it, capped at `steps − 1` (a final EOS belongs to
/// the last step).
pub fn token_steps(tok: &dyn Tokenizer, tokens: &[u32], sep: &str, steps: usize) -> Vec<usize> {
    let last = steps.saturating_sub(1);
    (0..tokens.len())
        .map(|j| {
            if sep.is_empty() {
                return 0;
            }
            tok.decode(&tokens[..j]).matches(sep).count().min(last)
        })
        .collect()
}

/// One response to value.
#[derive(Debug, Clone)]
pub struct Response<'a> {
    pub problem: &'a Problem,
    pub text: &'a str,
    /// Its verdict (the value of the finished response).
    pub correct: bool,
}

/// What the rollouts cost.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RolloutCount {
    /// Distinct prefixes rolled out.
    pub prefixes: usize,
    /// Continuations sampled (`prefixes × M`).
    pub continuations: usize,
}

/// The step values of every response, from `M = sampler.n()` continuations per distinct
/// step prefix, all prefixes in one sampling call (seeded by `seed`).
#[allow(clippy::too_many_arguments)]
pub fn mc_step_values(
    model: &dyn InferenceModel,
    tok: &dyn Tokenizer,
    sampler: &dyn Sampler,
    verifier: &dyn Verifier,
    responses: &[Response<'_>],
    sep: &str,
    k: u32,
    seed: u64,
) -> anyhow::Result<(Vec<StepValues>, RolloutCount)> {
    anyhow::ensure!(k >= 1, "step values: best-of-K needs K ≥ 1, got {k}");
    let m = sampler.n();
    anyhow::ensure!(m >= 1, "step values: the rollout sampler must draw n ≥ 1");
    // distinct (problem, prefix) → index of its rollout problem
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    let mut rollout: Vec<(Problem, String, &Problem)> = Vec::new();
    let mut split = Vec::with_capacity(responses.len());
    for r in responses {
        let steps = split_steps(r.text, sep);
        for i in 0..steps.len().max(1) {
            // i = 0 is the bare prompt; an empty response still gets its prompt's value
            if i > 0 && i >= steps.len() {
                break;
            }
            let prefix: String = steps[..i].concat();
            let key = (r.problem.id.clone(), prefix.clone());
            if index.contains_key(&key) {
                continue;
            }
            let prompt = format!("{}{}", r.problem.prompt, prefix);
            let whole = tok.encode_prompt(&prompt)?;
            let mut parts = tok.encode_prompt(&r.problem.prompt)?;
            parts.extend(tok.encode(&prefix)?);
            anyhow::ensure!(
                whole == parts,
                "step values: the prompt of problem {} followed by the step prefix {prefix:?} \
                 does not encode as the prompt's tokens then the prefix's (a chat template?); \
                 per-step rollouts need a raw prompt format",
                r.problem.id
            );
            index.insert(key, rollout.len());
            rollout.push((
                Problem {
                    id: format!("{}#{}", r.problem.id, rollout.len()),
                    prompt,
                    ..r.problem.clone()
                },
                prefix,
                r.problem,
            ));
        }
        split.push(steps);
    }
    let problems: Vec<Problem> = rollout.iter().map(|(p, ..)| p.clone()).collect();
    let groups = if problems.is_empty() {
        Vec::new()
    } else {
        sampler.sample(model, tok, &problems, seed)?
    };
    anyhow::ensure!(
        groups.len() == problems.len(),
        "step values: the rollout sampler returned {} groups for {} prefixes",
        groups.len(),
        problems.len()
    );
    // each continuation is judged as prefix ∘ continuation on the original problem
    let success: Vec<f64> = groups
        .iter()
        .zip(&rollout)
        .map(|(g, (_, prefix, original))| {
            let n = g.completions.len().max(1) as f64;
            g.completions
                .iter()
                .filter(|c| {
                    verifier
                        .verify(original, &format!("{prefix}{}", c.text))
                        .correct
                })
                .count() as f64
                / n
        })
        .collect();
    let mut out = Vec::with_capacity(responses.len());
    for (r, steps) in responses.iter().zip(split) {
        let mut q = Vec::with_capacity(steps.len() + 1);
        let mut s = Vec::with_capacity(steps.len() + 1);
        for i in 0..steps.len() {
            let prefix: String = steps[..i].concat();
            let j = index[&(r.problem.id.clone(), prefix)];
            s.push(success[j]);
            q.push(best_of_k(success[j], k));
        }
        if steps.is_empty() {
            let j = index[&(r.problem.id.clone(), String::new())];
            s.push(success[j]);
            q.push(best_of_k(success[j], k));
        } else {
            let v = r.correct as u8 as f64;
            s.push(v);
            q.push(v);
        }
        out.push(StepValues {
            steps,
            q,
            success: s,
        });
    }
    Ok((
        out,
        RolloutCount {
            prefixes: problems.len(),
            continuations: problems.len() * m,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sv(q: &[f64]) -> StepValues {
        StepValues {
            steps: (1..q.len()).map(|i| format!("s{i}|")).collect(),
            q: q.to_vec(),
            success: q.to_vec(),
        }
    }

    #[test]
    fn steps_keep_their_separator_and_concatenate_back() {
        assert_eq!(
            split_steps("1+2=3|3*4=2|A:2", "|"),
            vec!["1+2=3|", "3*4=2|", "A:2"]
        );
        assert_eq!(split_steps("1+2=3|", "|"), vec!["1+2=3|"]);
        assert!(split_steps("", "|").is_empty());
        assert_eq!(split_steps("A:5", ""), vec!["A:5"]);
    }

    #[test]
    fn best_of_k_by_hand() {
        // q = 0.5, K = 5: 1 − 0.5⁵ = 1 − 0.03125 = 0.96875
        assert!((best_of_k(0.5, 5) - 0.96875).abs() < 1e-12);
        // K = 1 is plain MC
        assert!((best_of_k(0.25, 1) - 0.25).abs() < 1e-12);
        assert_eq!(best_of_k(0.0, 5), 0.0);
        assert_eq!(best_of_k(1.0, 5), 1.0);
    }

    #[test]
    fn advantages_and_first_pit_by_hand() {
        // Q = [0.9, 0.9, 0.2, 0.2, 0]: A = [0, −0.7, 0, −0.2]; the lowest Q over i ≥ 1 is
        // 0 at i = 4 (only there), so c = 4
        let v = sv(&[0.9, 0.9, 0.2, 0.2, 0.0]);
        let a = v.advantages();
        let want = [0.0, -0.7, 0.0, -0.2];
        for (x, y) in a.iter().zip(want) {
            assert!((x - y).abs() < 1e-12, "{a:?}");
        }
        assert_eq!(v.first_pit(), Some(4));
        // Q = [0.6, 0.0, 0.4, 0.0]: min 0 first at i = 1 (ties go to the first)
        assert_eq!(first_pit(&[0.6, 0.0, 0.4, 0.0]), Some(1));
        // i = 0 never counts even when lowest
        assert_eq!(first_pit(&[0.0, 0.5, 0.3]), Some(2));
        assert_eq!(first_pit(&[0.4]), None);
        // the advantages telescope: Σ A_i = Q_L − Q_0
        let s: f64 = v.advantages().iter().sum();
        assert!((s - (0.0 - 0.9)).abs() < 1e-12);
    }

    #[test]
    fn tokens_map_to_their_steps() {
        let tok =
            foil_data::char_tokenizer::CharTokenizer::new(foil_data::arithmetic::ALPHABET).unwrap();
        let mut ids = tok.encode("1+2=3|A:3").unwrap();
        ids.push(1); // EOS
        // "1+2=3|" → step 0 (six tokens, the separator included), "A:3" + EOS → step 1
        assert_eq!(
            token_steps(&tok, &ids, "|", 2),
            vec![0, 0, 0, 0, 0, 0, 1, 1, 1, 1]
        );
    }
}
