//! Shared set-up of the benches: the quickstart's task and policy shape.

/// The allocator of the `foil` binary (crates/foil/src/main.rs), so the benches time what
/// users run; `--no-default-features` measures glibc's malloc instead.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use foil_core::policy::Policy;
use foil_core::{PolicyConfig, Task, TaskData};
use foil_data::Arithmetic;
use foil_models::TinyGpt;

/// The backends compared: `device:` strings.
pub const DEVICES: [&str; 2] = ["cpu-flex", "cpu-ndarray"];

/// The quickstart task.
pub fn task() -> TaskData {
    Arithmetic {
        train: 256,
        test: 64,
        ..Default::default()
    }
    .build(0)
    .unwrap()
}

/// The quickstart policy on `device`.
pub fn policy(task: &TaskData, device: &str) -> Box<dyn Policy> {
    let d = foil_core::backend::parse_device(device).unwrap();
    TinyGpt {
        d_model: 64,
        layers: 2,
        heads: 4,
        context: 48,
        mlp_ratio: 4,
        init_seed: 0,
        precision: Default::default(),
    }
    .build(task.tokenizer.vocab_size(), &d, 0)
    .unwrap()
}

/// The label of a device in bench names (`flex`, `ndarray`).
pub fn label(device: &str) -> &str {
    device.trim_start_matches("cpu-")
}

// ---------------------------------------------------------------------------------------
// Side-by-side configs with the PyTorch / TRL reference scripts in `scripts/bench/`
// (issue 7). Keep these numbers and the scripts' in step: `docs/benchmarks.md`.
// ---------------------------------------------------------------------------------------

/// The baseline GPT of `scripts/bench/torch_train_step.py` and `torch_generate.py`:
/// 4 layers, d 256, 4 heads, FFN 4d, 128 learned positions, vocabulary 512.
pub const BASE_GPT: TinyGpt = TinyGpt {
    d_model: 256,
    layers: 4,
    heads: 4,
    context: 128,
    mlp_ratio: 4,
    init_seed: 0,
    precision: foil_models::precision::Precision::F32,
};
/// Vocabulary of the baseline GPT.
pub const BASE_VOCAB: usize = 512;
/// Train step batch: rows × tokens per row.
pub const TRAIN_ROWS: usize = 16;
pub const TRAIN_LEN: usize = 128;
/// Generation: prompts, prompt tokens, new tokens per prompt.
pub const GEN_ROWS: usize = 16;
pub const GEN_PROMPT: usize = 64;
pub const GEN_NEW: usize = 64;

/// A tokenizer over `vocab` bare ids for the baseline GPT: text is space-separated ids,
/// id 0 pads, and no id ends a response, so every row generates exactly `max_tokens`
/// tokens, as the PyTorch loop does.
#[derive(Debug, Clone)]
pub struct IdTokenizer {
    pub vocab: usize,
}

impl foil_core::Tokenizer for IdTokenizer {
    fn vocab_size(&self) -> usize {
        self.vocab
    }
    fn encode(&self, text: &str) -> anyhow::Result<Vec<u32>> {
        text.split_whitespace()
            .map(|w| {
                let id: u32 = w.parse().map_err(|_| anyhow::anyhow!("not an id: {w:?}"))?;
                anyhow::ensure!((id as usize) < self.vocab, "id {id} ≥ vocab {}", self.vocab);
                Ok(id)
            })
            .collect()
    }
    fn decode(&self, ids: &[u32]) -> String {
        ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")
    }
    fn eos_id(&self) -> u32 {
        // never produced as an end: `is_eos` is false for every id
        self.vocab as u32
    }
    fn pad_id(&self) -> u32 {
        0
    }
    fn is_eos(&self, _id: u32) -> bool {
        false
    }
}

pub use foil::bench::random_ids;

/// The baseline GPT, randomly initialised, on `device` (`cpu` = flex).
pub fn base_gpt(device: &str) -> anyhow::Result<Box<dyn Policy>> {
    let d = foil_core::backend::parse_device(device)?;
    BASE_GPT.build(BASE_VOCAB, &d, 0)
}

