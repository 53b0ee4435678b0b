//! Recipe part `policy: {type: hf, path: DIR_OR_GGUF, dtype: f32, lora: {...}}`: a
//! pretrained Hugging Face decoder (a transformers directory, or a GGUF file) as a
//! trainable policy, with its own tokenizer and chat template.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use burn::module::{AutodiffModule, Module};
use burn::optim::AdamWConfig;
use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use foil_core::backend::{B as FB, Device, inner_device, materialize, train_device, with_seed};
use foil_core::batch::SeqInput;
use foil_core::policy::{DecodeCache, InferenceModel, OptimizerConfig, Policy};
use foil_core::tokenizer::Tokenizer;
use foil_core::{PolicyConfig, register_part};
use foil_tokenizers::{HfTokenizer, PromptFormat};

use super::config::HfConfig;
use super::decoder::{HfCache, HfDecoder};
use super::lora::LoraConfig;
use super::{gguf, gguf_export, weights};
use crate::host::decoder::HostDecoder;
use crate::host::{decode_tensors, prefill_tensors, use_host_decode};
use crate::trainable::{self, Adam};

/// Parameter dtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    #[default]
    F32,
    Bf16,
}

/// Recipe part: a pretrained decoder loaded from disk.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Hf {
    /// A Hugging Face model directory (config.json, *.safetensors, tokenizer.json, …) or a
    /// `.gguf` file.
    pub path: PathBuf,
    /// Parameter dtype (`bf16` needs a GPU backend).
    #[serde(default)]
    pub dtype: Dtype,
    /// Longest sequence (prompt + response); defaults to min(max_position_embeddings, 2048).
    #[serde(default)]
    pub context: Option<usize>,
    /// How problems' prompts reach the model: `raw` or `{chat: {system: ...}}`.
    #[serde(default)]
    pub prompt: PromptFormat,
    /// Low-rank adapters; the base is then frozen.
    #[serde(default)]
    pub lora: Option<LoraConfig>,
    /// Extra seed for adapter initialisation, mixed with the run seed.
    #[serde(default)]
    pub init_seed: u64,
}

impl Default for Hf {
    /// What `foil list` shows: the model `cargo xtask fetch smollm2` installs.
    fn default() -> Self {
        Self {
            path: PathBuf::from("models/SmolLM2-135M-Instruct.Q4_1.gguf"),
            dtype: Dtype::F32,
            context: None,
            prompt: PromptFormat::Raw,
            lora: None,
            init_seed: 0,
        }
    }
}

register_part!(
    PolicyConfig,
    "hf",
    Hf,
    "pretrained Llama / Qwen2 / Mistral / SmolLM decoder from a Hugging Face directory or a GGUF file, optional LoRA"
);

/// A checkpoint on disk in one of the two formats.
pub enum Source {
    Dir(PathBuf),
    Gguf(PathBuf),
}

impl Source {
    pub fn of(path: &Path) -> anyhow::Result<Self> {
        if path.is_dir() {
            Ok(Source::Dir(path.to_path_buf()))
        } else if path.extension().is_some_and(|e| e == "gguf") && path.is_file() {
            Ok(Source::Gguf(path.to_path_buf()))
        } else if !path.exists() {
            anyhow::bail!(
                "{} does not exist (a Hugging Face model directory or a .gguf file; \
                 `cargo xtask fetch smollm2` downloads SmolLM2-135M-Instruct into models/)",
                path.display()
            )
        } else {
            anyhow::bail!(
                "{} is neither a model directory nor a .gguf file",
                path.display()
            )
        }
    }

    pub fn config(&self) -> anyhow::Result<HfConfig> {
        match self {
            Source::Dir(d) => HfConfig::from_dir(d),
            Source::Gguf(f) => gguf::config(&foil_gguf::GgufFile::open(f)?),
        }
    }

    pub fn tokenizer(&self) -> anyhow::Result<HfTokenizer> {
        match self {
            Source::Dir(d) => HfTokenizer::from_dir(d),
            Source::Gguf(f) => {
                HfTokenizer::from_gguf_vocab(&gguf::vocab(&foil_gguf::GgufFile::open(f)?)?)
            }
        }
    }

