//! `guard`: GUARD's generation-time unlearning as one logits processor (methods.md §12;
//! GUARD, arXiv May 2025, id not verified; details [recon from OpenReview reviews + a
//! third-party re-implementation]).
//!
//! Per prompt:
//! 1. classify: `p_forget = σ(w·x(prompt) + b)` ([`super::classifier`], trained once from
//!    the forget and retain prompts of `forget_path`); not flagged (`p ≤ threshold`) →
//!    the prompt decodes normally;
//! 2. retrieve `a*` = the answer of the stored forget prompt nearest to the prompt (cosine
//!    of the same features);
//! 3. decode with `z_t ← z_t − P_hard(t) − P_soft(t)`: `P_hard = ∞` when the generated
//!    suffix followed by `t` completes a token n-gram (`min_n..=max_n`, match ratio `β`) of
//!    `a*` ([`super::forbidden_sequences`]); `P_soft = λ·s(t)`, pruned at `s(t) ≥ δ`, with
//!    `s` the similarity of the current word to the words of `a*`
//!    ([`super::similarity_penalty`]; `soft: null` turns it off).
//!
//! `forget_path`: JSONL, one `{"prompt": …, "answer": …, "forget": true|false}` per line;
//! `forget: false` lines are retain prompts (the classifier's negatives; their answers are
//! unused). Relative paths are read from the working directory.

use std::sync::{Arc, OnceLock};

use anyhow::Context;
use foil_core::{LogitProcessor, PromptProcessor, Tokenizer, register_part};
use serde::{Deserialize, Serialize};

use super::classifier::{ClassifierOptions, Features, PromptClassifier, dot, features};
use super::forbidden_sequences::{HardBlock, Trie};
use super::similarity_penalty::{SoftOptions, SoftPenalty, TextCache, words};

/// One line of the forget file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ForgetRow {
    pub prompt: String,
    pub answer: String,
    pub forget: bool,
}

/// Reads a forget file (errors name the file and line).
pub fn read_forget_file(path: &str) -> anyhow::Result<Vec<ForgetRow>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("guard: cannot read forget_path `{path}`"))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        rows.push(
            serde_json::from_str::<ForgetRow>(line)
                .with_context(|| format!("guard: {path} line {}", i + 1))?,
        );
    }
    Ok(rows)
}

/// What `prepare` builds once.
#[derive(Debug)]
pub struct Trained {
    pub classifier: PromptClassifier,
    /// Forget prompts' features and their answers.
    pub forget: Vec<(Features, String)>,
}

#[derive(Default)]
struct Cache(OnceLock<Arc<Trained>>);
impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}",
            if self.0.get().is_some() {
                "trained"
            } else {
                "untrained"
            }
        )
    }
}

/// Recipe part: `{type: guard, forget_path: data-samples/guard_facts.jsonl}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Guard {
    /// JSONL of `{prompt, answer, forget}` (see the module doc).
    pub forget_path: String,
    /// Flag a prompt when `p_forget` exceeds this.
    pub threshold: f32,
    pub classifier: ClassifierOptions,
    /// Shortest forbidden token n-gram of `a*`.
    pub min_n: usize,
    /// Longest forbidden token n-gram of `a*`.
    pub max_n: usize,
    /// Trie match ratio β ∈ (0, 1].
    pub beta: f32,
    /// The soft matcher (`null` = hard trie only).
    pub soft: Option<SoftOptions>,
    #[serde(skip)]
    trained: Cache,
    #[serde(skip)]
    texts: TextCache,
}

impl Default for Guard {
    fn default() -> Self {
        Self {
            forget_path: String::new(),
            threshold: 0.5,
            classifier: ClassifierOptions::default(),
            min_n: 2,
            max_n: 5,
            beta: 1.0,
            soft: Some(SoftOptions::default()),
            trained: Cache::default(),
            texts: TextCache::default(),
        }
    }
}

register_part!(
    LogitProcessor,
    "guard",
    Guard,
    "GUARD generation-time unlearning: prompt classifier → retrieve the forget answer → trie block + similarity penalty"
);

/// Runs several per-prompt processors in order.
#[derive(Debug)]
struct Chain(Vec<Arc<dyn PromptProcessor>>);
impl PromptProcessor for Chain {
    fn process(&self, generated: &[u32], logits: &mut [f32]) {
        for p in &self.0 {
            p.process(generated, logits);
        }
    }
}

