//! `similarity_penalty`: GUARD's soft matcher — penalise tokens that make the current word
//! look like a forbidden word.
//!
//! GUARD (methods.md §12, [recon]) scores a candidate `t` by
//! `log π(t|·) − P_soft(t)` with `P_soft` from `s(t) = max_{f∈F} cos(E(w_t), E(f))`, `w_t` the
//! last word if `t` were appended, and prunes `t` when `s(t) ≥ δ` (δ = 0.5 [secondary]).
//! Here:
//!
//! ```text
//! z_t ← −∞            if s(t) ≥ δ
//! z_t ← z_t − λ·s(t)  otherwise
//! ```
//!
//! `E` is a **bag of character bigrams** of the word with a leading boundary mark `^`
//! (`kel` → {^k, ke, el}), not SBERT [recon: no sentence encoder here]; cosine of the count
//! vectors. λ (`lambda`) is not given by the sources [recon, default 2]. Words are maximal
//! runs of alphanumeric characters; `w_t` = the trailing word of the decoded generated text
//! followed by `t`'s text (if `t`'s text holds a separator, the part after the last one).
//! Words shorter than `min_chars` are not scored. Only the `candidates` highest logits are
//! scored (beam-like; 0 = all). Token texts are decoded one id at a time, once per
//! vocabulary.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use foil_core::{LogitProcessor, PromptProcessor, Tokenizer, register_part};
use serde::{Deserialize, Serialize};

/// Bag of character bigrams of `^word`.
pub fn embed(word: &str) -> HashMap<(char, char), f32> {
    let mut m = HashMap::new();
    let mut prev = '^';
    for c in word.chars() {
        *m.entry((prev, c)).or_insert(0.0) += 1.0;
        prev = c;
    }
    m
}

/// Cosine of two sparse count vectors (0 when either is empty).
pub fn cosine(a: &HashMap<(char, char), f32>, b: &HashMap<(char, char), f32>) -> f32 {
    let dot: f32 = a.iter().map(|(k, x)| x * b.get(k).unwrap_or(&0.0)).sum();
    let na: f32 = a.values().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.values().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

/// The words (alphanumeric runs) of a text.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// The options of the soft matcher (shared with `guard`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SoftOptions {
    /// Penalty scale λ.
    pub lambda: f32,
    /// Prune threshold δ on the similarity.
    pub delta: f32,
    /// Score only the this-many highest logits (0 = every token).
    pub candidates: usize,
    /// Words shorter than this are not scored.
    pub min_chars: usize,
}

impl Default for SoftOptions {
    fn default() -> Self {
        Self {
            lambda: 2.0,
            delta: 0.5,
            candidates: 32,
            min_chars: 2,
        }
    }
}

/// The per-prompt soft penalty against a set of forbidden words.
#[derive(Debug)]
pub struct SoftPenalty {
    pub opts: SoftOptions,
    forbidden: Vec<HashMap<(char, char), f32>>,
    token_texts: Arc<Vec<String>>,
}

impl SoftPenalty {
    pub fn new(
        opts: SoftOptions,
        forbidden_words: &[String],
        token_texts: Arc<Vec<String>>,
    ) -> Self {
        Self {
            forbidden: forbidden_words.iter().map(|w| embed(w)).collect(),
            opts,
            token_texts,
        }
    }

    /// `s = max_f cos(E(word), E(f))`, 0 for a word shorter than `min_chars`.
    pub fn similarity(&self, word: &str) -> f32 {
        if word.chars().count() < self.opts.min_chars.max(1) {
            return 0.0;
        }
        let e = embed(word);
        self.forbidden
            .iter()
            .map(|f| cosine(&e, f))
            .fold(0.0, f32::max)
    }
}

/// The trailing word of a text (empty if it ends with a separator).
fn trailing_word(text: &str) -> &str {
    let start = text
        .char_indices()
        .rev()
        .find(|(_, c)| !c.is_alphanumeric())
        .map(|(i, c)| i + c.len_utf8())
        .unwrap_or(0);
    &text[start..]
}

impl PromptProcessor for SoftPenalty {
    fn process(&self, generated: &[u32], logits: &mut [f32]) {
        if self.forbidden.is_empty() {
            return;
        }
        // the last few tokens are enough to find the current word
        let tail: String = generated[generated.len().saturating_sub(24)..]
            .iter()
            .map(|&id| self.token_texts.get(id as usize).map_or("", String::as_str))
            .collect();
        let word = trailing_word(&tail);
        let mut ids: Vec<usize> = (0..logits.len())
            .filter(|&i| logits[i].is_finite())
            .collect();
        if self.opts.candidates > 0 && ids.len() > self.opts.candidates {
            ids.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
            ids.truncate(self.opts.candidates);
        }
        for i in ids {
            let text = self.token_texts.get(i).map_or("", String::as_str);
            if text.is_empty() {
                continue; // end of sequence, padding: no word grows
            }
            let candidate = match text.rfind(|c: char| !c.is_alphanumeric()) {
                Some(_) => trailing_word(text).to_string(),
                None => format!("{word}{text}"),
            };
            let s = self.similarity(&candidate);
            if s >= self.opts.delta {
                logits[i] = f32::NEG_INFINITY;
            } else {
                logits[i] -= self.opts.lambda * s;
            }
        }
    }
}

/// Every id's text, decoded one id at a time (end-of-sequence and padding decode to "").
pub fn token_texts(tokenizer: &dyn Tokenizer) -> Vec<String> {
    (0..tokenizer.vocab_size() as u32)
        .map(|id| tokenizer.decode(&[id]))
        .collect()
}