    /// A decoder on `device` with the checkpoint's weights.
    pub fn load(
        &self,
        config: &HfConfig,
        context: usize,
        device: &Device,
    ) -> anyhow::Result<HfDecoder<FB>> {
        let model = HfDecoder::<FB>::init(config, context, device);
        match self {
            Source::Dir(d) => weights::load_safetensors(model, &weights::checkpoint_files(d)?),
            Source::Gguf(f) => {
                let file = foil_gguf::GgufFile::open(f)?;
                let bytes = gguf::to_safetensors(&file, config)?;
                weights::load_safetensors_bytes(model, bytes, &f.display().to_string())
            }
        }
    }
}

impl Hf {
    fn context(&self, config: &HfConfig) -> anyhow::Result<usize> {
        let context = self
            .context
            .unwrap_or(config.max_position_embeddings.min(2048));
        anyhow::ensure!(context > 1, "hf: context must be at least 2");
        if let Some(w) = config.sliding_window {
            anyhow::ensure!(
                context <= w,
                "hf: context {context} exceeds the model's sliding_window {w}; sliding-window \
                 attention is not implemented, so set `context` to at most {w}"
            );
        }
        Ok(context)
    }

    /// Loads the model (no adapters) for inference on `device`.
    pub fn load_inference(&self, device: &Device) -> anyhow::Result<Box<dyn InferenceModel>> {
        let source = Source::of(&self.path)?;
        let config = source.config()?;
        let mut model = source.load(&config, self.context(&config)?, &inner_device(device))?;
        if self.dtype == Dtype::Bf16 {
            anyhow::ensure!(
                foil_core::backend::is_gpu(device),
                "hf: dtype bf16 is only supported on a GPU device; use dtype: f32 on the CPU"
            );
            model = super::cast::to_dtype(model, burn::tensor::DType::BF16);
        }
        Ok(Box::new(HfInference::new(model, inner_device(device))))
    }
}

#[typetag::serde(name = "hf")]
impl PolicyConfig for Hf {
    fn build(
        &self,
        vocab_size: usize,
        device: &Device,
        seed: u64,
    ) -> anyhow::Result<Box<dyn Policy>> {
        anyhow::ensure!(
            self.dtype == Dtype::F32 || foil_core::backend::is_gpu(device),
            "hf: dtype bf16 is only supported on a GPU device; use dtype: f32 on the CPU"
        );
        let source = Source::of(&self.path)?;
        let config = source.config()?;
        anyhow::ensure!(
            vocab_size <= config.vocab_size,
            "hf: the tokenizer has {vocab_size} ids but the model's vocab_size is {}",
            config.vocab_size
        );
        let context = self.context(&config)?;
        let train = train_device(device);
        let mut model = source
            .load(&config, context, &train)
            .with_context(|| format!("loading weights from {}", self.path.display()))?;
        if let Some(lora) = &self.lora {
            lora.validate()?;
            let init = foil_core::rng::derive(seed, &[0x10a4, self.init_seed]);
            model = with_seed(&train, init, || materialize(model.with_lora(lora, &train)));
        }
        if self.dtype == Dtype::Bf16 {
            model = super::cast::to_dtype(model, burn::tensor::DType::BF16);
        }
        Ok(Box::new(HfPolicy {
            model: Some(model),
            optim: AdamWConfig::new().init(),
            device: train,
            config,
            path: self.path.clone(),
            gguf_tokenizer: std::sync::OnceLock::new(),
        }))
    }

    fn tokenizer(&self) -> anyhow::Result<Option<Arc<dyn Tokenizer>>> {
        let source = Source::of(&self.path)?;
        let tok = source
            .tokenizer()
            .with_context(|| format!("loading the tokenizer of {}", self.path.display()))?
            .with_prompt_format(self.prompt.clone())?;
        Ok(Some(Arc::new(tok)))
    }
}

