//! `bm25`: Okapi BM25 lexical retrieval (Robertson & Zaragoza 2009), the sparse
//! retriever of the BadRAG experiment (arXiv 2406.00083, methods.md §5; the paper attacks
//! dense retrievers and also reports BM25 [secondary]).
//!
//! ```text
//! score(q, d) = Σ_{t ∈ q}  idf(t) · f(t,d)·(k1 + 1) / ( f(t,d) + k1·(1 − b + b·|d|/avgdl) )
//! idf(t)      = ln( 1 + (N − n(t) + 0.5) / (n(t) + 0.5) )
//! ```
//!
//! `f(t,d)` = count of term `t` in passage `d`, `|d|` its length in terms, `avgdl` the mean
//! length, `N` the number of passages, `n(t)` how many contain `t`. The IDF is Lucene's
//! (never negative); the sum runs over the query's terms as they occur, repeats included
//! (as `rank_bm25` does). Defaults `k1 = 1.2`, `b = 0.75`. Tokenisation: lower-case, split
//! at every character that is not alphanumeric (Unicode), no stemming, no stop words.
//! Ties keep corpus order. Hand-written: the index is forty lines, and the `bm25` crate
//! tokenises with stemming and stop-word lists per language, which would change the
//! scores this file's doc states.

use std::collections::HashMap;
use std::sync::OnceLock;

use foil_core::policy::InferenceModel;
use foil_core::{Retrieved, Retriever, Tokenizer, register_part};
use serde::{Deserialize, Serialize};

use crate::rag_corpus::{Corpus, Passage};

/// Recipe part: `retriever: {type: bm25, corpus: {path: …}, k1: 1.2, b: 0.75}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Bm25 {
    pub corpus: Corpus,
    pub k1: f32,
    pub b: f32,
    #[serde(skip)]
    index: OnceLock<Bm25Index>,
}

register_part!(
    Retriever,
    "bm25",
    Bm25,
    "Okapi BM25 over a JSONL or synthetic corpus (k1 = 1.2, b = 0.75, Lucene idf), optionally poisoned (BadRAG)"
);

impl Default for Bm25 {
    fn default() -> Self {
        Self::new(Corpus::default())
    }
}

impl Bm25 {
    /// A BM25 retriever over `corpus` with the default k1, b.
    pub fn new(corpus: Corpus) -> Self {
        Self {
            corpus,
            k1: 1.2,
            b: 0.75,
            index: OnceLock::new(),
        }
    }
}

