//! Preference pairs for the `preference` stage: read from JSONL or Parquet files, or built
//! from scored samples.
//!
//! **JSONL** (one object per line; blank lines are ignored):
//!
//! ```text
//! {"prompt": "Q:2+3=", "chosen": "2+3=5|A:5", "rejected": "2+3=6|A:6"}     a pair
//! {"prompt": "Q:2+3=", "responses": ["r₀", "r₁", "r₂"]}                    a ranking, best first
//! ```
//!
//! A ranking `r₀ ≻ r₁ ≻ … ≻ r_{m−1}` becomes every ordered pair `(r_i ≻ r_j)`, `i < j`:
//! `m(m−1)/2` pairs, in the order `(0,1), (0,2), …, (0,m−1), (1,2), …` (best against all
//! others first); `max_pairs_per_ranking > 0` keeps the first that many of that order.
//! Each response is encoded with the task's tokenizer and ends with end-of-sequence; the
//! prompt goes through `encode_prompt`. A line that is not such an object, has a ranking of
//! fewer than two responses, or holds text the tokenizer cannot encode is an error naming
//! the file and the line (1-based), or, with `skip_bad_lines`, skipped and counted (the
//! reader and the error format are foil-data's `rows::for_each_jsonl_line`, shared with
//! the `jsonl` task).
//!
//! **Parquet** (`.parquet`, e.g. a Hugging Face preference dataset's shard): one row per
//! pair or ranking with the same column names, `responses` a `list<string>`; errors name
//! `FILE row N` (foil-data's `parquet_rows`, shared with the `parquet` task).
//!
//! **Scored samples** (on-policy, or a fixed set sampled once from π_ref): among the `n`
//! responses to one prompt with rewards `r` and outcomes `c`,
//!
//! ```text
//! best_worst:        (argmax r ≻ argmin r)            if max r > min r (first index on ties)
//! all_ranked:        every (i ≻ j) with r_i > r_j
//! correct_incorrect: every (i ≻ j) with c_i ∧ ¬c_j
//! ```
//!
//! where a cap `max_pairs_per_prompt > 0` keeps a seeded random subset of that size.
//! [recon]: Tajwar et al. (arXiv 2404.14367) label two on-policy samples by reward; best ≻
//! worst and the capped cross product are the usual choices for `n > 2`.

use std::path::Path;

use anyhow::{Context, bail};
use foil_core::Tokenizer;
use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

/// One encoded pair: prompt ids, chosen and rejected response ids (each ending in EOS).
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedPair {
    pub prompt: Vec<u32>,
    pub chosen: Vec<u32>,
    pub rejected: Vec<u32>,
}

/// What [`load_pairs`] read.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedPairs {
    pub pairs: Vec<EncodedPair>,
    /// Non-blank lines read.
    pub lines: usize,
    /// Bad lines skipped (`skip_bad_lines`).
    pub skipped: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    prompt: String,
    chosen: Option<String>,
    rejected: Option<String>,
    responses: Option<Vec<String>>,
}

/// The ordered pairs `(i, j)`, `i < j`, of a ranking of `m` (best first), in the order of
/// the module docs; the first `cap` of them when `cap > 0`.
pub fn ranking_pairs(m: usize, cap: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for i in 0..m {
        for j in i + 1..m {
            if cap > 0 && out.len() == cap {
                return out;
            }
            out.push((i, j));
        }
    }
    out
}

fn response(tok: &dyn Tokenizer, text: &str) -> anyhow::Result<Vec<u32>> {
    let mut ids = tok.encode(text)?;
    ids.push(tok.eos_id());
    Ok(ids)
}

fn parse_line(line: &str, tok: &dyn Tokenizer, cap: usize) -> anyhow::Result<Vec<EncodedPair>> {
    encode_line(serde_json::from_str(line)?, tok, cap)
}

