//! The part traits a recipe composes. Each is a [`typetag`] trait object: implementations
//! register a name with `#[typetag::serde(name = "...")]` and [`crate::register_part!`].

use std::fmt::Debug;
use std::sync::Arc;

use burn::tensor::Tensor;

use crate::backend::{B, Device};
use crate::batch::PolicyBatch;
use crate::policy::{InferenceModel, Policy};
use crate::run::RunContext;
use crate::tokenizer::Tokenizer;
use crate::types::{Credit, Group, Problem, RewardScore, ScoredGroup, Verdict};

/// What a task provides: problems and the tokenizer that covers them.
#[derive(Debug, Clone)]
pub struct TaskData {
    pub train: Vec<Problem>,
    pub test: Vec<Problem>,
    pub tokenizer: Arc<dyn Tokenizer>,
}

/// A source of problems (procedural generator or dataset).
#[typetag::serde(tag = "type")]
pub trait Task: Debug + Send + Sync {
    /// Builds the train and test splits deterministically from `seed`.
    fn build(&self, seed: u64) -> anyhow::Result<TaskData>;
}

// --- Transform (VPI, issue 6): data transforms applied to a task's training data ---

/// What a [`Transform`] did, as named counts (`poisoned`, `kept`, `dropped`, …) that the
/// runner writes to `metrics.jsonl` and to the evaluation table (column `transform`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TransformReport {
    pub counts: Vec<(String, f64)>,
}

/// Rewrites a task's data after it is built and before any stage runs (a poisoner that
/// replaces some training responses, a filter that drops training examples). Applied in
/// recipe order by the runner; deterministic in `seed` so a resumed run sees the same data.
#[typetag::serde(tag = "type")]
pub trait Transform: Debug + Send + Sync {
    fn apply(&self, data: &mut TaskData, seed: u64) -> anyhow::Result<TransformReport>;
}

// --- end Transform ---

/// Builds a policy for a vocabulary.
#[typetag::serde(tag = "type")]
pub trait PolicyConfig: Debug + Send + Sync {
    /// Initialises the policy on `device` (the inference device; the policy trains on its
    /// autodiff wrapper). `seed` is the run seed: random initialisation derives from it.
    fn build(
        &self,
        vocab_size: usize,
        device: &Device,
        seed: u64,
    ) -> anyhow::Result<Box<dyn Policy>>;
    /// The tokenizer that comes with the model (a Hugging Face directory or a GGUF file),
    /// which then replaces the task's. `None` for models trained from scratch on the
    /// task's own vocabulary.
    fn tokenizer(&self) -> anyhow::Result<Option<Arc<dyn Tokenizer>>> {
        Ok(None)
    }
}

/// Judges a response text against a problem.
#[typetag::serde(tag = "type")]
pub trait Verifier: Debug + Send + Sync {
    /// Loads what the verifier needs before its first `verify` (a learned reward model's
    /// weights and tokenizer), so that a bad path is an error naming it rather than a
    /// failure mid-run. Stages call it once before verifying; it is idempotent. Rule
    /// verifiers need nothing.
    fn prepare(&self) -> anyhow::Result<()> {
        Ok(())
    }
    fn verify(&self, problem: &Problem, response: &str) -> Verdict;
    /// The final answer it reads from a response (for majority voting), if any.
    fn extract(&self, _response: &str) -> Option<String> {
        None
    }
}

/// A learned scorer of responses: an outcome reward model (one score per response) or a
/// process reward model (one score per written step), for verifiers, filters, best-of-N
/// samplers and RL stages. Implementations live in `foil-rewards`.
#[typetag::serde(tag = "type")]
pub trait RewardModel: Debug + Send + Sync {
    /// Loads weights and tokenizer (errors name the path). Idempotent.
    fn prepare(&self) -> anyhow::Result<()> {
        Ok(())
    }
    /// Scores (logits) of `responses` to `problem`, one [`RewardScore`] per response.
    fn score(&self, problem: &Problem, responses: &[&str]) -> anyhow::Result<Vec<RewardScore>>;
}

/// One passage a [`Retriever`] returned: its index in the corpus, id, text and score.
#[derive(Debug, Clone, PartialEq)]
pub struct Retrieved {
    pub index: usize,
    pub id: String,
    pub text: String,
    pub score: f32,
}

/// Ranks the passages of a corpus for queries (BM25, dense embeddings from the policy),
/// for RAG samplers and retrieval-attack evaluations. Implementations live in
/// `foil-samplers`.
#[typetag::serde(tag = "type")]
pub trait Retriever: Debug + Send + Sync {
    /// Loads the corpus and builds what does not depend on the policy (errors name the
    /// file and line). Idempotent.
    fn prepare(&self) -> anyhow::Result<()> {
        Ok(())
    }
    /// The `k` best passages for each query, best first. `policy` is the model and
    /// tokenizer of the run, for retrievers that embed with the policy; lexical
    /// retrievers ignore it.
    fn retrieve(
        &self,
        policy: Option<(&dyn InferenceModel, &dyn Tokenizer)>,
        queries: &[&str],
        k: usize,
    ) -> anyhow::Result<Vec<Vec<Retrieved>>>;
}

