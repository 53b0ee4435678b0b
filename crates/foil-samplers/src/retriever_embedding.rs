//! `policy_embedding`: dense retrieval with embeddings taken from the policy itself, the
//! dense-retriever arm of the BadRAG experiment (arXiv 2406.00083, methods.md §5; the
//! paper attacks Contriever-style mean-pooled encoders [secondary]).
//!
//! `InferenceModel` exposes logits, not hidden states, so the embedding of a text is its
//! mean-pooled, per-position centred logit vector [recon]:
//!
//! ```text
//! z_t   = logits_t − mean_v(logits_t)          (a logit row is defined up to a shift)
//! e(x)  = (1/|x|) Σ_{t ≤ |x|} z_t  ∈ R^V       (mean over the text's tokens)
//! sim   = cos(e(q), e(p)) = e(q)·e(p) / (‖e(q)‖ ‖e(p)‖)     (0 when a norm is 0)
//! ```
//!
//! i.e. the mean next-token log-odds profile of the text under the policy, the
//! logits-only analogue of a mean-pooled encoder. Texts are encoded with the run's
//! tokenizer (`encode`, no special tokens) and cut to the model's context. Passage
//! embeddings depend on the weights, so they are recomputed at every `retrieve` call (the
//! policy may have changed under RL); the corpus itself is loaded once. An untrained
//! policy is not a trained retriever: the embeddings carry only what the language model
//! learnt about the text.

use std::sync::OnceLock;

use burn::tensor::Tensor;
use foil_core::backend::B;
use foil_core::batch::{SeqBatch, to_vec};
use foil_core::policy::InferenceModel;
use foil_core::{Retrieved, Retriever, Tokenizer, register_part};
use serde::{Deserialize, Serialize};

use crate::rag_corpus::{Corpus, Passage};
use crate::retriever_bm25::rank;

/// Recipe part: `retriever: {type: policy_embedding, corpus: {…}, batch_rows: 64}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyEmbedding {
    pub corpus: Corpus,
    /// Texts run through the model together.
    pub batch_rows: usize,
    #[serde(skip)]
    passages: OnceLock<Vec<Passage>>,
}

impl Default for PolicyEmbedding {
    fn default() -> Self {
        Self::new(Corpus::default())
    }
}

impl PolicyEmbedding {
    pub fn new(corpus: Corpus) -> Self {
        Self {
            corpus,
            batch_rows: 64,
            passages: OnceLock::new(),
        }
    }

    fn passages(&self) -> anyhow::Result<&Vec<Passage>> {
        if let Some(p) = self.passages.get() {
            return Ok(p);
        }
        let p = self.corpus.load()?;
        Ok(self.passages.get_or_init(|| p))
    }
}

register_part!(
    Retriever,
    "policy_embedding",
    PolicyEmbedding,
    "dense retrieval by cosine of the policy's mean-pooled centred logits over the text (BadRAG's dense arm, logits-only recon)"
);

/// Unit-norm embeddings of `texts` (see the module doc); `what` names them in errors.
pub fn embed(
    model: &dyn InferenceModel,
    tokenizer: &dyn Tokenizer,
    texts: &[&str],
    batch_rows: usize,
    what: &str,
) -> anyhow::Result<Vec<Vec<f32>>> {
    let ctx = model.context().max(1);
    let mut rows = Vec::with_capacity(texts.len());
    for (i, t) in texts.iter().enumerate() {
        let mut ids = tokenizer
            .encode(t)
            .map_err(|e| anyhow::anyhow!("policy_embedding: {what} {i} ({t:?}): {e}"))?;
        anyhow::ensure!(
            !ids.is_empty(),
            "policy_embedding: {what} {i} encodes to no tokens"
        );
        ids.truncate(ctx);
        rows.push(ids);
    }
    let device = model.device();
    let mut out = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(batch_rows.max(1)) {
        let batch = SeqBatch::left_padded(chunk, tokenizer.pad_id());
        let input = batch.to_input(&device);
        let logits: Tensor<B, 3> = model.forward(&input);
        let [n, t, v] = logits.dims();
        let centred = logits.clone() - logits.mean_dim(2); // [n, t, v]
        let mask: Tensor<B, 3> = input.key_valid.float().reshape([n, t, 1]);
        let summed = (centred * mask).sum_dim(1).reshape([n, v]);
        let host = to_vec(summed);
        for (r, ids) in chunk.iter().enumerate() {
            let mut e: Vec<f32> = host[r * v..(r + 1) * v]
                .iter()
                .map(|x| x / ids.len() as f32)
                .collect();
            normalise(&mut e);
            out.push(e);
        }
    }
    Ok(out)
}