fn encode_line(l: Line, tok: &dyn Tokenizer, cap: usize) -> anyhow::Result<Vec<EncodedPair>> {
    let prompt = tok.encode_prompt(&l.prompt).context("prompt")?;
    let texts: Vec<String> = match (l.chosen, l.rejected, l.responses) {
        (Some(c), Some(r), None) => vec![c, r],
        (None, None, Some(rs)) => {
            if rs.len() < 2 {
                bail!("a ranking needs at least two responses, got {}", rs.len());
            }
            rs
        }
        _ => bail!(
            "expected {{\"prompt\", \"chosen\", \"rejected\"}} or {{\"prompt\", \"responses\": [...]}}"
        ),
    };
    let ids: Vec<Vec<u32>> = texts
        .iter()
        .enumerate()
        .map(|(k, t)| response(tok, t).with_context(|| format!("response {k}")))
        .collect::<anyhow::Result<_>>()?;
    Ok(ranking_pairs(ids.len(), cap)
        .into_iter()
        .map(|(i, j)| EncodedPair {
            prompt: prompt.clone(),
            chosen: ids[i].clone(),
            rejected: ids[j].clone(),
        })
        .collect())
}

/// Reads pairs and rankings from a JSONL file, or from a Parquet file (`.parquet`: the
/// same fields as columns, `responses` a list of strings) (see the module docs), through
/// foil-data's shared readers ([`foil_data::rows::for_each_jsonl_line`],
/// [`foil_data::parquet_rows::for_each_parquet_row`]): the same `FILE line N: …` /
/// `FILE row N: …` errors and `skip_bad_lines` counting as the `jsonl` and `parquet` tasks.
pub fn load_pairs(
    path: &Path,
    tok: &dyn Tokenizer,
    max_pairs_per_ranking: usize,
    skip_bad_lines: bool,
) -> anyhow::Result<LoadedPairs> {
    let mut pairs = Vec::new();
    let parquet = path.extension().is_some_and(|e| e == "parquet");
    let (lines, skipped) = if parquet {
        foil_data::parquet_rows::for_each_parquet_row(path, skip_bad_lines, 0, |_, fields| {
            let l: Line = serde_json::from_value(serde_json::Value::Object(fields))?;
            pairs.extend(encode_line(l, tok, max_pairs_per_ranking)?);
            Ok(())
        })
    } else {
        foil_data::rows::for_each_jsonl_line(path, skip_bad_lines, 0, |_, line| {
            pairs.extend(parse_line(line, tok, max_pairs_per_ranking)?);
            Ok(())
        })
    }
    .with_context(|| format!("preference data {}", path.display()))?;
    anyhow::ensure!(
        !pairs.is_empty(),
        "{} holds no usable preference pairs ({lines} lines, {skipped} skipped)",
        path.display(),
    );
    Ok(LoadedPairs {
        pairs,
        lines,
        skipped,
    })
}

/// How pairs are built from the scored samples of one prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pairing {
    /// The highest-reward sample over the lowest (none when all rewards are equal).
    #[default]
    BestWorst,
    /// Every pair with a strictly higher reward first.
    AllRanked,
    /// Every correct sample over every incorrect one.
    CorrectIncorrect,
}

/// Index of the highest reward (the first on ties); `None` for no samples.
pub fn best(rewards: &[f32]) -> Option<usize> {
    (0..rewards.len()).fold(None, |b, i| match b {
        Some(k) if rewards[k] >= rewards[i] => Some(k),
        _ => Some(i),
    })
}

