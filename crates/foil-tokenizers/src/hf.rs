//! [`HfTokenizer`]: a Hugging Face tokenizer (the `tokenizers` crate) behind foil's
//! [`Tokenizer`] trait, loaded from a model directory or built from a GGUF vocabulary.
//!
//! Behaviour follows transformers 5 (`tokenization_utils_tokenizers.py`,
//! `apply_chat_template`):
//!
//! - [`encode`](Tokenizer::encode) is `tokenizer.encode(text, add_special_tokens=False)`;
//!   special-token strings in the text (`<|im_end|>`) are matched whole, as transformers
//!   does.
//! - [`encode_prompt`](Tokenizer::encode_prompt) follows the [`PromptFormat`]: `raw` is
//!   `tokenizer(text)` (the post-processor of `tokenizer.json` adds BOS where the model
//!   wants it); `chat` is `apply_chat_template([system?, user], add_generation_prompt=True,
//!   tokenize=True)`.
//! - [`decode`](Tokenizer::decode) is `decode(ids, skip_special_tokens=True)` (no
//!   `clean_up_tokenization_spaces`: transformers 5 skips it for BPE models).
//!
//! A directory gives `tokenizer.json` (required), `tokenizer_config.json` (required:
//! special tokens, chat template), and optionally `chat_template.jinja` or
//! `chat_template.json` (newer layouts, which take priority over the config's template, as
//! in transformers) and `generation_config.json` (its `eos_token_id`s all end a response).
//!
//! `tokenizer.json` is used as written. Two deliberate differences from transformers 5:
//! `add_bos_token: true` in the config prepends BOS when `tokenizer.json` has no
//! post-processor (transformers 5 ignores the flag whenever `tokenizer.json` exists), and
//! a `LlamaTokenizer`-class directory keeps its `tokenizer.json` pipeline (transformers 5
//! rebuilds it with `Metaspace`, which drops sentencepiece's dummy prefix before a leading
//! space).
//!
//! A GGUF vocabulary is rebuilt into the `tokenizer.json` the model was converted from;
//! see [`HfTokenizer::from_gguf_vocab`] and `gguf_build.rs`.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, anyhow, bail};
use foil_core::tokenizer::Tokenizer;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::chat_template::{ChatMessage, ChatTemplate};
use crate::gguf_build;
use crate::gguf_vocab::GgufVocab;

/// How a problem's prompt becomes the policy's input ids (a recipe field: `prompt: raw` or
/// `prompt: {chat: {system: "..."}}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PromptFormat {
    /// The prompt text as is, with the tokenizer's own special tokens (BOS where its
    /// post-processor adds one), like `tokenizer(text)` in transformers.
    #[default]
    Raw,
    /// The prompt as the user turn of a conversation rendered by the model's chat
    /// template, with an optional system turn first, and the assistant header appended.
    Chat {
        /// The system message; `None` leaves the template's default (some templates
        /// insert their own system message).
        #[serde(default)]
        system: Option<String>,
    },
}

/// A Hugging Face tokenizer with its special tokens, chat template and prompt format.
#[derive(Debug, Clone)]
pub struct HfTokenizer {
    inner: tokenizers::Tokenizer,
    vocab_size: usize,
    eos_id: u32,
    /// Every id that ends a response, `eos_id` included, sorted.
    eos_ids: Vec<u32>,
    pad_id: u32,
    bos_id: Option<u32>,
    /// `add_bos_token: true` with no post-processor in `tokenizer.json`: raw prompts get
    /// BOS prepended here.
    prepend_bos: bool,
    template: Option<ChatTemplate>,
    prompt: PromptFormat,
    /// Where it came from, for error messages.
    origin: String,
}