/// Lower-cased alphanumeric runs.
pub fn terms(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// An inverted BM25 index over passages.
#[derive(Debug)]
pub struct Bm25Index {
    passages: Vec<Passage>,
    /// term → (passage, count)
    postings: HashMap<String, Vec<(usize, u32)>>,
    lengths: Vec<f32>,
    avgdl: f32,
    k1: f32,
    b: f32,
}

impl Bm25Index {
    pub fn new(passages: Vec<Passage>, k1: f32, b: f32) -> anyhow::Result<Self> {
        anyhow::ensure!(k1 >= 0.0 && k1.is_finite(), "bm25: k1 = {k1} must be ≥ 0");
        anyhow::ensure!((0.0..=1.0).contains(&b), "bm25: b = {b} must lie in [0, 1]");
        anyhow::ensure!(!passages.is_empty(), "bm25: the corpus is empty");
        let mut postings: HashMap<String, Vec<(usize, u32)>> = HashMap::new();
        let mut lengths = Vec::with_capacity(passages.len());
        for (i, p) in passages.iter().enumerate() {
            let ts = terms(&p.text);
            lengths.push(ts.len() as f32);
            let mut counts: HashMap<String, u32> = HashMap::new();
            for t in ts {
                *counts.entry(t).or_default() += 1;
            }
            for (t, c) in counts {
                postings.entry(t).or_default().push((i, c));
            }
        }
        let avgdl = (lengths.iter().sum::<f32>() / lengths.len() as f32).max(f32::MIN_POSITIVE);
        Ok(Self {
            passages,
            postings,
            lengths,
            avgdl,
            k1,
            b,
        })
    }

    /// `idf(t)`; 0 for a term no passage contains.
    pub fn idf(&self, term: &str) -> f32 {
        let n = self.passages.len() as f32;
        match self.postings.get(term) {
            Some(p) => {
                let nt = p.len() as f32;
                (1.0 + (n - nt + 0.5) / (nt + 0.5)).ln()
            }
            None => 0.0,
        }
    }

    /// BM25 score of every passage for `query`.
    pub fn scores(&self, query: &str) -> Vec<f32> {
        let mut s = vec![0.0f32; self.passages.len()];
        for t in terms(query) {
            let Some(post) = self.postings.get(&t) else {
                continue;
            };
            let idf = self.idf(&t);
            for &(d, f) in post {
                let f = f as f32;
                let norm = self.k1 * (1.0 - self.b + self.b * self.lengths[d] / self.avgdl);
                s[d] += idf * f * (self.k1 + 1.0) / (f + norm);
            }
        }
        s
    }

    /// The `k` best passages, best first; ties keep corpus order.
    pub fn top_k(&self, query: &str, k: usize) -> Vec<Retrieved> {
        rank(&self.passages, &self.scores(query), k)
    }
}

/// The `k` highest `scores` as [`Retrieved`], best first, ties in corpus order.
pub fn rank(passages: &[Passage], scores: &[f32], k: usize) -> Vec<Retrieved> {
    crate::best_of_n::top_k(scores, k)
        .into_iter()
        .map(|i| Retrieved {
            index: i,
            id: passages[i].id.clone(),
            text: passages[i].text.clone(),
            score: scores[i],
        })
        .collect()
}

impl Bm25 {
    fn index(&self) -> anyhow::Result<&Bm25Index> {
        if let Some(ix) = self.index.get() {
            return Ok(ix);
        }
        let ix = Bm25Index::new(self.corpus.load()?, self.k1, self.b)?;
        Ok(self.index.get_or_init(|| ix))
    }
}

#[typetag::serde(name = "bm25")]
impl Retriever for Bm25 {
    fn prepare(&self) -> anyhow::Result<()> {
        self.index().map(|_| ())
    }

    fn retrieve(
        &self,
        _policy: Option<(&dyn InferenceModel, &dyn Tokenizer)>,
        queries: &[&str],
        k: usize,
    ) -> anyhow::Result<Vec<Vec<Retrieved>>> {
        let ix = self.index()?;
        Ok(queries.iter().map(|q| ix.top_k(q, k)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(texts: &[&str]) -> Vec<Passage> {
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| Passage {
                id: format!("d{i}"),
                text: t.to_string(),
            })
            .collect()
    }

    #[test]
    fn tokenisation_lowercases_and_splits_on_punctuation() {
        assert_eq!(
            terms("The Capital, of X-1!"),
            ["the", "capital", "of", "x", "1"]
        );
    }

    #[test]
    fn three_document_worked_example() {
        // d0 = "cat dog"        |d0| = 2
        // d1 = "cat cat fish"   |d1| = 3
        // d2 = "bird"           |d2| = 1      avgdl = 6/3 = 2, N = 3
        let ix = Bm25Index::new(docs(&["cat dog", "Cat cat fish", "bird"]), 1.2, 0.75).unwrap();
        // idf(cat): n = 2 → ln(1 + (3 − 2 + 0.5)/(2 + 0.5)) = ln(1.6) = 0.470004
        // idf(dog): n = 1 → ln(1 + 2.5/1.5) = ln(2.666667) = 0.980829
        assert!((ix.idf("cat") - 0.470_004).abs() < 1e-5);
        assert!((ix.idf("dog") - 0.980_829).abs() < 1e-5);
        assert_eq!(ix.idf("zebra"), 0.0);
        // query "cat":
        // d0: f = 1, norm = 1.2·(0.25 + 0.75·2/2) = 1.2 → 0.470004·1·2.2/(1 + 1.2) = 0.470004
        // d1: f = 2, norm = 1.2·(0.25 + 0.75·3/2) = 1.65 → 0.470004·2·2.2/(2 + 1.65)
        //     = 0.470004·4.4/3.65 = 0.566580
        // d2: 0
        let s = ix.scores("cat");
        assert!((s[0] - 0.470_004).abs() < 1e-5, "{s:?}");
        assert!((s[1] - 0.566_580).abs() < 1e-5, "{s:?}");
        assert_eq!(s[2], 0.0);
        // query "cat dog": d0 = 0.470004 + 0.980829·2.2/2.2 = 1.450833, d1 unchanged
        let s = ix.scores("cat dog");
        assert!((s[0] - 1.450_833).abs() < 1e-5, "{s:?}");
        let top = ix.top_k("cat dog", 2);
        assert_eq!(top[0].id, "d0");
        assert_eq!(top[1].id, "d1");
        // b = 0: no length normalisation, d1: 0.470004·4.4/(2 + 1.2) = 0.646256
        let ix0 = Bm25Index::new(docs(&["cat dog", "cat cat fish", "bird"]), 1.2, 0.0).unwrap();
        assert!((ix0.scores("cat")[1] - 0.646_256).abs() < 1e-5);
    }

    #[test]
    fn ties_keep_corpus_order_and_bad_settings_error() {
        let ix = Bm25Index::new(docs(&["x", "y", "z"]), 1.2, 0.75).unwrap();
        let top = ix.top_k("nothing", 2);
        assert_eq!(top[0].id, "d0");
        assert_eq!(top[1].id, "d1");
        assert!(Bm25Index::new(docs(&["x"]), 1.2, 1.5).is_err());
        assert!(Bm25Index::new(vec![], 1.2, 0.75).is_err());
    }

    #[test]
    fn recipe_block_deserialises_and_rejects_typos() {
        let r: Box<dyn Retriever> = serde_json::from_str(
            r#"{"type": "bm25", "corpus": {"facts": {"entities": 3}}, "k1": 1.2, "b": 0.75}"#,
        )
        .unwrap();
        let hits = r.retrieve(None, &["what is the capital of x?"], 2).unwrap();
        assert_eq!(hits[0].len(), 2);
        let err = serde_json::from_str::<Box<dyn Retriever>>(r#"{"type": "bm25", "k2": 1.0}"#);
        assert!(err.is_err());
    }
}