fn normalise(e: &mut [f32]) {
    let norm = e.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 && norm.is_finite() {
        e.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Cosine similarity of two vectors (0 when either norm is 0).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

#[typetag::serde(name = "policy_embedding")]
impl Retriever for PolicyEmbedding {
    fn prepare(&self) -> anyhow::Result<()> {
        self.passages().map(|_| ())
    }

    fn retrieve(
        &self,
        policy: Option<(&dyn InferenceModel, &dyn Tokenizer)>,
        queries: &[&str],
        k: usize,
    ) -> anyhow::Result<Vec<Vec<Retrieved>>> {
        let Some((model, tokenizer)) = policy else {
            anyhow::bail!("policy_embedding: needs the policy (model and tokenizer) to embed with")
        };
        let passages = self.passages()?;
        let texts: Vec<&str> = passages.iter().map(|p| p.text.as_str()).collect();
        let pe = embed(model, tokenizer, &texts, self.batch_rows, "passage")?;
        let qe = embed(model, tokenizer, queries, self.batch_rows, "query")?;
        Ok(qe
            .iter()
            .map(|q| {
                let scores: Vec<f32> = pe.iter().map(|p| cosine(q, p)).collect();
                rank(passages, &scores, k)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_ranking_worked_by_hand() {
        // q = (1, 0); p0 = (0, 2): cos = 0; p1 = (3, 4): cos = 3/5 = 0.6;
        // p2 = (−1, 1): cos = −1/√2 = −0.707107; p3 = (0, 0): 0 by convention
        let q = [1.0, 0.0];
        let ps = [[0.0, 2.0], [3.0, 4.0], [-1.0, 1.0], [0.0, 0.0]];
        let s: Vec<f32> = ps.iter().map(|p| cosine(&q, p)).collect();
        assert!((s[1] - 0.6).abs() < 1e-6);
        assert!((s[2] + std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert_eq!(s[0], 0.0);
        assert_eq!(s[3], 0.0);
        let passages: Vec<Passage> = (0..4)
            .map(|i| Passage {
                id: format!("p{i}"),
                text: String::new(),
            })
            .collect();
        // ranking: p1 (0.6), then p0 and p3 tie at 0 in corpus order, then p2
        let ids: Vec<String> = rank(&passages, &s, 4).into_iter().map(|r| r.id).collect();
        assert_eq!(ids, ["p1", "p0", "p3", "p2"]);
    }

    #[test]
    fn a_passage_retrieves_itself_first_and_embeddings_are_batch_independent() {
        let corpus = Corpus {
            facts: Some(crate::rag_corpus::Facts {
                entities: 4,
                seed: 1,
            }),
            ..Default::default()
        };
        let passages = corpus.load().unwrap();
        let alphabet: String = {
            let mut cs: Vec<char> = passages.iter().flat_map(|p| p.text.chars()).collect();
            cs.sort();
            cs.dedup();
            cs.into_iter().collect()
        };
        let tok = foil_data::char_tokenizer::CharTokenizer::new(&alphabet).unwrap();
        let model = crate::testutil::tiny_model(tok.vocab_size(), 64);
        let r = PolicyEmbedding::new(corpus);
        let q = passages[5].text.as_str();
        let hits = r.retrieve(Some((model.as_ref(), &tok)), &[q], 3).unwrap();
        // the passage's own text has cosine 1 with itself
        assert_eq!(hits[0][0].id, passages[5].id);
        assert!((hits[0][0].score - 1.0).abs() < 1e-4, "{:?}", hits[0][0]);
        // left padding is masked: the same text alone or batched with longer ones embeds
        // the same
        let texts: Vec<&str> = passages.iter().map(|p| p.text.as_str()).collect();
        let all = embed(model.as_ref(), &tok, &texts, 64, "t").unwrap();
        let one = embed(model.as_ref(), &tok, &texts[5..6], 1, "t").unwrap();
        assert!(cosine(&all[5], &one[0]) > 0.9999);
        // no policy, no retrieval; a character outside the vocabulary names the query
        assert!(r.retrieve(None, &[q], 1).is_err());
        let err = r
            .retrieve(Some((model.as_ref(), &tok)), &["ZZZ"], 1)
            .unwrap_err();
        assert!(err.to_string().contains("query 0"), "{err}");
    }
}