/// A special token in `tokenizer_config.json`: a string, `{"content": ...}`, or null.
fn special_token(config: &Value, key: &str) -> anyhow::Result<Option<String>> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Object(o)) => match o.get("content") {
            Some(Value::String(s)) => Ok(Some(s.clone())),
            _ => bail!("tokenizer_config.json: `{key}` is an object without a string `content`"),
        },
        Some(other) => bail!(
            "tokenizer_config.json: `{key}` must be a string or {{\"content\": ...}}, found {other}"
        ),
    }
}

/// `chat_template` of `tokenizer_config.json`: a string, or a list of `{name, template}`
/// from which the one named `default` is taken.
fn config_chat_template(config: &Value) -> anyhow::Result<Option<String>> {
    match config.get("chat_template") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Array(list)) => {
            let mut names = Vec::new();
            for entry in list {
                let name = entry.get("name").and_then(Value::as_str).unwrap_or("");
                if name == "default" {
                    let t = entry.get("template").and_then(Value::as_str).ok_or_else(|| {
                        anyhow!("tokenizer_config.json: chat template `default` has no string `template`")
                    })?;
                    return Ok(Some(t.to_string()));
                }
                names.push(name.to_string());
            }
            bail!(
                "tokenizer_config.json: `chat_template` lists templates {names:?} but none named `default`"
            )
        }
        Some(other) => bail!(
            "tokenizer_config.json: `chat_template` must be a string or a list, found {other}"
        ),
    }
}

/// The ids of `eos_token_id` in `generation_config.json`: a number or a list of numbers.
fn generation_eos_ids(config: &Value) -> anyhow::Result<Vec<u32>> {
    let as_id = |v: &Value| {
        v.as_u64()
            .and_then(|x| u32::try_from(x).ok())
            .ok_or_else(|| {
                anyhow!(
                    "generation_config.json: `eos_token_id` entries must be token ids, found {v}"
                )
            })
    };
    match config.get("eos_token_id") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(list)) => list.iter().map(as_id).collect(),
        Some(v) => Ok(vec![as_id(v)?]),
    }
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

impl HfTokenizer {
    /// Loads a Hugging Face model directory's tokenizer (see the module docs for the
    /// files). Errors name the missing or malformed file.
    pub fn from_dir(dir: impl AsRef<Path>) -> anyhow::Result<Self> {
        let dir = dir.as_ref();
        let tok_path = dir.join("tokenizer.json");
        if !tok_path.is_file() {
            bail!(
                "{} not found: a Hugging Face tokenizer directory needs tokenizer.json",
                tok_path.display()
            );
        }
        let inner = tokenizers::Tokenizer::from_file(&tok_path)
            .map_err(|e| anyhow!("{} is not a valid tokenizer.json: {e}", tok_path.display()))?;

        let config_path = dir.join("tokenizer_config.json");
        if !config_path.is_file() {
            bail!(
                "{} not found: it names the special tokens (eos_token, …) and the chat template",
                config_path.display()
            );
        }
        let config = read_json(&config_path)?;
        let in_config = |e: anyhow::Error| e.context(format!("in {}", config_path.display()));

        let gen_path = dir.join("generation_config.json");
        let gen_eos = if gen_path.is_file() {
            generation_eos_ids(&read_json(&gen_path)?)
                .with_context(|| format!("in {}", gen_path.display()))?
        } else {
            Vec::new()
        };

        let id_of = |key: &str, token: &str| {
            inner.token_to_id(token).ok_or_else(|| {
                anyhow!(
                    "{}: {key} {token:?} is not in the vocabulary of tokenizer.json",
                    config_path.display()
                )
            })
        };
        let bos_token = special_token(&config, "bos_token").map_err(in_config)?;
        let eos_token = special_token(&config, "eos_token").map_err(in_config)?;
        let pad_token = special_token(&config, "pad_token").map_err(in_config)?;
        let bos_id = bos_token
            .as_deref()
            .map(|t| id_of("bos_token", t))
            .transpose()?;
        let eos_id = match (&eos_token, gen_eos.first()) {
            (Some(t), _) => id_of("eos_token", t)?,
            (None, Some(&id)) => id,
            (None, None) => bail!(
                "no end-of-sequence token: neither {} has `eos_token` nor {} has `eos_token_id`",
                config_path.display(),
                gen_path.display()
            ),
        };
        let pad_id = match &pad_token {
            Some(t) => id_of("pad_token", t)?,
            None => eos_id,
        };
        let add_bos = config
            .get("add_bos_token")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let prepend_bos = add_bos && inner.get_post_processor().is_none() && bos_id.is_some();

        let jinja_path = dir.join("chat_template.jinja");
        let json_template_path = dir.join("chat_template.json");
        let (template_src, template_origin) = if jinja_path.is_file() {
            let src = std::fs::read_to_string(&jinja_path)
                .with_context(|| format!("reading {}", jinja_path.display()))?;
            (Some(src), jinja_path.display().to_string())
        } else if json_template_path.is_file() {
            let v = read_json(&json_template_path)?;
            let src = config_chat_template(&v)
                .map_err(|e| e.context(format!("in {}", json_template_path.display())))?;
            (src, json_template_path.display().to_string())
        } else {
            (
                config_chat_template(&config).map_err(in_config)?,
                config_path.display().to_string(),
            )
        };
        let template = template_src
            .map(|src| ChatTemplate::new(src, bos_token.as_deref(), eos_token.as_deref()))
            .transpose()
            .with_context(|| format!("the chat template of {template_origin}"))?;

        let eos_ids: BTreeSet<u32> = std::iter::once(eos_id).chain(gen_eos).collect();
        Ok(Self::assemble(
            inner,
            eos_id,
            eos_ids,
            pad_id,
            bos_id,
            prepend_bos,
            template,
            format!("the tokenizer in {}", dir.display()),
        ))
    }

