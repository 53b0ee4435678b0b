//! Recipe part `policy: {type: hf, path: DIR_OR_GGUF, dtype: f32, lora: {...}}`: a
//! pretrained Hugging Face decoder (a transformers directory, or a GGUF file) as a
//! trainable policy, with its own tokenizer and chat template.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use burn::module::{AutodiffModule, Module};
use burn::optim::Optimizer;
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
use crate::host::decoder_train::{self, DecoderParams, DecoderPass};
use crate::host::train::{HostInput, ParamRef, Pending, use_host_train};
use crate::host::{decode_tensors, prefill_repeated_tensors, prefill_tensors, use_host_decode};
use crate::precision::{Precision, working_copy};
use crate::trainable::{self, Adam, FusedAdamW};

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
    /// Training passes over f32 parameters: `f32`, or `bf16` mixed precision (bf16 passes
    /// over f32 master weights and AdamW state; `crate::precision`). Unlike `dtype: bf16`,
    /// updates smaller than a bf16 step are kept. With `dtype: bf16` the passes are bf16
    /// whatever this says.
    #[serde(default)]
    pub precision: Precision,
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
            precision: Precision::F32,
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

    /// The trainable policy on `device`'s autodiff device (what `build` boxes).
    fn build_policy(
        &self,
        vocab_size: usize,
        device: &Device,
        seed: u64,
    ) -> anyhow::Result<HfPolicy> {
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
        Ok(HfPolicy {
            model: Some(model),
            optim: FusedAdamW::default().init(),
            // the host passes are f32: bf16 passes run through burn on any device
            host_train: use_host_train(&train)
                && self.dtype == Dtype::F32
                && self.precision == Precision::F32,
            precision: self.precision,
            pending: Pending::default(),
            device: train,
            config,
            path: self.path.clone(),
            gguf_tokenizer: std::sync::OnceLock::new(),
        })
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
        Ok(Box::new(self.build_policy(vocab_size, device, seed)?))
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
    /// Forward and backward passes on the host (CPU devices; `crate::host::train`).
    host_train: bool,
    /// The host forward passes since the last step.
    pending: Pending<DecoderPass>,
    /// The dtype of burn's training passes.
    precision: Precision,
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

    /// The logits of a host forward pass, as an autodiff leaf whose trace waits in
    /// `pending` for the step.
    fn host_forward(&self, input: &SeqInput) -> Tensor<FB, 3> {
        let (logits, x, trace) = self.host_pass(input);
        let vocab = logits.len() / (x.rows * x.t).max(1);
        self.pending
            .record(logits, [x.rows, x.t, vocab], &self.device, trace)
    }

    /// A host forward pass: its logits `[rows·t, vocab]`, its input and its trace.
    fn host_pass(&self, input: &SeqInput) -> (Vec<f32>, HostInput, DecoderPass) {
        use rayon::prelude::*;
        let (layout, refs) = self.model().host_params();
        let params = std::sync::Arc::new(DecoderParams {
            layout,
            // tensor by tensor on rayon's threads (4 MB for the GRPO bench's Qwen2)
            values: refs.par_iter().map(ParamRef::read).collect(),
            trainable: refs.iter().map(ParamRef::trainable).collect(),
        });
        let x = HostInput::new(input);
        let (logits, trace) =
            decoder_train::forward_split(params, &x.tokens, &x.positions, &x.valid, x.rows);
        (logits, x, trace)
    }

    /// The gradients of `loss`: burn's, plus the host backward pass of every pending host
    /// forward pass that `loss` depends on.
    fn gradients(&self, loss: Tensor<FB, 1>) -> burn::optim::GradientsParams {
        let model = self.model();
        let mut host: Option<Vec<Vec<f32>>> = None;
        let mut grads = self.pending.gradients(model, loss, |trace, d_logits| {
            let g = host.get_or_insert_with(|| trace.params().zero_grads());
            decoder_train::backward_split(trace, d_logits, g);
        });
        if let Some(host) = host {
            let (_, refs) = model.host_params();
            for (p, g) in refs.iter().zip(host) {
                if p.trainable() {
                    p.register(g, &mut grads);
                }
            }
        }
        grads
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
        if self.host_train {
            return self.host_forward(input);
        }
        working_copy(self.model(), self.precision)
            .forward(
                input.tokens.clone(),
                input.positions.clone(),
                input.key_valid.clone(),
            )
            .cast(burn::tensor::DType::F32)
    }

    fn token_logprobs(&self, input: &SeqInput, targets: Tensor<FB, 2, Int>) -> Tensor<FB, 2> {
        if !self.host_train {
            return foil_core::batch::token_logprobs(self.forward(input), targets);
        }
        let (logits, x, trace) = self.host_pass(input);
        let targets = crate::host::ids(targets);
        self.pending
            .record_logprobs(logits, x.t, &targets, &self.device, trace)
    }

    fn step(&mut self, loss: Tensor<FB, 1>, lr: f64) -> anyhow::Result<()> {
        let grads = self.gradients(loss);
        let model = self.model.take().expect("model present between steps");
        self.model = Some(self.optim.step(lr, model, grads));
        Ok(())
    }

    fn step_synced(
        &mut self,
        loss: Tensor<FB, 1>,
        lr: f64,
        sync: &mut dyn foil_core::grad_sync::GradientSync,
    ) -> anyhow::Result<()> {
        let grads = self.gradients(loss);
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
        let optim = std::mem::replace(&mut self.optim, FusedAdamW::default().init());
        let (model, optim) = trainable::load(model, optim, dir, &self.device, "hf")?;
        self.pending.clear();
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
    /// The weights on the host for `token_logprobs` passes (CPU; copied at the first).
    host_params: std::sync::OnceLock<DecoderParams>,
    device: Device,
}

impl HfInference {
    fn new(model: HfDecoder<FB>, device: Device) -> Self {
        let host = use_host_decode(&device).then(|| model.to_host());
        Self {
            model,
            host,
            host_params: std::sync::OnceLock::new(),
            device,
        }
    }

    /// The weights as the host passes read them (frozen).
    fn host_params(&self) -> &DecoderParams {
        self.host_params.get_or_init(|| {
            let (layout, refs) = self.model.host_params();
            DecoderParams {
                layout,
                values: refs.iter().map(ParamRef::read).collect(),
                trainable: vec![false; refs.len()],
            }
        })
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

    fn prefill_repeated(
        &self,
        input: &SeqInput,
        repeats: &[usize],
    ) -> (Tensor<FB, 2>, DecodeCache) {
        if let Some(host) = &self.host {
            return prefill_repeated_tensors(host, input, repeats, &self.device);
        }
        // burn's path (GPUs): each prompt once, then its cache rows and logits gathered
        let [rows, _] = input.tokens.dims();
        assert_eq!(repeats.len(), rows, "one repeat count per prompt row");
        let (logits, cache) = self.model.prefill(
            input.tokens.clone(),
            input.positions.clone(),
            input.key_valid.clone(),
        );
        let index = foil_core::batch::repeat_index(repeats, &self.device);
        (
            logits.select(0, index.clone()),
            Box::new(cache.select_rows(index)),
        )
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
        if self.host.is_some() {
            let x = HostInput::new(input);
            let targets = crate::host::ids(targets);
            let lp = decoder_train::token_logprobs(
                self.host_params(),
                &x.tokens,
                &x.positions,
                &x.valid,
                x.rows,
                &targets,
            );
            let shape = [x.rows, x.t - 1];
            return Tensor::from_data(burn::tensor::TensorData::new(lp, shape), &self.device);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::train::testing;
    use foil_core::backend::parse_device;

    fn policy(fixture: &str, lora: Option<LoraConfig>, host_train: bool) -> HfPolicy {
        policy_in(fixture, lora, host_train, Precision::F32)
    }

    fn policy_in(
        fixture: &str,
        lora: Option<LoraConfig>,
        host_train: bool,
        precision: Precision,
    ) -> HfPolicy {
        let hf: Hf = serde_json::from_value(serde_json::json!({
            "path": Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf").join(fixture),
            "lora": lora,
            "precision": precision,
        }))
        .unwrap();
        let mut p = hf
            .build_policy(128, &parse_device("cpu").unwrap(), 5)
            .unwrap();
        p.host_train = host_train;
        p
    }

    /// burn's prefill of each prompt once, its cache rows and logits gathered
    /// (`prefill_repeated` off the host path, as on a GPU), gives what prefilling the
    /// repeated rows gives: the same logits to rounding, and a decode step from either
    /// cache the same next logits.
    #[test]
    fn burn_prefill_repeated_matches_prefill_of_repeated_rows() {
        use foil_core::batch::SeqBatch;
        let p = policy("qwen2", None, false);
        let device = inner_device(&p.device);
        let burn_path = HfInference {
            model: p.model().valid(),
            host: None,
            host_params: std::sync::OnceLock::new(),
            device: device.clone(),
        };
        let prompts = vec![vec![5u32, 9, 17], vec![7], vec![12, 90]];
        let repeats = [2, 1, 3];
        let input = SeqBatch::left_padded(&prompts, 0).to_input(&device);
        let (a, mut ca) = burn_path.prefill_repeated(&input, &repeats);
        let (b, mut cb) = burn_path.prefill(&input.repeat_rows(&repeats));
        let close = |x: Tensor<FB, 2>, y: Tensor<FB, 2>, what: &str| {
            let (x, y) = (foil_core::batch::to_vec(x), foil_core::batch::to_vec(y));
            assert_eq!(x.len(), y.len(), "{what}");
            let scale = y.iter().fold(0f32, |m, v| m.max(v.abs()));
            for (i, (u, v)) in x.iter().zip(&y).enumerate() {
                assert!((u - v).abs() <= 1e-5 * scale, "{what}[{i}]: {u} vs {v}");
            }
            // the six rows are three distinct prompts' logits
            y
        };
        let rows = close(a, b, "prefill logits");
        let v = rows.len() / 6;
        assert_ne!(
            rows[..v],
            rows[2 * v..3 * v],
            "rows of different prompts differ"
        );
        let tokens = Tensor::<FB, 2, Int>::from_data(
            burn::tensor::TensorData::new(vec![3i64, 4, 5, 6, 7, 8], [6, 1]),
            &device,
        );
        let positions = Tensor::<FB, 2, Int>::from_data(
            burn::tensor::TensorData::new(vec![3i64, 3, 1, 2, 2, 2], [6, 1]),
            &device,
        );
        let next_a = burn_path.decode(&mut ca, tokens.clone(), positions.clone());
        let next_b = burn_path.decode(&mut cb, tokens, positions);
        close(next_a, next_b, "decode logits");
    }

    /// `−Σ w·log π / 7` over left-padded rows of three lengths, weights of both signs
    /// (`crate::host::train::testing::weighted_nll`).
    fn weighted_nll(p: &HfPolicy, fused: bool) -> Tensor<FB, 1> {
        let rows: Vec<(&[u32], &[u32])> = vec![
            (&[5, 9, 17], &[3, 44, 8, 100]),
            (&[7], &[7, 21]),
            (&[12, 90], &[1, 127, 64, 2, 33]),
        ];
        let weight = |i: usize| ((i % 7) as f32 - 2.5) / 3.0;
        testing::weighted_nll(p, &rows, fused, weight, 7.0)
    }

    /// The host training path is f32: `precision: bf16` (or `dtype: bf16`, on a GPU)
    /// sends the policy through burn's autodiff instead.
    #[test]
    fn bf16_precision_leaves_the_host_path() {
        for (precision, on_host) in [(Precision::F32, true), (Precision::Bf16, false)] {
            let hf: Hf = serde_json::from_value(serde_json::json!({
                "path": Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf/qwen2"),
                "precision": precision,
            }))
            .unwrap();
            let p = hf
                .build_policy(128, &parse_device("cpu").unwrap(), 5)
                .unwrap();
            assert_eq!(p.host_train, on_host, "{precision:?}");
        }
    }

    /// Rank-2 adapters (α 4) on every projection.
    fn rank_2_lora_everywhere() -> LoraConfig {
        LoraConfig {
            rank: 2,
            alpha: 4.0,
            targets: super::super::lora::LORA_TARGETS.map(String::from).to_vec(),
        }
    }

    /// The host training path back-propagates what burn's autodiff does, for full
    /// fine-tuning (Qwen2: q/k/v biases, grouped key/value heads; tied and untied heads)
    /// and for LoRA on every projection (Llama 3: adapters train, the base stays frozen and
    /// gets no gradient). Every gradient within 1e-4 of its tensor's largest.
    #[test]
    fn host_gradients_match_burn_autodiff() {
        let all = rank_2_lora_everywhere();
        for (fixture, lora) in [("qwen2", None), ("qwen2-tied", None), ("llama3", Some(all))] {
            let (mut host, mut burn) = (
                policy(fixture, lora.clone(), true),
                policy(fixture, lora.clone(), false),
            );
            if lora.is_some() {
                // LoRA's B starts at 0, which makes A's gradient 0: one step first (burn's),
                // copied to the host-path policy, so that every adapter tensor is live
                burn.reset_optimizer(&OptimizerConfig::adamw(1e-2));
                let loss = weighted_nll(&burn, false);
                burn.step(loss, 1e-2).unwrap();
                let dir = tempfile::tempdir().unwrap();
                burn.save(dir.path()).unwrap();
                host.load(dir.path()).unwrap();
            }
            // the LoRA case through `token_logprobs`, the others through `forward`
            let got = host.gradients(weighted_nll(&host, lora.is_some()));
            let want = trainable::gradients(burn.model(), weighted_nll(&burn, false));
            let (_, refs) = host.model().host_params();
            let (_, burn_refs) = burn.model().host_params();
            let trained = testing::assert_same_gradients(&refs, &got, &burn_refs, &want, fixture);
            let expected = if lora.is_some() {
                2 * 7 * 2
            } else {
                refs.len()
            };
            assert_eq!(trained, expected, "{fixture}");
        }
    }

    /// `precision: bf16` on a decoder with RoPE, grouped-query attention and q/k/v biases
    /// (Qwen2), full fine-tuning and LoRA: logits near the f32 policy's but not equal (the
    /// passes are bf16), gradients aligned with f32's (cosine > 0.99 per tensor), and an
    /// AdamW step leaves f32 weights.
    #[test]
    fn bf16_mixed_precision_tracks_f32() {
        for lora in [None, Some(rank_2_lora_everywhere())] {
            let f32p = policy_in("qwen2", lora.clone(), false, Precision::F32);
            let mut bf16p = policy_in("qwen2", lora.clone(), false, Precision::Bf16);
            let gap = testing::relative_logit_gap(&f32p, &bf16p);
            assert!(
                gap > 1e-6 && gap < 2e-2,
                "max |Δlogit| / max |logit| = {gap}"
            );
            let want = trainable::gradients(f32p.model(), weighted_nll(&f32p, false));
            let got = trainable::gradients(bf16p.model(), weighted_nll(&bf16p, false));
            let (_, a) = f32p.model().host_params();
            let (_, b) = bf16p.model().host_params();
            let cosines = testing::gradient_cosines(&a, &want, &b, &got);
            let trained = a.iter().filter(|p| p.trainable()).count();
            // LoRA's A gets no gradient while B is 0 (its first step), so only B's count
            let expected = if lora.is_some() { trained / 2 } else { trained };
            assert_eq!(cosines.len(), expected, "lora {}", lora.is_some());
            assert!(cosines.iter().all(|&c| c > 0.99), "{cosines:?}");

            bf16p.reset_optimizer(&OptimizerConfig::adamw(1e-2));
            let loss = weighted_nll(&bf16p, false);
            bf16p.step(loss, 1e-2).unwrap();
            let (_, refs) = bf16p.model().host_params();
            assert!(refs.iter().all(|p| p.dtype() == burn::tensor::DType::F32));
        }
    }
}
