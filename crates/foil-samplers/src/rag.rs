//! `rag`: retrieval-augmented sampling, the generation side of BadRAG (arXiv 2406.00083,
//! methods.md §5): a retriever's top-k passages are written into each prompt, then an
//! inner sampler continues it.
//!
//! ```text
//! for each problem x:   P = retriever.top_k(x.prompt, k)                (best first)
//!                       passages = ⧺_{i} passage_template[{rank} = i+1, {id}, {text} of P_i]
//!                       prompt'  = template[{passages} = passages, {prompt} = x.prompt]
//! groups = inner.sample(problems with prompt')   →  each group's problem is x again
//! ```
//!
//! Defaults: `k = 3`, `passage_template = "{text}\n"`, `template = "{passages}{prompt}"`.
//! The returned groups carry the original problem, so verifiers and reports see the
//! question as the task wrote it; the completions were generated from the augmented
//! prompt. An `rl` stage re-encodes `problem.prompt` when it builds the training batch,
//! so this sampler is for `eval` stages (and any stage that only reads the completions).
//! With a `policy_embedding` retriever the run's model and tokenizer do the embedding.

use foil_core::policy::InferenceModel;
use foil_core::{Group, Problem, Retrieved, Retriever, Sampler, Tokenizer, register_part};
use serde::{Deserialize, Serialize};

use crate::local::Local;
use crate::retriever_bm25::Bm25;

/// Recipe part: `sampler: {type: rag, k: 3, retriever: {type: bm25, corpus: {…}},
/// inner: {type: local, n: 8}}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rag {
    /// Passages per prompt.
    pub k: usize,
    pub retriever: Box<dyn Retriever>,
    /// How the passages and the prompt are joined (`{passages}`, `{prompt}`).
    pub template: String,
    /// How one passage is written (`{rank}` from 1, `{id}`, `{text}`).
    pub passage_template: String,
    /// Samples from the augmented prompts.
    pub inner: Box<dyn Sampler>,
}

impl Default for Rag {
    fn default() -> Self {
        Self {
            k: 3,
            retriever: Box::new(Bm25::default()),
            template: "{passages}{prompt}".into(),
            passage_template: "{text}\n".into(),
            inner: Box::new(Local::default()),
        }
    }
}

register_part!(
    Sampler,
    "rag",
    Rag,
    "retrieval-augmented sampling (BadRAG, arXiv 2406.00083): a retriever's top-k passages rendered into each prompt, then the inner sampler"
);

impl Rag {
    /// The augmented prompt for `prompt` and its retrieved passages.
    pub fn render(&self, prompt: &str, passages: &[Retrieved]) -> String {
        let joined: String = passages
            .iter()
            .enumerate()
            .map(|(i, p)| {
                self.passage_template
                    .replace("{rank}", &(i + 1).to_string())
                    .replace("{id}", &p.id)
                    .replace("{text}", &p.text)
            })
            .collect();
        // the prompt is substituted last, so braces inside passages are never expanded
        self.template
            .replace(
                "{passages}",
                &joined.replace("{prompt}", "\u{0}PROMPT\u{0}"),
            )
            .replace("{prompt}", prompt)
            .replace("\u{0}PROMPT\u{0}", "{prompt}")
    }

    fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.template.contains("{prompt}"),
            "rag: `template` must contain {{prompt}} (got {:?})",
            self.template
        );
        anyhow::ensure!(
            self.template.contains("{passages}"),
            "rag: `template` must contain {{passages}} (got {:?})",
            self.template
        );
        Ok(())
    }
}