    /// Builds the tokenizer a GGUF file describes: `gpt2` (byte-level BPE, split by the
    /// `tokenizer.ggml.pre` pre-tokenizer) or `llama` (SentencePiece-style BPE with byte
    /// fallback). Control tokens (type 3) become special tokens and user-defined ones
    /// (type 4) added tokens, both matched whole in text. Responses end at `eos_id` and at
    /// llama.cpp's other end-of-generation tokens present in the vocabulary
    /// (`<|eot_id|>`, `<|im_end|>`, `<|endoftext|>`, …).
    pub fn from_gguf_vocab(vocab: &GgufVocab) -> anyhow::Result<Self> {
        let built = gguf_build::build(vocab)?;
        let inner: tokenizers::Tokenizer = built
            .json
            .to_string()
            .parse()
            .map_err(|e| anyhow!("building the tokenizer from the GGUF vocabulary: {e}"))?;
        let token = |id: u32| vocab.tokens.get(id as usize).map(String::as_str);
        let eos_id = vocab
            .eos_id
            .ok_or_else(|| anyhow!("the GGUF vocabulary has no tokenizer.ggml.eos_token_id"))?;
        let template = vocab
            .chat_template
            .as_deref()
            .map(|src| ChatTemplate::new(src, vocab.bos_id.and_then(token), token(eos_id)))
            .transpose()
            .context("the GGUF chat template (tokenizer.chat_template)")?;
        Ok(Self::assemble(
            inner,
            eos_id,
            built.end_ids,
            vocab.pad_id.unwrap_or(eos_id),
            vocab.bos_id,
            false,
            template,
            "the GGUF tokenizer".to_string(),
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        inner: tokenizers::Tokenizer,
        eos_id: u32,
        eos_ids: BTreeSet<u32>,
        pad_id: u32,
        bos_id: Option<u32>,
        prepend_bos: bool,
        template: Option<ChatTemplate>,
        origin: String,
    ) -> Self {
        let vocab = inner.get_vocab(true);
        let max_id = vocab.values().copied().max().map_or(0, |m| m as usize + 1);
        let vocab_size = vocab.len().max(max_id).max(inner.get_vocab_size(false));
        Self {
            inner,
            vocab_size,
            eos_id,
            eos_ids: eos_ids.into_iter().collect(),
            pad_id,
            bos_id,
            prepend_bos,
            template,
            prompt: PromptFormat::Raw,
            origin,
        }
    }

    /// Sets how [`encode_prompt`](Tokenizer::encode_prompt) builds prompts. `chat` needs
    /// a chat template.
    pub fn with_prompt_format(mut self, prompt: PromptFormat) -> anyhow::Result<Self> {
        if matches!(prompt, PromptFormat::Chat { .. }) && self.template.is_none() {
            bail!(
                "prompt format `chat` needs a chat template, and {} has none \
                 (no chat_template in tokenizer_config.json, no chat_template.jinja, \
                 no tokenizer.chat_template in a GGUF); use `prompt: raw`",
                self.origin
            );
        }
        self.prompt = prompt;
        Ok(self)
    }

    /// The prompt format [`encode_prompt`](Tokenizer::encode_prompt) uses.
    pub fn prompt_format(&self) -> &PromptFormat {
        &self.prompt
    }

    /// The chat template, if the tokenizer has one.
    pub fn chat_template(&self) -> Option<&ChatTemplate> {
        self.template.as_ref()
    }

    /// The beginning-of-sequence id, if the tokenizer names one.
    pub fn bos_id(&self) -> Option<u32> {
        self.bos_id
    }

    /// Every id that ends a response (sorted; [`eos_id`](Tokenizer::eos_id) among them).
    pub fn eos_ids(&self) -> &[u32] {
        &self.eos_ids
    }

    /// The underlying `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// `tokenizer(text)`: the text with the special tokens the tokenizer adds (BOS).
    pub fn encode_with_special_tokens(&self, text: &str) -> anyhow::Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, true)
            .map_err(|e| anyhow!("encoding {text:?}: {e}"))?;
        let mut ids = enc.get_ids().to_vec();
        if self.prepend_bos
            && let Some(bos) = self.bos_id
            && ids.first() != Some(&bos)
        {
            ids.insert(0, bos);
        }
        Ok(ids)
    }

