//! Opening "a policy" the way people name one on the command line: a Hugging Face model
//! directory, a GGUF file, a run directory (its newest checkpoint) or one checkpoint of a
//! run.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use foil_core::backend::{Device, inner_device};
use foil_core::checkpoint;
use foil_core::policy::{InferenceModel, Policy};
use foil_core::recipe::Recipe;
use foil_core::tokenizer::Tokenizer;
use foil_core::{PolicyConfig, Task};
use foil_models::hf::policy::{Dtype, Hf};
use foil_tokenizers::PromptFormat;

/// What a path on the command line turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyPath {
    /// A Hugging Face directory or a `.gguf` file.
    Pretrained(PathBuf),
    /// A checkpoint of a run: the run directory and the checkpoint directory.
    Checkpoint { run: PathBuf, checkpoint: PathBuf },
}

impl PolicyPath {
    pub fn resolve(path: &Path) -> anyhow::Result<Self> {
        if !path.exists() {
            bail!("{} does not exist", path.display());
        }
        if path.is_file() {
            return Ok(PolicyPath::Pretrained(path.to_path_buf()));
        }
        if path.join("config.json").exists() {
            return Ok(PolicyPath::Pretrained(path.to_path_buf()));
        }
        if path.join("recipe.yaml").exists() {
            let (ckpt, _) = checkpoint::latest(path)?.with_context(|| {
                format!("run {} has no complete checkpoint yet", path.display())
            })?;
            return Ok(PolicyPath::Checkpoint {
                run: path.to_path_buf(),
                checkpoint: ckpt,
            });
        }
        // runs/<name>/checkpoints/stageS-stepN
        if let Some(run) = path.parent().and_then(Path::parent)
            && run.join("recipe.yaml").exists()
        {
            return Ok(PolicyPath::Checkpoint {
                run: run.to_path_buf(),
                checkpoint: path.to_path_buf(),
            });
        }
        bail!(
            "{} is not a model directory (no config.json), a .gguf file, a run directory \
             (no recipe.yaml) or a run's checkpoint",
            path.display()
        )
    }
}

/// A trainable policy rebuilt from a run's recipe and checkpoint, with its tokenizer.
pub fn policy_from_checkpoint(
    run: &Path,
    ckpt: &Path,
    device: &Device,
) -> anyhow::Result<(Box<dyn Policy>, Arc<dyn Tokenizer>)> {
    let recipe = Recipe::load(&run.join("recipe.yaml"), &[])?;
    let config: Arc<dyn PolicyConfig> = Arc::from(recipe.policy);
    let tokenizer = match config.tokenizer()? {
        Some(t) => t,
        None => {
            let task: Box<dyn Task> = recipe.task;
            task.build(recipe.seed)
                .context("rebuilding the run's task for its tokenizer")?
                .tokenizer
        }
    };
    let mut policy = config.build(tokenizer.vocab_size(), device, recipe.seed)?;
    policy
        .load(ckpt)
        .with_context(|| format!("loading {}", ckpt.display()))?;
    Ok((policy, tokenizer))
}

/// A frozen model and its tokenizer, ready to sample from. `chat` renders prompts with
/// the model's chat template (pretrained models only; a run keeps its recipe's choice).
pub fn inference_model(
    path: &Path,
    device: &Device,
    chat: Option<Option<String>>,
    dtype: Dtype,
) -> anyhow::Result<(Box<dyn InferenceModel>, Arc<dyn Tokenizer>)> {
    match PolicyPath::resolve(path)? {
        PolicyPath::Pretrained(p) => {
            let hf = Hf {
                path: p,
                dtype,
                precision: Default::default(),
                context: None,
                prompt: match chat {
                    Some(system) => PromptFormat::Chat { system },
                    None => PromptFormat::Raw,
                },
                lora: None,
                init_seed: 0,
            };
            let tokenizer = hf.tokenizer()?.context("hf policies carry a tokenizer")?;
            Ok((hf.load_inference(&inner_device(device))?, tokenizer))
        }
        PolicyPath::Checkpoint { run, checkpoint } => {
            if chat.is_some() {
                bail!(
                    "--chat applies to pretrained models; a run's checkpoint formats prompts \
                     as its recipe says (policy.prompt)"
                );
            }
            let (policy, tokenizer) = policy_from_checkpoint(&run, &checkpoint, device)?;
            Ok((policy.inference(), tokenizer))
        }
    }
}