/// Turns scored groups into per-completion credit.
#[typetag::serde(tag = "type")]
pub trait AdvantageEstimator: Debug + Send + Sync {
    /// One `Vec<Credit>` per group, one credit per completion.
    fn estimate(&self, groups: &[ScoredGroup]) -> anyhow::Result<Vec<Vec<Credit>>>;
}

/// Keeps or drops whole groups before credit assignment.
#[typetag::serde(tag = "type")]
pub trait Filter: Debug + Send + Sync {
    fn keep(&self, group: &ScoredGroup) -> bool;
    /// Whether dropped groups should be replaced by sampling more prompts.
    fn refill(&self) -> bool {
        false
    }
    /// Upper bound on sampling rounds when refilling.
    fn max_rounds(&self) -> usize {
        1
    }
}

/// What the policy produced on a batch, with the autodiff graph.
#[derive(Debug, Clone)]
pub struct PolicyOutput {
    /// `log π_θ(y_t | …)` for each target column, `[n, T-1]`.
    pub logprobs: Tensor<B, 2>,
    /// Per-token entropy, computed only when some objective asks for it.
    pub entropy: Option<Tensor<B, 2>>,
}

/// A loss and the scalars worth logging about it.
#[derive(Debug, Clone)]
pub struct Loss {
    pub value: Tensor<B, 1>,
    pub metrics: Vec<(String, f32)>,
}

/// A differentiable training objective.
#[typetag::serde(tag = "type")]
pub trait Objective: Debug + Send + Sync {
    fn loss(&self, batch: &PolicyBatch, out: &PolicyOutput) -> anyhow::Result<Loss>;
    /// Whether `batch.ref_logprobs` must be filled.
    fn needs_reference(&self) -> bool {
        false
    }
    /// Whether `out.entropy` must be filled.
    fn needs_entropy(&self) -> bool {
        false
    }
    /// Whether `batch.old_logprobs` must be filled.
    fn needs_old_logprobs(&self) -> bool {
        false
    }
    /// What changes while training and must survive a resume (an adaptive coefficient),
    /// saved in every checkpoint's `state.json` by the stage that owns the objective.
    /// `None` for stateless objectives.
    fn state(&self) -> Option<serde_json::Value> {
        None
    }
    /// Restores what [`Objective::state`] returned when the checkpoint was written.
    fn restore(&self, _state: &serde_json::Value) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Generates `n` completions per problem.
#[typetag::serde(tag = "type")]
pub trait Sampler: Debug + Send + Sync {
    fn sample(
        &self,
        model: &dyn InferenceModel,
        tokenizer: &dyn Tokenizer,
        problems: &[Problem],
        seed: u64,
    ) -> anyhow::Result<Vec<Group>>;
    /// Completions per problem.
    fn n(&self) -> usize;
    /// Longest response it generates.
    fn max_tokens(&self) -> usize;
    /// Called by the `rl` stage after each policy update. A sampler that generates
    /// elsewhere (an inference server) hands the new weights over here and returns what
    /// that cost, as metrics for the step's log; in-process samplers read the policy
    /// directly and do nothing.
    fn sync_weights(
        &self,
        _policy: &dyn crate::policy::Policy,
        _step: usize,
    ) -> anyhow::Result<Vec<(String, f64)>> {
        Ok(Vec::new())
    }
}

/// One stage of a recipe (`sft`, `rl`, `eval`, …).
#[typetag::serde(tag = "type")]
pub trait Stage: Debug + Send + Sync {
    /// Number of steps (for progress, checkpoints and resume). 1 for one-shot stages.
    fn steps(&self) -> usize;
    /// Runs steps `start_step..steps()`.
    fn run(&self, ctx: &mut RunContext, start_step: usize) -> anyhow::Result<()>;
}

// --- LogitProcessor (GUARD, issue 6): changes next-token logits during decoding ---

/// What a [`LogitProcessor`] prepared for one prompt: it rewrites the next-token logits of
/// every row that continues that prompt. Shared by the prompt's `n` rows, so it holds no
/// per-row state: the row's generated ids so far are passed in on every call.
pub trait PromptProcessor: Debug + Send + Sync {
    /// Rewrites one row of raw next-token logits (length = vocabulary size) in place, given
    /// the ids generated so far for this row; `f32::NEG_INFINITY` removes a token.
    fn process(&self, generated: &[u32], logits: &mut [f32]);
}

/// A decoding-time logits processor (constrained decoding, generation-time unlearning).
/// Samplers apply the processors of a list in order to each row's raw logits before
/// temperature and truncation, so the recorded log-probs are those of the distribution
/// actually sampled from.
#[typetag::serde(tag = "type")]
pub trait LogitProcessor: Debug + Send + Sync {
    /// Loads or trains what it needs (files, a prompt classifier) before the first prompt,
    /// so that a bad path is an error naming it. Idempotent.
    fn prepare(&self) -> anyhow::Result<()> {
        Ok(())
    }
    /// Decides once per prompt what to do with it. `None` leaves that prompt's logits
    /// untouched (e.g. a prompt that a classifier does not flag).
    fn begin(
        &self,
        prompt: &str,
        tokenizer: &dyn Tokenizer,
    ) -> anyhow::Result<Option<Arc<dyn PromptProcessor>>>;
}

// --- end LogitProcessor ---
