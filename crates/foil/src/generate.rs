//! `foil generate`: sample completions from any policy (Hugging Face directory, GGUF
//! file, run or checkpoint) with the same `local` sampler that RL rollouts use.

use std::path::PathBuf;
use std::time::Instant;

use foil_core::Sampler;
use foil_core::backend::open_device;
use foil_core::types::{Finish, Problem};
use foil_samplers::Local;
use serde::Serialize;

use crate::load::inference_model;
pub use foil_models::hf::policy::Dtype;

/// Settings of one `foil generate` call.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub policy: PathBuf,
    pub prompts: Vec<String>,
    pub max_tokens: usize,
    /// 0 = greedy.
    pub temperature: f32,
    pub top_p: f32,
    /// Completions per prompt.
    pub n: usize,
    /// `Some(system)`: format prompts with the chat template.
    pub chat: Option<Option<String>>,
    pub device: String,
    pub seed: u64,
    /// Run the generation once untimed before the timed one.
    pub warmup: bool,
    /// Parameter dtype of a pretrained model (`bf16` on GPUs).
    pub dtype: Dtype,
}

/// One completion.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Generated {
    pub prompt: String,
    pub prompt_token_ids: Vec<u32>,
    pub token_ids: Vec<u32>,
    pub text: String,
    pub finish: Finish,
}

/// Completions and how long generation took.
#[derive(Debug, Clone)]
pub struct GenerateReport {
    pub outputs: Vec<Generated>,
    pub load_seconds: f64,
    pub generate_seconds: f64,
}

impl GenerateReport {
    /// Generated tokens per second of generation time.
    pub fn tokens_per_second(&self) -> f64 {
        let tokens: usize = self.outputs.iter().map(|o| o.token_ids.len()).sum();
        tokens as f64 / self.generate_seconds.max(1e-9)
    }
}

pub fn generate(opts: &GenerateOptions) -> anyhow::Result<GenerateReport> {
    anyhow::ensure!(!opts.prompts.is_empty(), "give at least one --prompt");
    let device = open_device(&opts.device)?;
    let start = Instant::now();
    let (model, tokenizer) = inference_model(&opts.policy, &device, opts.chat.clone(), opts.dtype)?;
    let load_seconds = start.elapsed().as_secs_f64();
    let sampler = Local {
        n: opts.n.max(1),
        temperature: opts.temperature,
        top_p: opts.top_p,
        max_tokens: opts.max_tokens,
        ..Local::default()
    };
    let problems: Vec<Problem> = opts
        .prompts
        .iter()
        .enumerate()
        .map(|(i, p)| Problem {
            id: format!("prompt-{i}"),
            prompt: p.clone(),
            solution: String::new(),
            answer: String::new(),
            difficulty: 0,
        })
        .collect();
    if opts.warmup {
        sampler.sample(model.as_ref(), tokenizer.as_ref(), &problems, opts.seed)?;
    }
    let start = Instant::now();
    let groups = sampler.sample(model.as_ref(), tokenizer.as_ref(), &problems, opts.seed)?;
    let generate_seconds = start.elapsed().as_secs_f64();
    let mut outputs = Vec::new();
    for g in groups {
        let prompt_ids = tokenizer.encode_prompt(&g.problem.prompt)?;
        for c in g.completions {
            outputs.push(Generated {
                prompt: g.problem.prompt.clone(),
                prompt_token_ids: prompt_ids.clone(),
                text: c.text,
                token_ids: c.tokens,
                finish: c.finish,
            });
        }
    }
    Ok(GenerateReport {
        outputs,
        load_seconds,
        generate_seconds,
    })
}