/// Pairs `(chosen, rejected)` of sample indices (see the module docs).
pub fn scored_pairs(
    rewards: &[f32],
    correct: &[bool],
    pairing: Pairing,
    cap: usize,
    rng: &mut impl Rng,
) -> Vec<(usize, usize)> {
    let n = rewards.len();
    let mut out = match pairing {
        Pairing::BestWorst => {
            let Some(b) = best(rewards) else {
                return Vec::new();
            };
            let w = (0..n).fold(0, |w, i| if rewards[i] < rewards[w] { i } else { w });
            return if rewards[b] > rewards[w] {
                vec![(b, w)]
            } else {
                Vec::new()
            };
        }
        Pairing::AllRanked => {
            let mut v = Vec::new();
            for i in 0..n {
                for j in 0..n {
                    if rewards[i] > rewards[j] {
                        v.push((i, j));
                    }
                }
            }
            v
        }
        Pairing::CorrectIncorrect => {
            let mut v = Vec::new();
            for i in 0..n {
                for j in 0..n {
                    if correct[i] && !correct[j] {
                        v.push((i, j));
                    }
                }
            }
            v
        }
    };
    if cap > 0 && out.len() > cap {
        out.shuffle(rng);
        out.truncate(cap);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use foil_core::rng;

    #[derive(Debug)]
    struct Words;
    // ids: 0 pad, 1 eos, 2 + (letter − 'a') for lower-case letters
    impl Tokenizer for Words {
        fn vocab_size(&self) -> usize {
            28
        }
        fn encode(&self, text: &str) -> anyhow::Result<Vec<u32>> {
            text.chars()
                .map(|c| {
                    anyhow::ensure!(
                        c.is_ascii_lowercase(),
                        "character {c:?} not in the vocabulary"
                    );
                    Ok(c as u32 - 'a' as u32 + 2)
                })
                .collect()
        }
        fn decode(&self, _ids: &[u32]) -> String {
            String::new()
        }
        fn eos_id(&self) -> u32 {
            1
        }
        fn pad_id(&self) -> u32 {
            0
        }
    }

    #[test]
    fn ranking_expands_to_all_ordered_pairs() {
        // m = 4: 4·3/2 = 6 pairs, best against all first
        assert_eq!(
            ranking_pairs(4, 0),
            vec![(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
        );
        // cap 4: the first four of that order
        assert_eq!(ranking_pairs(4, 4), vec![(0, 1), (0, 2), (0, 3), (1, 2)]);
        assert!(ranking_pairs(1, 0).is_empty());
    }

    #[test]
    fn jsonl_pairs_rankings_and_located_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.jsonl");
        std::fs::write(
            &path,
            "{\"prompt\":\"q\",\"chosen\":\"a\",\"rejected\":\"b\"}\n\n\
             {\"prompt\":\"q\",\"responses\":[\"a\",\"b\",\"c\"]}\n",
        )
        .unwrap();
        let l = load_pairs(&path, &Words, 0, false).unwrap();
        // 1 pair + 3·2/2 = 3 ranking pairs; the blank line is not counted
        assert_eq!((l.pairs.len(), l.lines, l.skipped), (4, 2, 0));
        // q → [18]; a → [2, eos]; c → [4, eos]
        assert_eq!(l.pairs[0].prompt, vec![18]);
        assert_eq!(l.pairs[0].chosen, vec![2, 1]);
        assert_eq!(l.pairs[2].chosen, vec![2, 1]); // (0 ≻ 2) = a ≻ c
        assert_eq!(l.pairs[2].rejected, vec![4, 1]);
        assert_eq!(l.pairs[3].chosen, vec![3, 1]); // (1 ≻ 2) = b ≻ c

        // line 3 is bad: a ranking of one response; line 4: a character out of vocabulary;
        // line 5: not JSON
        std::fs::write(
            &path,
            "{\"prompt\":\"q\",\"chosen\":\"a\",\"rejected\":\"b\"}\n\n\
             {\"prompt\":\"q\",\"responses\":[\"a\"]}\n\
             {\"prompt\":\"q\",\"chosen\":\"A\",\"rejected\":\"b\"}\n\
             {oops\n",
        )
        .unwrap();
        let e = format!("{:#}", load_pairs(&path, &Words, 0, false).unwrap_err());
        assert!(e.contains("p.jsonl line 3"), "{e}");
        assert!(e.contains("at least two responses"), "{e}");
        let l = load_pairs(&path, &Words, 0, true).unwrap();
        assert_eq!((l.pairs.len(), l.lines, l.skipped), (1, 4, 3));
        std::fs::write(
            &path,
            "{\"prompt\":\"q\",\"chosen\":\"A\",\"rejected\":\"b\"}\n",
        )
        .unwrap();
        let e = format!("{:#}", load_pairs(&path, &Words, 0, false).unwrap_err());
        assert!(e.contains("line 1") && e.contains("response 0"), "{e}");
        std::fs::write(&path, "{\"prompt\":\"q\",\"chosen\":\"a\"}\n").unwrap();
        let e = format!("{:#}", load_pairs(&path, &Words, 0, false).unwrap_err());
        assert!(e.contains("line 1") && e.contains("expected"), "{e}");
    }

    #[test]
    fn parquet_pairs_and_rankings_match_their_jsonl_twin() {
        // data-samples/pref_arith_pairs.parquet is written from the .jsonl by foil-data's
        // write_parquet_samples (pairs as string columns, rankings as list<string>)
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data-samples");
        let task = foil_core::Task::build(&foil_data::Arithmetic::default(), 0).unwrap();
        let tok = task.tokenizer.as_ref();
        let j = load_pairs(&root.join("pref_arith_pairs.jsonl"), tok, 0, false).unwrap();
        let p = load_pairs(&root.join("pref_arith_pairs.parquet"), tok, 0, false).unwrap();
        // 24 lines: 18 pairs + 6 rankings; the same encoded pairs in the same order
        assert_eq!((p.lines, p.skipped), (24, 0));
        assert!(j.pairs.len() > 24);
        assert_eq!(p, j);
        // the same rows written by pyarrow (scripts/parquet/write_pyarrow_pairs.py: two row
        // groups, dictionary encoding, data page v2)
        let a = load_pairs(
            &root.join("pref_arith_pairs_pyarrow.parquet"),
            tok,
            0,
            false,
        )
        .unwrap();
        assert_eq!(a, j);

        // a ranking of one response at row 2: located by row, or skipped and counted
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.parquet");
        let row = |v: serde_json::Value| match v {
            serde_json::Value::Object(m) => m,
            _ => unreachable!(),
        };
        foil_data::parquet_rows::write_table(
            &bad,
            &[
                row(serde_json::json!({"prompt": "q", "responses": ["a", "b"]})),
                row(serde_json::json!({"prompt": "q", "responses": ["a"]})),
            ],
        )
        .unwrap();
        let e = format!("{:#}", load_pairs(&bad, &Words, 0, false).unwrap_err());
        assert!(e.contains("bad.parquet row 2"), "{e}");
        assert!(e.contains("at least two responses"), "{e}");
        let l = load_pairs(&bad, &Words, 0, true).unwrap();
        assert_eq!((l.pairs.len(), l.lines, l.skipped), (1, 2, 1));
    }

    #[test]
    fn pairs_from_scored_samples() {
        let mut r = rng::rng(1, &[0]);
        let rewards = [0.2, 0.9, 0.1, 0.9];
        let correct = [false, true, false, true];
        // best = first of the two 0.9s = 1; worst = 2 (0.1)
        assert_eq!(best(&rewards), Some(1));
        assert_eq!(
            scored_pairs(&rewards, &correct, Pairing::BestWorst, 0, &mut r),
            vec![(1, 2)]
        );
        // strictly higher: 0 > 2; 1 > 0, 2; 3 > 0, 2 (1 and 3 tie: no pair)
        assert_eq!(
            scored_pairs(&rewards, &correct, Pairing::AllRanked, 0, &mut r),
            vec![(0, 2), (1, 0), (1, 2), (3, 0), (3, 2)]
        );
        // correct {1, 3} × incorrect {0, 2} = 4 pairs
        let ci = scored_pairs(&rewards, &correct, Pairing::CorrectIncorrect, 0, &mut r);
        assert_eq!(ci, vec![(1, 0), (1, 2), (3, 0), (3, 2)]);
        let capped = scored_pairs(&rewards, &correct, Pairing::CorrectIncorrect, 3, &mut r);
        assert_eq!(capped.len(), 3);
        assert!(capped.iter().all(|p| ci.contains(p)));
        // all rewards equal: no pair
        assert!(scored_pairs(&[0.5; 3], &[true; 3], Pairing::BestWorst, 0, &mut r).is_empty());
    }
}