impl Guard {
    /// Trains from `rows` (instead of reading `forget_path`); what `prepare` does after
    /// reading the file.
    pub fn train_from(&self, rows: &[ForgetRow]) -> anyhow::Result<Arc<Trained>> {
        if let Some(t) = self.trained.0.get() {
            return Ok(t.clone());
        }
        let examples: Vec<(&str, bool)> =
            rows.iter().map(|r| (r.prompt.as_str(), r.forget)).collect();
        let classifier = PromptClassifier::train(&examples, &self.classifier)?;
        let forget = rows
            .iter()
            .filter(|r| r.forget)
            .map(|r| {
                (
                    features(
                        &r.prompt,
                        self.classifier.ngram_max,
                        self.classifier.dim_bits,
                    ),
                    r.answer.clone(),
                )
            })
            .collect();
        let t = Arc::new(Trained { classifier, forget });
        Ok(self.trained.0.get_or_init(|| t).clone())
    }

    fn state(&self) -> anyhow::Result<Arc<Trained>> {
        if let Some(t) = self.trained.0.get() {
            return Ok(t.clone());
        }
        anyhow::ensure!(!self.forget_path.is_empty(), "guard: forget_path is empty");
        let rows = read_forget_file(&self.forget_path)?;
        self.train_from(&rows)
            .with_context(|| format!("guard: training on {}", self.forget_path))
    }

    /// `p_forget` of a prompt.
    pub fn p_forget(&self, prompt: &str) -> anyhow::Result<f32> {
        Ok(self.state()?.classifier.prob(prompt))
    }

    /// The retrieved forget answer `a*` for a prompt.
    pub fn retrieve(&self, prompt: &str) -> anyhow::Result<String> {
        let t = self.state()?;
        let x = features(prompt, self.classifier.ngram_max, self.classifier.dim_bits);
        t.forget
            .iter()
            .map(|(f, a)| (dot(&x, f), a))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, a)| a.clone())
            .context("guard: the forget file holds no forget row")
    }
}

#[typetag::serde(name = "guard")]
impl LogitProcessor for Guard {
    fn prepare(&self) -> anyhow::Result<()> {
        self.state().map(|_| ())
    }

    fn begin(
        &self,
        prompt: &str,
        tokenizer: &dyn Tokenizer,
    ) -> anyhow::Result<Option<Arc<dyn PromptProcessor>>> {
        if self.p_forget(prompt)? <= self.threshold {
            return Ok(None);
        }
        let answer = self.retrieve(prompt)?;
        let ids = tokenizer.encode(&answer)?;
        let trie = Trie::of_ngrams(&[ids], self.min_n, self.max_n, self.beta)?;
        let mut chain: Vec<Arc<dyn PromptProcessor>> = vec![Arc::new(HardBlock(Arc::new(trie)))];
        if let Some(opts) = &self.soft {
            chain.push(Arc::new(SoftPenalty::new(
                opts.clone(),
                &words(&answer),
                self.texts.get(tokenizer),
            )));
        }
        Ok(Some(Arc::new(Chain(chain))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<ForgetRow> {
        let r = |p: &str, a: &str, f| ForgetRow {
            prompt: p.into(),
            answer: a.into(),
            forget: f,
        };
        vec![
            r("who:zorbex=", "kelo", true),
            r("who:quilm=", "mura", true),
            r("who:anna=", "tisa", false),
            r("who:bert=", "poku", false),
            r("who:carla=", "neda", false),
        ]
    }

    #[test]
    fn flags_forget_prompts_and_retrieves_their_answer() {
        let g = Guard::default();
        g.train_from(&rows()).unwrap();
        assert!(g.p_forget("who:zorbex=").unwrap() > 0.5);
        assert!(g.p_forget("who:anna=").unwrap() < 0.5);
        assert_eq!(g.retrieve("who:zorbex=").unwrap(), "kelo");
        assert_eq!(g.retrieve("who:quilm=").unwrap(), "mura");
    }

    #[test]
    fn missing_file_is_an_error_naming_it() {
        let g = Guard {
            forget_path: "/nonexistent/forget.jsonl".into(),
            ..Guard::default()
        };
        let e = format!("{:#}", g.prepare().unwrap_err());
        assert!(e.contains("/nonexistent/forget.jsonl"), "{e}");
    }
}