/// The trainable decoder with its AdamW state.
pub struct HfPolicy {
    model: Option<HfDecoder<FB>>,
    optim: Adam<HfDecoder<FB>>,
    device: Device,
    config: HfConfig,
    /// Where the weights came from (for the tokenizer files of an export).
    path: PathBuf,
    /// The `tokenizer.*` GGUF metadata of a GGUF export, built once (copied from a GGUF
    /// source or built from `tokenizer.json`), so repeated weight syncs skip it.
    gguf_tokenizer: std::sync::OnceLock<Vec<(String, foil_gguf::Value)>>,
}

impl HfPolicy {
    fn model(&self) -> &HfDecoder<FB> {
        self.model.as_ref().expect("model present between steps")
    }

    /// The decoder's configuration.
    pub fn config(&self) -> &HfConfig {
        &self.config
    }

    /// The tokenizer metadata a GGUF export carries (see [`gguf_export`]).
    fn gguf_tokenizer(&self) -> anyhow::Result<&[(String, foil_gguf::Value)]> {
        if let Some(m) = self.gguf_tokenizer.get() {
            return Ok(m);
        }
        let m = match Source::of(&self.path)? {
            Source::Gguf(f) => {
                gguf_export::tokenizer_metadata_from_gguf(&foil_gguf::GgufFile::open(&f)?)
            }
            Source::Dir(d) => {
                gguf_export::tokenizer_metadata_from_dir(&d, &self.config)?.unwrap_or_default()
            }
        };
        Ok(self.gguf_tokenizer.get_or_init(|| m))
    }
}

impl Policy for HfPolicy {
    fn forward(&self, input: &SeqInput) -> Tensor<FB, 3> {
        self.model().forward(
            input.tokens.clone(),
            input.positions.clone(),
            input.key_valid.clone(),
        )
    }

    fn step(&mut self, loss: Tensor<FB, 1>, lr: f64) -> anyhow::Result<()> {
        let model = self.model.take().expect("model present between steps");
        self.model = Some(trainable::step(model, &mut self.optim, loss, lr));
        Ok(())
    }

    fn step_synced(
        &mut self,
        loss: Tensor<FB, 1>,
        lr: f64,
        sync: &mut dyn foil_core::grad_sync::GradientSync,
    ) -> anyhow::Result<()> {
        let grads = trainable::gradients(self.model(), loss);
        trainable::step_synced(&mut self.model, &mut self.optim, grads, lr, sync)
    }

    fn reset_optimizer(&mut self, config: &OptimizerConfig) {
        self.optim = trainable::adamw(config);
    }

    fn inference(&self) -> Box<dyn InferenceModel> {
        Box::new(HfInference::new(
            self.model().valid(),
            inner_device(&self.device),
        ))
    }

    fn reference(&self) -> Option<Box<dyn InferenceModel>> {
        self.model().has_lora().then(|| {
            Box::new(HfInference::new(
                self.model().without_lora().valid(),
                inner_device(&self.device),
            )) as Box<dyn InferenceModel>
        })
    }

    fn save(&self, dir: &Path) -> anyhow::Result<()> {
        trainable::save(self.model(), &self.optim, dir, "hf")
    }

    fn load(&mut self, dir: &Path) -> anyhow::Result<()> {
        let model = self.model.take().expect("model present");
        let optim = std::mem::replace(&mut self.optim, AdamWConfig::new().init());
        let (model, optim) = trainable::load(model, optim, dir, &self.device, "hf")?;
        self.model = Some(model);
        self.optim = optim;
        Ok(())
    }

    fn num_params(&self) -> usize {
        Module::<FB>::num_params(self.model())
    }

    fn device(&self) -> Device {
        self.device.clone()
    }

    fn export(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let merged = self.model().valid().merged();
        weights::save_safetensors(&merged, &dir.join("model.safetensors"))?;
        std::fs::write(
            dir.join("config.json"),
            serde_json::to_string_pretty(&self.config.to_json())?,
        )?;
        match Source::of(&self.path)? {
            Source::Dir(src) => {
                for f in [
                    "tokenizer.json",
                    "tokenizer_config.json",
                    "generation_config.json",
                    "special_tokens_map.json",
                    "chat_template.jinja",
                ] {
                    if src.join(f).exists() {
                        std::fs::copy(src.join(f), dir.join(f))
                            .with_context(|| format!("copying {f}"))?;
                    }
                }
            }
            gguf @ Source::Gguf(_) => save_tokenizer(&gguf.tokenizer()?, dir)?,
        }
        Ok(())
    }

