//! Corpora for the retrievers (`bm25`, `policy_embedding`) and the `rag` sampler: a JSONL
//! file of `{"id": …, "text": …}` rows, or a synthetic corpus of facts about made-up
//! entities, optionally poisoned with crafted passages (`rag_poison.rs`, BadRAG,
//! arXiv 2406.00083, methods.md §5).
//!
//! The synthetic corpus (`facts`) is the tiny experiment's stand-in for BadRAG's
//! Wikipedia passages [recon]: `entities` made-up country names, five relations each
//! (capital, longest river, currency, highest mountain, national dish), one passage per
//! (entity, relation), e.g. `the capital of zorbia is velmar.`, and one question per
//! passage, `what is the capital of zorbia?`, whose gold passage is that fact. Names are
//! drawn from syllables with a ChaCha8 stream seeded by `seed`, so the corpus is the same
//! on every machine. `data-samples/badrag_corpus.jsonl` is `facts` with the defaults
//! written out (the test `sample_file_matches_the_generator` keeps them equal).

use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::{Context, bail};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::rag_poison::Poison;

/// One corpus passage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Passage {
    pub id: String,
    pub text: String,
}

/// Recipe block: `corpus: {path: data-samples/badrag_corpus.jsonl, poison: {…}}` or
/// `corpus: {facts: {entities: 60}}`. Exactly one of `path` / `facts`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Corpus {
    /// JSONL file, one `{"id": "...", "text": "..."}` object per line (blank lines skipped).
    pub path: Option<PathBuf>,
    /// Or the synthetic facts corpus.
    pub facts: Option<Facts>,
    /// Crafted passages appended to the clean corpus.
    pub poison: Option<Poison>,
}

impl Corpus {
    /// The clean passages followed by the crafted ones (ids `poison-N`).
    pub fn load(&self) -> anyhow::Result<Vec<Passage>> {
        let mut passages = match (&self.path, &self.facts) {
            (Some(p), None) => read_jsonl(p)?,
            (None, Some(f)) => f.passages(),
            (Some(_), Some(_)) => bail!("corpus: set one of `path` or `facts`, not both"),
            (None, None) => bail!("corpus: set `path` (a JSONL file of {{id, text}}) or `facts`"),
        };
        if passages.is_empty() {
            bail!("corpus: no passages");
        }
        if let Some(p) = &self.poison {
            passages.extend(p.passages()?);
        }
        let mut seen = HashSet::new();
        for p in &passages {
            if !seen.insert(p.id.as_str()) {
                bail!("corpus: passage id {:?} appears twice", p.id);
            }
        }
        Ok(passages)
    }
}

/// Reads a JSONL corpus; errors name the file and line.
pub fn read_jsonl(path: &std::path::Path) -> anyhow::Result<Vec<Passage>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("corpus: cannot read {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let p: Passage = serde_json::from_str(line).with_context(|| {
            format!(
                "corpus {} line {}: expected {{\"id\": string, \"text\": string}}",
                path.display(),
                i + 1
            )
        })?;
        out.push(p);
    }
    Ok(out)
}

/// The synthetic facts corpus.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Facts {
    /// Made-up entities; five passages each.
    pub entities: usize,
    pub seed: u64,
}

impl Default for Facts {
    fn default() -> Self {
        Self {
            entities: 40,
            seed: 7,
        }
    }
}

/// (passage template, question template) per relation; `{e}` entity, `{v}` value.
const RELATIONS: [(&str, &str); 5] = [
    ("the capital of {e} is {v}.", "what is the capital of {e}?"),
    (
        "the longest river in {e} is the {v}.",
        "what is the longest river in {e}?",
    ),
    (
        "the currency of {e} is the {v}.",
        "what is the currency of {e}?",
    ),
    (
        "the highest mountain of {e} is mount {v}.",
        "what is the highest mountain of {e}?",
    ),
    (
        "the national dish of {e} is {v}.",
        "what is the national dish of {e}?",
    ),
];

const SYLLABLES: [&str; 16] = [
    "ka", "lo", "mi", "ru", "ten", "var", "zo", "bel", "dra", "nix", "po", "sel", "tu", "qua",
    "fen", "gor",
];

/// A clean question with the id of the passage that answers it.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub text: String,
    pub gold: String,
    /// The value the gold passage states.
    pub answer: String,
}

