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