    fn export_gguf(&self, path: &Path, dtype: foil_core::policy::GgufDtype) -> anyhow::Result<()> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let tokenizer = self.gguf_tokenizer()?;
        let merged = self.model().valid().merged();
        gguf_export::write_gguf(&merged, &self.config, tokenizer, dtype, path)
            .with_context(|| format!("exporting the policy as GGUF to {}", path.display()))
    }
}

/// Writes `tokenizer.json` and a `tokenizer_config.json` (special tokens, chat template)
/// for a tokenizer that came from a GGUF file.
fn save_tokenizer(tok: &HfTokenizer, dir: &Path) -> anyhow::Result<()> {
    let inner = tok.inner();
    inner
        .save(dir.join("tokenizer.json"), true)
        .map_err(|e| anyhow::anyhow!("writing tokenizer.json: {e}"))?;
    let name = |id: Option<u32>| id.and_then(|i| inner.id_to_token(i));
    let mut config = serde_json::json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": name(tok.bos_id()),
        "eos_token": name(tok.eos_ids().first().copied()),
        "pad_token": name(Some(tok.pad_id())),
        "model_max_length": 1_000_000_000u64,
    });
    if let Some(t) = tok.chat_template() {
        config["chat_template"] = t.source().into();
    }
    std::fs::write(
        dir.join("tokenizer_config.json"),
        serde_json::to_string_pretty(&config)?,
    )?;
    Ok(())
}

/// A gradient-free copy of the weights on the inner device.
pub struct HfInference {
    model: HfDecoder<FB>,
    /// The weights on the host when the device is a CPU: prefill and decode run there.
    host: Option<HostDecoder>,
    device: Device,
}

impl HfInference {
    fn new(model: HfDecoder<FB>, device: Device) -> Self {
        let host = use_host_decode(&device).then(|| model.to_host());
        Self {
            model,
            host,
            device,
        }
    }
}

impl InferenceModel for HfInference {
    fn forward(&self, input: &SeqInput) -> Tensor<FB, 3> {
        self.model.forward(
            input.tokens.clone(),
            input.positions.clone(),
            input.key_valid.clone(),
        )
    }

    fn prefill(&self, input: &SeqInput) -> (Tensor<FB, 2>, DecodeCache) {
        if let Some(host) = &self.host {
            return prefill_tensors(host, input, &self.device);
        }
        let (logits, cache) = self.model.prefill(
            input.tokens.clone(),
            input.positions.clone(),
            input.key_valid.clone(),
        );
        (logits, Box::new(cache))
    }

    fn decode(
        &self,
        cache: &mut DecodeCache,
        tokens: Tensor<FB, 2, Int>,
        positions: Tensor<FB, 2, Int>,
    ) -> Tensor<FB, 2> {
        if let Some(host) = &self.host {
            return decode_tensors(host, cache, tokens, positions, &self.device);
        }
        let cache = cache
            .downcast_mut::<HfCache<FB>>()
            .expect("an hf cache handed back to an hf model");
        self.model.decode(cache, tokens, positions)
    }

    fn device(&self) -> Device {
        self.device.clone()
    }

    fn context(&self) -> usize {
        self.model.context()
    }

    fn token_logprobs(&self, input: &SeqInput, targets: Tensor<FB, 2, Int>) -> Tensor<FB, 2> {
        self.model.token_logprobs_chunked(
            input.tokens.clone(),
            input.positions.clone(),
            input.key_valid.clone(),
            targets,
            LOGPROB_CHUNK_ELEMS,
        )
    }
}

/// Logits materialised at once by frozen log-prob passes: 16M floats (64 MB in f32), e.g.
/// 8 rows × 13 columns of a 151,936-token vocabulary.
pub const LOGPROB_CHUNK_ELEMS: usize = 16 << 20;