/// A per-vocabulary cache of token texts.
#[derive(Debug, Clone, Default)]
pub struct TextCache(OnceLock<Arc<Vec<String>>>);

impl TextCache {
    /// The cached texts, decoded on first use (and again if the vocabulary size changed).
    pub fn get(&self, tokenizer: &dyn Tokenizer) -> Arc<Vec<String>> {
        let texts = self.0.get_or_init(|| Arc::new(token_texts(tokenizer)));
        if texts.len() == tokenizer.vocab_size() {
            texts.clone()
        } else {
            Arc::new(token_texts(tokenizer))
        }
    }
}

/// Recipe part: `{type: similarity_penalty, words: ["kelo"], lambda: 2.0, delta: 0.5}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SimilarityPenalty {
    /// Forbidden texts; their words form the forbidden set F.
    pub texts: Vec<String>,
    /// Penalty scale λ.
    pub lambda: f32,
    /// Prune threshold δ.
    pub delta: f32,
    /// Score only the this-many highest logits (0 = every token).
    pub candidates: usize,
    /// Words shorter than this are not scored.
    pub min_chars: usize,
    #[serde(skip)]
    cache: TextCacheEq,
}

/// [`TextCache`] that compares equal to any other (it is derived state).
#[derive(Debug, Clone, Default)]
struct TextCacheEq(TextCache);
impl PartialEq for TextCacheEq {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Default for SimilarityPenalty {
    fn default() -> Self {
        let o = SoftOptions::default();
        Self {
            texts: Vec::new(),
            lambda: o.lambda,
            delta: o.delta,
            candidates: o.candidates,
            min_chars: o.min_chars,
            cache: TextCacheEq::default(),
        }
    }
}

register_part!(
    LogitProcessor,
    "similarity_penalty",
    SimilarityPenalty,
    "GUARD's soft matcher: subtract λ·max cos(char-bigram bag of the current word, forbidden word), prune at ≥ δ"
);

#[typetag::serde(name = "similarity_penalty")]
impl LogitProcessor for SimilarityPenalty {
    fn begin(
        &self,
        _prompt: &str,
        tokenizer: &dyn Tokenizer,
    ) -> anyhow::Result<Option<Arc<dyn PromptProcessor>>> {
        let f: Vec<String> = self.texts.iter().flat_map(|t| words(t)).collect();
        if f.is_empty() {
            return Ok(None);
        }
        Ok(Some(Arc::new(SoftPenalty::new(
            SoftOptions {
                lambda: self.lambda,
                delta: self.delta,
                candidates: self.candidates,
                min_chars: self.min_chars,
            },
            &f,
            self.cache.0.get(tokenizer),
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedding_and_cosine_by_hand() {
        // E(kelo) = {^k, ke, el, lo}, E(kel) = {^k, ke, el}: dot 3, norms 2 and √3
        // → cos = 3 / (2·√3) = 0.8660
        let c = cosine(&embed("kelo"), &embed("kel"));
        assert!((c - 0.866_025).abs() < 1e-5, "{c}");
        // E(ke) = {^k, ke}: 2 / (2·√2) = 0.7071
        let half_root2 = 2.0f32.sqrt() / 2.0; // 0.7071
        assert!((cosine(&embed("kelo"), &embed("ke")) - half_root2).abs() < 1e-5);
        // no shared bigram
        assert_eq!(cosine(&embed("kelo"), &embed("abc")), 0.0);
        assert_eq!(trailing_word("A:ke"), "ke");
        assert_eq!(trailing_word("A:"), "");
    }

    #[test]
    fn penalty_arithmetic() {
        // vocabulary: 0 "", 1 "k", 2 "a", 3 "e", 4 ":"; F = {kelo}; λ = 2, δ = 0.8
        let texts = Arc::new(vec![
            "".into(),
            "k".into(),
            "a".into(),
            "e".into(),
            ":".into(),
        ]);
        let opts = SoftOptions {
            lambda: 2.0,
            delta: 0.8,
            candidates: 0,
            min_chars: 2,
        };
        let p = SoftPenalty::new(opts, &["kelo".to_string()], texts);
        // generated "k" (id 1); candidates make the word:
        //   "kk": {^k, kk} vs {^k,ke,el,lo}: 1/(√2·2) = 0.3536 → z − 0.7071
        //   "ka": same 0.3536                                  → z − 0.7071
        //   "ke": 0.7071 < 0.8                                 → z − 1.4142
        //   ":": a separator, word "" → not scored (0)
        let mut z = vec![0.0, 1.0, 1.0, 1.0, 1.0];
        p.process(&[1], &mut z);
        let r = 2.0f32.sqrt(); // λ·0.3536 = √2/2, λ·0.7071 = √2
        let want = [0.0, 1.0 - r / 2.0, 1.0 - r / 2.0, 1.0 - r, 1.0];
        for (g, w) in z.iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "{z:?}");
        }
        // generated "ke": "kee" {^k,ke,ee}: 2/(√3·2) = 0.577; "kea" the same;
        // "kek" the same; with δ = 0.5 all three are pruned
        let p = SoftPenalty::new(
            SoftOptions {
                delta: 0.5,
                candidates: 0,
                ..SoftOptions::default()
            },
            &["kelo".to_string()],
            p.token_texts.clone(),
        );
        let mut z = vec![0.0, 1.0, 1.0, 1.0, 1.0];
        p.process(&[1, 3], &mut z);
        assert!(z[1..4].iter().all(|x| *x == f32::NEG_INFINITY), "{z:?}");
        assert_eq!(z[4], 1.0);
    }
}
