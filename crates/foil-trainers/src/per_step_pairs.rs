//! First-pit preference pairs (Setlur et al. 2024, arXiv 2406.14532, Alg. 1; `methods.md`
//! §1): for a question `x` with incorrect responses `ŷ` whose step values are known
//! ([`crate::per_step_values`]), the pair
//!
//! ```text
//! (x,  y⁺ ≻ ŷ_{1:c})      c = the first pit of ŷ (first step attaining the lowest Q)
//! ```
//!
//! where `y⁺` is a correct response to `x`: a verifier-correct sample of the same group
//! (the `j`-th negative takes the `(j mod #correct)`-th correct sample, in sampling order),
//! or, only when allowed, the task's reference solution if no sample is correct [recon: the
//! paper's `y⁺` comes from its positive synthetic data]. At most `negatives` pairs per
//! question (8 by default [secondary]), negatives in sampling order. The rejected side is
//! the response cut after step `c` (re-encoded through the tokenizer, no end-of-sequence:
//! it is a partial response); when `c = L` it is the whole response as sampled, EOS
//! included [recon]. A question with no correct response (and no reference allowed) or no
//! incorrect one gives no pair.

use foil_core::tokenizer::Tokenizer;
use foil_core::{Completion, Problem};

use crate::per_step_values::StepValues;

/// One preference pair of token sequences (responses only; the prompt is the problem's).
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    /// Index of the problem in the caller's list.
    pub problem: usize,
    pub chosen: Vec<u32>,
    pub rejected: Vec<u32>,
    /// The first pit `c` of the negative (1-based step index).
    pub pit: usize,
    /// The negative's number of steps `L`.
    pub steps: usize,
}

/// One sampled response with its verdict and, for incorrect ones, its step values.
#[derive(Debug, Clone)]
pub struct Scored<'a> {
    pub completion: &'a Completion,
    pub correct: bool,
    pub values: Option<&'a StepValues>,
}

/// The first-pit pairs of one question (see the module docs).
pub fn first_pit_pairs(
    problem_index: usize,
    problem: &Problem,
    responses: &[Scored<'_>],
    tok: &dyn Tokenizer,
    negatives: usize,
    use_reference: bool,
) -> anyhow::Result<Vec<Pair>> {
    let mut positives: Vec<Vec<u32>> = responses
        .iter()
        .filter(|r| r.correct && !r.completion.tokens.is_empty())
        .map(|r| r.completion.tokens.clone())
        .collect();
    if positives.is_empty() && use_reference {
        let mut y = tok.encode(&problem.solution)?;
        y.push(tok.eos_id());
        positives.push(y);
    }
    if positives.is_empty() {
        return Ok(Vec::new());
    }
    let mut pairs = Vec::new();
    for r in responses.iter().filter(|r| !r.correct) {
        if pairs.len() == negatives {
            break;
        }
        let Some(values) = r.values else {
            anyhow::bail!(
                "first-pit pairs: an incorrect response of problem {} has no step values",
                problem.id
            );
        };
        let Some(c) = values.first_pit() else {
            continue; // no step: nothing to cut
        };
        let rejected = if c == values.len() {
            r.completion.tokens.clone()
        } else {
            tok.encode(&values.steps[..c].concat())?
        };
        if rejected.is_empty() {
            continue;
        }
        pairs.push(Pair {
            problem: problem_index,
            chosen: positives[pairs.len() % positives.len()].clone(),
            rejected,
            pit: c,
            steps: values.len(),
        });
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use foil_core::Finish;
    use foil_data::arithmetic::ALPHABET;
    use foil_data::char_tokenizer::CharTokenizer;

    fn completion(tok: &CharTokenizer, text: &str) -> Completion {
        let mut tokens = tok.encode(text).unwrap();
        tokens.push(tok.eos_id());
        Completion {
            tokens,
            text: text.into(),
            logprobs: vec![],
            entropies: vec![],
            finish: Finish::Eos,
        }
    }

    fn values(text: &str, q: &[f64]) -> StepValues {
        StepValues {
            steps: crate::per_step_values::split_steps(text, "|"),
            q: q.to_vec(),
            success: q.to_vec(),
        }
    }

    #[test]
    fn pairs_cut_negatives_at_the_first_pit() {
        let tok = CharTokenizer::new(ALPHABET).unwrap();
        let p = Problem {
            id: "p".into(),
            prompt: "Q:2+3*4=".into(),
            solution: "2+3=5|5*4=0|A:0".into(),
            answer: "0".into(),
            difficulty: 3,
        };
        let good = completion(&tok, "2+3=5|5*4=0|A:0");
        let bad1 = completion(&tok, "2+3=6|6*4=4|A:4"); // wrong at step 1
        let bad2 = completion(&tok, "2+3=5|5*4=9|A:9"); // wrong at step 2
        let v1 = values(&bad1.text, &[0.8, 0.0, 0.0, 0.0]); // pit c = 1
        let v2 = values(&bad2.text, &[0.8, 0.9, 0.1, 0.0]); // pit c = 3 (the lowest, 0)
        let rs = [
            Scored {
                completion: &bad1,
                correct: false,
                values: Some(&v1),
            },
            Scored {
                completion: &good,
                correct: true,
                values: None,
            },
            Scored {
                completion: &bad2,
                correct: false,
                values: Some(&v2),
            },
        ];
        let pairs = first_pit_pairs(7, &p, &rs, &tok, 8, false).unwrap();
        assert_eq!(pairs.len(), 2);
        assert_eq!(pairs[0].problem, 7);
        assert_eq!(pairs[0].chosen, good.tokens);
        // c = 1: "2+3=6|", no EOS
        assert_eq!(pairs[0].rejected, tok.encode("2+3=6|").unwrap());
        assert_eq!((pairs[0].pit, pairs[0].steps), (1, 3));
        // c = L = 3: the whole response with its EOS
        assert_eq!(pairs[1].rejected, bad2.tokens);
        assert_eq!(pairs[1].pit, 3);
        // the negative budget
        assert_eq!(
            first_pit_pairs(0, &p, &rs, &tok, 1, false).unwrap().len(),
            1
        );
        // no correct sample: no pair, unless the reference is allowed
        let only_bad = [rs[0].clone()];
        assert!(
            first_pit_pairs(0, &p, &only_bad, &tok, 8, false)
                .unwrap()
                .is_empty()
        );
        let with_ref = first_pit_pairs(0, &p, &only_bad, &tok, 8, true).unwrap();
        let mut reference = tok.encode("2+3=5|5*4=0|A:0").unwrap();
        reference.push(tok.eos_id());
        assert_eq!(with_ref[0].chosen, reference);
        // an incorrect response without values is an error, not a silent skip
        let missing = [Scored {
            completion: &bad1,
            correct: false,
            values: None,
        }];
        let with_good = [rs[1].clone(), missing[0].clone()];
        assert!(first_pit_pairs(0, &p, &with_good, &tok, 8, false).is_err());
    }
}