    /// `apply_chat_template(messages, add_generation_prompt, tokenize=True)`: renders the
    /// chat template and encodes the text without adding special tokens (the template
    /// writes them).
    pub fn apply_chat_template(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> anyhow::Result<Vec<u32>> {
        let template = self
            .template
            .as_ref()
            .ok_or_else(|| anyhow!("{} has no chat template", self.origin))?;
        let text = template.render(messages, add_generation_prompt)?;
        self.encode(&text)
    }
}

impl Tokenizer for HfTokenizer {
    fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    fn encode(&self, text: &str) -> anyhow::Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| anyhow!("encoding {text:?}: {e}"))?;
        Ok(enc.get_ids().to_vec())
    }

    fn decode(&self, ids: &[u32]) -> String {
        let known: Vec<u32> = ids
            .iter()
            .copied()
            .filter(|&i| (i as usize) < self.vocab_size)
            .collect();
        self.inner.decode(&known, true).unwrap_or_default()
    }

    fn eos_id(&self) -> u32 {
        self.eos_id
    }

    fn pad_id(&self) -> u32 {
        self.pad_id
    }

    fn encode_prompt(&self, prompt: &str) -> anyhow::Result<Vec<u32>> {
        match &self.prompt {
            PromptFormat::Raw => self.encode_with_special_tokens(prompt),
            PromptFormat::Chat { system } => {
                let mut messages = Vec::with_capacity(2);
                if let Some(s) = system {
                    messages.push(ChatMessage::new("system", s.as_str()));
                }
                messages.push(ChatMessage::new("user", prompt));
                self.apply_chat_template(&messages, true)
            }
        }
    }

    fn is_eos(&self, id: u32) -> bool {
        self.eos_ids.binary_search(&id).is_ok()
    }
}