/// The TRL GRPO baseline's model (`scripts/bench/trl_grpo_step.py`): Qwen2, hidden 128,
/// 4 layers, 4 heads, 2 KV heads, FFN 512, tied embeddings, `vocab` ids, 128 positions.
pub fn trl_qwen2_config(vocab: usize) -> serde_json::Value {
    serde_json::json!({
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "hidden_act": "silu",
        "hidden_size": 128,
        "intermediate_size": 512,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 128,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0,
        "tie_word_embeddings": true,
        "vocab_size": vocab,
        "pad_token_id": 0,
        "eos_token_id": 1,
        "use_sliding_window": false,
        "sliding_window": null,
        "torch_dtype": "float32"
    })
}

/// Writes a randomly initialised Qwen2 of [`trl_qwen2_config`] into `dir` as a Hugging
/// Face directory (config.json + model.safetensors), the way foil's `hf` part reads one.
pub fn write_random_qwen2(dir: &std::path::Path, vocab: usize) -> anyhow::Result<()> {
    use foil_models::hf::{HfConfig, HfDecoder, weights};
    let json = trl_qwen2_config(vocab);
    let config = HfConfig::from_json(&json)?;
    let device = foil_core::backend::parse_device("cpu")?;
    let model = HfDecoder::<foil_core::backend::B>::init(&config, 128, &device);
    std::fs::write(dir.join("config.json"), serde_json::to_vec_pretty(&json)?)?;
    weights::save_safetensors(&model, &dir.join("model.safetensors"))
}

/// One GRPO step on the TRL baseline's config, composed from foil's real parts the way
/// the `rl` stage composes them (`crates/foil-trainers/src/rl.rs`: behaviour snapshot →
/// sample → verify → estimate → pack → reference log-probs → objective → step; with one
/// update per batch, rl computes no separate π_old pass), without the run-directory
/// bookkeeping (metrics file, checkpoints, progress bar). Shared by the `grpo_step` bench
/// and the `grpo_phases` example, which times its phases.
pub struct GrpoStep {
    task: TaskData,
    policy: Box<dyn Policy>,
    reference: Box<dyn foil_core::InferenceModel>,
    sampler: Box<dyn foil_core::Sampler>,
    verifier: Box<dyn foil_core::Verifier>,
    advantage: Box<dyn foil_core::AdvantageEstimator>,
    objective: Box<dyn foil_core::Objective>,
    step: usize,
    _dir: tempfile::TempDir,
}

/// TRL's vocabulary size in the reference script (19 characters + pad + eos).
pub const TRL_VOCAB: usize = 21;
/// Prompts per GRPO step (each sampled [`GRPO_GROUP`] times).
pub const GRPO_PROMPTS: usize = 2;
/// Completions per prompt.
pub const GRPO_GROUP: usize = 8;

fn part<T: ?Sized>(v: serde_json::Value) -> Box<T>
where
    Box<T>: serde::de::DeserializeOwned,
{
    serde_json::from_value(v).expect("a valid part")
}

/// The TRL baseline's task and model: character-level `a+b` arithmetic ("Q:a+b=" with a,
/// b in 0..=99, as the TRL script's problems) and a random-init Qwen2 of
/// [`trl_qwen2_config`] on the CPU, read through foil's `hf` part from a temporary Hugging
/// Face directory (kept as long as this lives).
pub struct TrlSetup {
    pub task: TaskData,
    pub policy: Box<dyn Policy>,
    _dir: tempfile::TempDir,
}

impl TrlSetup {
    pub fn new() -> anyhow::Result<Self> {
        foil::link_all();
        let task = Arithmetic {
            min_operands: 2,
            max_operands: 2,
            max_operand: 99,
            ops: "+".into(),
            modulus: 1000,
            train: 256,
            test: 16,
            ..Default::default()
        }
        .build(0)?;
        let vocab = task.tokenizer.vocab_size().max(TRL_VOCAB);
        let dir = tempfile::tempdir()?;
        write_random_qwen2(dir.path(), vocab)?;
        let device = foil_core::backend::parse_device("cpu")?;
        let config: Box<dyn PolicyConfig> =
            part(serde_json::json!({"type": "hf", "path": dir.path(), "context": 128}));
        let policy = config.build(vocab, &device, 0)?;
        Ok(Self {
            task,
            policy,
            _dir: dir,
        })
    }

    /// The TRL baseline's sampler: `local`, 8 completions per prompt of ≤ 16 tokens at
    /// temperature 1, `threads` row groups (0 = one per core).
    pub fn sampler(threads: usize) -> Box<dyn foil_core::Sampler> {
        part(serde_json::json!({
            "type": "local", "n": GRPO_GROUP, "temperature": 1.0, "max_tokens": 16,
            "threads": threads
        }))
    }
}