#[typetag::serde(name = "rag")]
impl Sampler for Rag {
    fn sample(
        &self,
        model: &dyn InferenceModel,
        tokenizer: &dyn Tokenizer,
        problems: &[Problem],
        seed: u64,
    ) -> anyhow::Result<Vec<Group>> {
        self.check()?;
        self.retriever.prepare()?;
        let queries: Vec<&str> = problems.iter().map(|p| p.prompt.as_str()).collect();
        let hits = self
            .retriever
            .retrieve(Some((model, tokenizer)), &queries, self.k)?;
        anyhow::ensure!(
            hits.len() == problems.len(),
            "rag: the retriever answered {} of {} queries",
            hits.len(),
            problems.len()
        );
        let augmented: Vec<Problem> = problems
            .iter()
            .zip(&hits)
            .map(|(p, h)| Problem {
                prompt: self.render(&p.prompt, h),
                ..p.clone()
            })
            .collect();
        let groups = self.inner.sample(model, tokenizer, &augmented, seed)?;
        anyhow::ensure!(
            groups.len() == problems.len(),
            "rag: the inner sampler returned {} groups for {} problems",
            groups.len(),
            problems.len()
        );
        Ok(groups
            .into_iter()
            .zip(problems)
            .map(|(g, p)| Group {
                problem: p.clone(),
                completions: g.completions,
            })
            .collect())
    }

    fn n(&self) -> usize {
        self.inner.n()
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
    use foil_core::{Completion, Finish};

    fn hit(id: &str, text: &str) -> Retrieved {
        Retrieved {
            index: 0,
            id: id.into(),
            text: text.into(),
            score: 1.0,
        }
    }

    #[test]
    fn template_rendering() {
        let r = Rag {
            template: "Context:\n{passages}Q: {prompt}".into(),
            passage_template: "[{rank}] {text} ({id})\n".into(),
            ..Default::default()
        };
        let got = r.render(
            "what is 2+2?",
            &[
                hit("a", "two plus two is four."),
                hit("b", "{prompt} stays"),
            ],
        );
        assert_eq!(
            got,
            "Context:\n[1] two plus two is four. (a)\n[2] {prompt} stays (b)\nQ: what is 2+2?"
        );
        // defaults: each passage on its own line, then the prompt
        let d = Rag::default();
        assert_eq!(
            d.render("q", &[hit("a", "x."), hit("b", "y.")]),
            "x.\ny.\nq"
        );
        let bad = Rag {
            template: "{passages}".into(),
            ..Default::default()
        };
        assert!(bad.check().is_err());
    }

    /// Returns one completion per problem whose text is the prompt it was given.
    #[derive(Debug, Default, Serialize, Deserialize)]
    struct Echo;
    #[typetag::serde(name = "test_echo")]
    impl Sampler for Echo {
        fn sample(
            &self,
            _: &dyn InferenceModel,
            _: &dyn Tokenizer,
            problems: &[Problem],
            _: u64,
        ) -> anyhow::Result<Vec<Group>> {
            Ok(problems
                .iter()
                .map(|p| Group {
                    problem: p.clone(),
                    completions: vec![Completion {
                        tokens: vec![],
                        text: p.prompt.clone(),
                        logprobs: vec![],
                        entropies: vec![],
                        finish: Finish::Eos,
                    }],
                })
                .collect())
        }
        fn n(&self) -> usize {
            1
        }
        fn max_tokens(&self) -> usize {
            1
        }
    }

    #[test]
    fn inner_sees_retrieved_passages_and_groups_keep_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.jsonl");
        std::fs::write(
            &path,
            "{\"id\": \"x\", \"text\": \"zorbia has a capital.\"}\n{\"id\": \"y\", \"text\": \"rivers flow.\"}\n",
        )
        .unwrap();
        let yaml = format!(
            r#"{{"type": "rag", "k": 1, "retriever": {{"type": "bm25", "corpus": {{"path": {:?}}}}}, "inner": {{"type": "test_echo"}}}}"#,
            path.display().to_string()
        );
        let rag: Box<dyn Sampler> = serde_json::from_str(&yaml).unwrap();
        let problem = Problem {
            id: "p0".into(),
            prompt: "capital of zorbia?".into(),
            solution: String::new(),
            answer: "a".into(),
            difficulty: 0,
        };
        // the model is never called by Echo or bm25
        let tok = foil_data::char_tokenizer::CharTokenizer::new("abc").unwrap();
        let model = crate::testutil::tiny_model(tok.vocab_size(), 8);
        let groups = rag
            .sample(model.as_ref(), &tok, std::slice::from_ref(&problem), 0)
            .unwrap();
        assert_eq!(groups[0].problem, problem);
        assert_eq!(
            groups[0].completions[0].text,
            "zorbia has a capital.\ncapital of zorbia?"
        );
    }
}