impl Facts {
    fn names(&self) -> Vec<String> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(self.seed);
        let mut seen = HashSet::new();
        let want = self.entities * (1 + RELATIONS.len());
        let mut out = Vec::with_capacity(want);
        while out.len() < want {
            let len = rng.random_range(2..=3);
            let name: String = (0..len)
                .map(|_| SYLLABLES[rng.random_range(0..SYLLABLES.len())])
                .collect();
            if seen.insert(name.clone()) {
                out.push(name);
            }
            // 16² + 16³ names exist; past that the loop would not end
            if seen.len() >= 16 * 16 + 16 * 16 * 16 {
                break;
            }
        }
        out
    }

    fn rows(&self) -> Vec<(Passage, Query)> {
        let names = self.names();
        let mut out = Vec::new();
        let stride = 1 + RELATIONS.len();
        for e in 0..self.entities {
            let Some(block) = names.get(e * stride..(e + 1) * stride) else {
                break;
            };
            let entity = &block[0];
            for (r, (fact, question)) in RELATIONS.iter().enumerate() {
                let id = format!("fact-{e:03}-{r}");
                let text = fact.replace("{e}", entity).replace("{v}", &block[1 + r]);
                out.push((
                    Passage {
                        id: id.clone(),
                        text,
                    },
                    Query {
                        text: question.replace("{e}", entity),
                        gold: id,
                        answer: block[1 + r].clone(),
                    },
                ));
            }
        }
        out
    }

    /// One passage per (entity, relation).
    pub fn passages(&self) -> Vec<Passage> {
        self.rows().into_iter().map(|(p, _)| p).collect()
    }

    /// One question per passage, in the same order.
    pub fn queries(&self) -> Vec<Query> {
        self.rows().into_iter().map(|(_, q)| q).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_are_deterministic_and_answerable() {
        let f = Facts::default();
        let p = f.passages();
        let q = f.queries();
        assert_eq!(p.len(), 40 * 5);
        assert_eq!(p, f.passages());
        assert_eq!(q[0].gold, p[0].id);
        // the question's entity occurs in its gold passage
        let entity = q[0].text.trim_end_matches('?').rsplit(' ').next().unwrap();
        assert!(p[0].text.contains(entity), "{} / {}", q[0].text, p[0].text);
        let other = Facts { seed: 8, ..f };
        assert_ne!(other.passages(), p);
    }

    #[test]
    fn sample_file_matches_the_generator() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../data-samples/badrag_corpus.jsonl"
        );
        if std::env::var_os("FOIL_WRITE_SAMPLES").is_some() {
            let lines: String = Facts::default()
                .passages()
                .iter()
                .map(|p| serde_json::to_string(p).unwrap() + "\n")
                .collect();
            std::fs::write(path, lines).unwrap();
            let poison = crate::rag_poison::Poison::default();
            let questions: String = Facts::default()
                .queries()
                .iter()
                .enumerate()
                .map(|(i, q)| {
                    serde_json::json!({"question": q.text, "triggered": poison.trigger(&q.text, i), "answer": q.answer, "gold": q.gold}).to_string() + "\n"
                })
                .collect();
            std::fs::write(path.replace("corpus", "questions"), questions).unwrap();
        }
        let file = read_jsonl(std::path::Path::new(path)).unwrap();
        assert_eq!(file, Facts::default().passages());
    }

    #[test]
    fn jsonl_errors_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.jsonl");
        std::fs::write(&path, "{\"id\": \"a\", \"text\": \"x\"}\n\n{\"id\": 3}\n").unwrap();
        let err = format!("{:#}", read_jsonl(&path).unwrap_err());
        assert!(err.contains("c.jsonl line 3"), "{err}");
        let dup = dir.path().join("d.jsonl");
        std::fs::write(
            &dup,
            "{\"id\": \"a\", \"text\": \"x\"}\n{\"id\": \"a\", \"text\": \"y\"}\n",
        )
        .unwrap();
        let c = Corpus {
            path: Some(dup),
            ..Default::default()
        };
        assert!(format!("{:#}", c.load().unwrap_err()).contains("twice"));
        let both = Corpus {
            path: Some(path),
            facts: Some(Facts::default()),
            poison: None,
        };
        assert!(both.load().is_err());
    }
}