/// This process's minor page faults so far (`/proc/self/stat`, field 10; 0 elsewhere).
pub fn minor_faults() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // fields after the command name, which is in parentheses
            let rest = s.rsplit_once(')')?.1;
            rest.split_whitespace().nth(7)?.parse().ok()
        })
        .unwrap_or(0)
}

impl GrpoStep {
    /// [`TrlSetup`]'s task and Qwen2, 2 prompts × 8 completions of ≤ 16 tokens at
    /// temperature 1, rewarded by the `numeric` verifier, `grpo` advantages (std scale),
    /// `ppo_clip` + `kl` (k3, β = 0.04) against the stage-start reference, AdamW (lr 1e-5).
    pub fn new() -> anyhow::Result<Self> {
        let TrlSetup {
            task,
            mut policy,
            _dir: dir,
        } = TrlSetup::new()?;
        policy.reset_optimizer(&foil_core::policy::OptimizerConfig::adamw(1e-5));
        let reference = policy.inference();
        Ok(Self {
            task,
            policy,
            reference,
            sampler: TrlSetup::sampler(0),
            verifier: part(serde_json::json!({"type": "numeric"})),
            advantage: part(serde_json::json!({"type": "grpo", "scale": "std"})),
            objective: part(serde_json::json!({
                "type": "sum",
                "terms": [
                    {"type": "ppo_clip", "eps_low": 0.2, "eps_high": 0.2, "aggregate": "token_mean"},
                    {"type": "kl", "coef": 0.04, "estimator": "k3"}
                ]
            })),
            step: 0,
            _dir: dir,
        })
    }

    /// Runs one step; `mark(phase)` is called as each phase ends (`snapshot`, `sample`,
    /// `score`, `pack`, `reference`, `forward`, `loss`, `step`).
    pub fn run(&mut self, mut mark: impl FnMut(&'static str)) -> anyhow::Result<()> {
        use foil_core::batch::{HostPolicyBatch, to_vec};
        use foil_core::{PolicyOutput, ScoredGroup};
        let tok = self.task.tokenizer.as_ref();
        let lo = (self.step * GRPO_PROMPTS) % (self.task.train.len() - GRPO_PROMPTS);
        let problems = &self.task.train[lo..lo + GRPO_PROMPTS];
        self.step += 1;
        let behaviour = self.policy.inference();
        mark("snapshot");
        let groups = self
            .sampler
            .sample(behaviour.as_ref(), tok, problems, self.step as u64)?;
        // one update per batch: π_old = sg[π_θ], the snapshot is done with (as in rl.rs)
        drop(behaviour);
        mark("sample");
        let scored: Vec<ScoredGroup> = groups
            .into_iter()
            .map(|g| ScoredGroup::verified(g, self.verifier.as_ref()))
            .collect();
        let credits = self.advantage.estimate(&scored)?;
        mark("score");
        let prompts = scored
            .iter()
            .map(|g| tok.encode_prompt(&g.group.problem.prompt))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut rows: Vec<(&[u32], &[u32], Vec<f32>)> = Vec::new();
        for ((g, cs), p) in scored.iter().zip(&credits).zip(&prompts) {
            for (c, credit) in g.group.completions.iter().zip(cs) {
                if let Some(adv) = credit.per_token(c.tokens.len())
                    && !c.tokens.is_empty()
                {
                    rows.push((p, &c.tokens, adv));
                }
            }
        }
        let host = HostPolicyBatch::new(&rows, tok.pad_id());
        let mut batch = host.to_device(&self.policy.device(), self.sampler.max_tokens());
        mark("pack");
        // one update per batch (ppo_epochs 1, mini_batches 1): like rl.rs, no π_old pass;
        // the objective uses π_old = sg[π_θ]
        if self.objective.needs_reference() {
            batch.ref_logprobs = Some(foil_trainers::train_step::frozen_logprobs(
                self.reference.as_ref(),
                &host,
                &batch,
            ));
        }
        mark("reference");
        let logprobs = self
            .policy
            .token_logprobs(&batch.input, batch.targets.clone());
        mark("forward");
        let loss = self.objective.loss(
            &batch,
            &PolicyOutput {
                logprobs,
                entropy: None,
            },
        )?;
        anyhow::ensure!(to_vec(loss.value.clone())[0].is_finite(), "a finite loss");
        mark("loss");
        self.policy.step(loss.value, 1e-5)?;
        mark("step");
        Ok(())
    }
}
