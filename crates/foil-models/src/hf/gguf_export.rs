//! The HF decoder written as a GGUF file llama.cpp serves: the exact inverse of
//! [`super::gguf`]'s mapping.
//!
//! - Tensors: transformers' keys → llama.cpp's names (`model.embed_tokens.weight` →
//!   `token_embd.weight`, `model.layers.N.self_attn.q_proj.weight` → `blk.N.attn_q.weight`,
//!   …), linear weights in PyTorch's `[out, in]` order (ggml `ne = [in, out]`). For the
//!   `llama` architecture the rows of `q`/`k` weights are permuted as llama.cpp's
//!   converter does (`LlamaModel.permute`): within each head of `2m` rows, Hugging Face
//!   row `b·m + a` becomes GGUF row `2a + b` ([`permute`], the inverse of
//!   [`super::gguf::unpermute`]). Qwen2 is stored unpermuted, as llama.cpp expects.
//! - Mistral is written as `llama` (llama.cpp's converter does the same).
//! - Hyper-parameters: `general.architecture`, `{arch}.context_length`,
//!   `embedding_length`, `block_count`, `feed_forward_length`, `attention.head_count(_kv)`,
//!   `rope.freq_base`, `rope.dimension_count`, `attention.layer_norm_rms_epsilon`,
//!   `vocab_size`, linear rope scaling.
//! - Tensor types: `f32` everything, or `f16` for matrices with the 1-D norms and biases
//!   kept in f32 (what llama.cpp's converter writes for `--outtype f16`).
//! - Tokenizer: a policy loaded from a GGUF file copies the source's `tokenizer.*` keys;
//!   one loaded from a Hugging Face directory gets them built from its `tokenizer.json`
//!   ([`tokenizer_metadata_from_dir`]: byte-level BPE only, llama.cpp's `gpt2` model).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail, ensure};
use burn::tensor::DType;
use burn::tensor::backend::Backend;
use burn_store::ModuleSnapshot;
use foil_core::policy::GgufDtype;
use foil_gguf::{GgufFile, GgufWriter, Value};
use foil_tokenizers::gguf_vocab::{
    TOKEN_TYPE_CONTROL, TOKEN_TYPE_NORMAL, TOKEN_TYPE_UNUSED, TOKEN_TYPE_USER_DEFINED,
};
use serde_json::Value as Json;

use super::config::{HfConfig, RopeScaling};
use super::decoder::HfDecoder;
use super::gguf::{architecture, permute};
use super::weights::hf_name;

/// The llama.cpp name of a transformers key, and the heads whose rows to permute
/// (`Some(heads)` for llama's q/k weights). `None`: not a tensor llama.cpp loads.
fn gguf_name(key: &str, config: &HfConfig) -> Option<(String, Option<usize>)> {
    super::gguf::rename(key, true, config)
}

/// A named tensor: key, row-major shape, f32 data.
type Named = (String, Vec<usize>, Vec<f32>);

/// Every parameter of `model` under its transformers key, in PyTorch layout and f32.
/// Linear weights are stored `[in, out]` by burn and transposed here with
/// [`transpose`] (burn-store's `BurnToPyTorchAdapter` does the same element by element,
/// 1.5 s slower on SmolLM2-135M).
fn hf_tensors<B: Backend>(model: &HfDecoder<B>) -> anyhow::Result<Vec<Named>> {
    ensure!(
        !model.has_lora(),
        "merge LoRA adapters before writing a GGUF file"
    );
    let mut out = Vec::new();
    for snap in model.collect(None, None, false) {
        let key = hf_name(&snap.full_path());
        let linear = snap.module_type().as_deref() == Some("Struct:Linear")
            && key.ends_with(".weight")
            && snap.shape.len() == 2;
        let data = snap
            .to_data()
            .map_err(|e| anyhow::anyhow!("reading parameter {key}: {e:?}"))?
            .convert_dtype(DType::F32);
        let mut shape = data.shape.to_vec();
        let mut values = data
            .into_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("parameter {key} as f32: {e:?}"))?;
        if linear {
            values = transpose(&values, shape[0], shape[1]);
            shape.swap(0, 1);
        }
        out.push((key, shape, values));
    }
    Ok(out)
}

/// `[rows, cols]` row-major → `[cols, rows]`, in 32 × 32 tiles so reads and writes stay
/// in cache.
pub fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const TILE: usize = 32;
    let mut out = vec![0.0; data.len()];
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                for c in c0..(c0 + TILE).min(cols) {
                    out[c * rows + r] = data[r * cols + c];
                }
            }
        }
    }
    out
}

/// The hyper-parameter keys of `config` (everything but the tokenizer).
pub fn hparams(config: &HfConfig) -> anyhow::Result<Vec<(String, Value)>> {
    let arch = architecture(config.family);
    let k = |s: &str| format!("{arch}.{s}");
    let u32_of = |name: &str, v: usize| {
        u32::try_from(v).with_context(|| format!("{name} {v} does not fit a GGUF u32"))
    };
    let mut m: Vec<(String, Value)> = vec![
        ("general.architecture".into(), arch.into()),
        (
            k("context_length"),
            u32_of("max_position_embeddings", config.max_position_embeddings)?.into(),
        ),
        (
            k("embedding_length"),
            u32_of("hidden_size", config.hidden_size)?.into(),
        ),
        (
            k("block_count"),
            u32_of("num_hidden_layers", config.num_hidden_layers)?.into(),
        ),
        (
            k("feed_forward_length"),
            u32_of("intermediate_size", config.intermediate_size)?.into(),
        ),
        (
            k("attention.head_count"),
            u32_of("num_attention_heads", config.num_attention_heads)?.into(),
        ),
        (
            k("attention.head_count_kv"),
            u32_of("num_key_value_heads", config.num_key_value_heads)?.into(),
        ),
        (k("rope.freq_base"), (config.rope_theta as f32).into()),
        (
            k("attention.layer_norm_rms_epsilon"),
            (config.rms_norm_eps as f32).into(),
        ),
        (
            k("rope.dimension_count"),
            u32_of("head_dim", config.head_dim)?.into(),
        ),
        (
            k("vocab_size"),
            u32_of("vocab_size", config.vocab_size)?.into(),
        ),
    ];
    if config.head_dim * config.num_attention_heads != config.hidden_size {
        let d = u32_of("head_dim", config.head_dim)?;
        m.push((k("attention.key_length"), d.into()));
        m.push((k("attention.value_length"), d.into()));
    }
    match &config.rope_scaling {
        RopeScaling::Default => {}
        RopeScaling::Linear { factor } => {
            m.push((k("rope.scaling.type"), "linear".into()));
            m.push((k("rope.scaling.factor"), (*factor as f32).into()));
        }
        RopeScaling::Llama3 { .. } => bail!(
            "GGUF export: llama3 rope scaling (llama.cpp's rope_freqs tensor) is not \
             implemented; export a Hugging Face directory instead"
        ),
    }
    if config.mlp_bias {
        bail!("GGUF export: MLP biases (mlp_bias: true) have no llama.cpp tensor names");
    }
    Ok(m)
}

/// Writes `model` (adapters merged) with `config`'s hyper-parameters and the given
/// tokenizer metadata as one GGUF v3 file at `path`.
pub fn write_gguf<B: Backend>(
    model: &HfDecoder<B>,
    config: &HfConfig,
    tokenizer: &[(String, Value)],
    dtype: GgufDtype,
    path: &Path,
) -> anyhow::Result<()> {
    let mut w = GgufWriter::new();
    for (key, v) in hparams(config)? {
        w.set(key, v);
    }
    // llama_ftype: 0 = ALL_F32, 1 = MOSTLY_F16
    w.set(
        "general.file_type",
        match dtype {
            GgufDtype::F32 => 0u32,
            GgufDtype::F16 => 1u32,
        },
    );
    for (key, v) in tokenizer {
        w.set(key.clone(), v.clone());
    }
    let mut named = Vec::new();
    for (key, shape, data) in hf_tensors(model)? {
        if key == "lm_head.weight" && config.tie_word_embeddings {
            continue;
        }
        let Some((name, heads)) = gguf_name(&key, config) else {
            bail!("GGUF export: no llama.cpp name for parameter {key} (shape {shape:?})");
        };
        let data = match heads {
            Some(h) => {
                ensure!(
                    shape.len() == 2 && shape[0] % (2 * h) == 0,
                    "{key}: shape {shape:?} does not split into {h} rotary heads"
                );
                permute(&data, shape[0], shape[1], h)
            }
            None => data,
        };
        named.push((name, shape, data));
    }
    // llama.cpp's order: embeddings, blocks in order, final norm, head
    let rank = |n: &str| -> (usize, usize) {
        match n.strip_prefix("blk.") {
            Some(r) => (
                1,
                r.split('.')
                    .next()
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(0),
            ),
            None if n.starts_with("token_embd") => (0, 0),
            None => (2, 0),
        }
    };
    named.sort_by_key(|(n, _, _)| rank(n));
    for (name, shape, data) in named {
        let half = dtype == GgufDtype::F16 && shape.len() >= 2;
        if half {
            w.add_f16(&name, &shape, &data)?;
        } else {
            w.add_f32_vec(&name, &shape, data)?;
        }
    }
    w.write(path)
}

/// The `tokenizer.*` keys of a GGUF file (plus `general.name`), copied as they are.
pub fn tokenizer_metadata_from_gguf(file: &GgufFile) -> Vec<(String, Value)> {
    file.metadata()
        .iter()
        .filter(|(k, _)| k.starts_with("tokenizer.") || k == "general.name")
        .cloned()
        .collect()
}

/// llama.cpp's `tokenizer.ggml.pre` for a `tokenizer.json` pre-tokenizer: `smollm`
/// (single digits, then byte-level), `llama-bpe` (the Llama 3 regex, digits in threes),
/// `qwen2` (the Qwen2 regex, single digits), `gpt-2` (byte-level alone).
fn pre_tokenizer_name(pre: &Json) -> anyhow::Result<&'static str> {
    let text = pre.to_string();
    let has = |s: &str| text.contains(s);
    if !has("\"ByteLevel\"") {
        bail!("the pre-tokenizer is not byte-level: {}", first(&text));
    }
    if has("\"Digits\"") && has("\"individual_digits\":true") && !has("\"Split\"") {
        return Ok("smollm");
    }
    if has(r"\\p{N}{1,3}") {
        return Ok("llama-bpe");
    }
    if has(r"\\p{N}|") {
        return Ok("qwen2");
    }
    if !has("\"Split\"") && !has("\"Digits\"") {
        return Ok("gpt-2");
    }
    bail!(
        "no llama.cpp pre-tokenizer matches {} (known: smollm, llama-bpe, qwen2, gpt-2)",
        first(&text)
    )
}

fn first(s: &str) -> String {
    s.chars().take(300).collect()
}

/// A special token of `tokenizer_config.json`: a string or `{"content": …}`.
fn special(config: &Json, key: &str) -> Option<String> {
    match config.get(key)? {
        Json::String(s) => Some(s.clone()),
        Json::Object(o) => o.get("content")?.as_str().map(str::to_string),
        _ => None,
    }
}

/// The `tokenizer.*` keys llama.cpp needs, built from a Hugging Face directory's
/// `tokenizer.json` / `tokenizer_config.json` (and chat template), as llama.cpp's
/// `convert_hf_to_gguf.py` does for byte-level BPE: tokens by id (gaps and ids up to
/// `vocab_size` filled with unused `[PADn]`), token types (added special tokens are
/// control, other added tokens user-defined), merges as `"left right"`, bos / eos /
/// padding ids, `add_bos_token`, the chat template. `None` when the directory has no
/// `tokenizer.json` (the file then serves only foil, which reads `vocab_size`).
pub fn tokenizer_metadata_from_dir(
    dir: &Path,
    config: &HfConfig,
) -> anyhow::Result<Option<Vec<(String, Value)>>> {
    let tok_path = dir.join("tokenizer.json");
    if !tok_path.is_file() {
        return Ok(None);
    }
    let read = |p: &Path| -> anyhow::Result<Json> {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", p.display()))
    };
    let tj = read(&tok_path)?;
    let at = |e: anyhow::Error| e.context(format!("GGUF export of {}", tok_path.display()));
    let model = tj.get("model").context("no `model`").map_err(at)?;
    let ty = model.get("type").and_then(Json::as_str).unwrap_or("");
    if ty != "BPE" || model.get("byte_fallback").and_then(Json::as_bool) == Some(true) {
        return Err(at(anyhow::anyhow!(
            "model.type is {ty:?}{}: only byte-level BPE (llama.cpp's `gpt2`) is exported",
            if ty == "BPE" {
                " with byte_fallback"
            } else {
                ""
            }
        )));
    }
    let pre = pre_tokenizer_name(tj.get("pre_tokenizer").unwrap_or(&Json::Null)).map_err(at)?;

    let mut by_id: BTreeMap<usize, (String, i32)> = BTreeMap::new();
    let vocab = model
        .get("vocab")
        .and_then(Json::as_object)
        .context("model.vocab is not an object")
        .map_err(at)?;
    for (tok, id) in vocab {
        let id = id
            .as_u64()
            .with_context(|| format!("model.vocab[{tok:?}] is not an id"))
            .map_err(at)? as usize;
        by_id.insert(id, (tok.clone(), TOKEN_TYPE_NORMAL));
    }
    for added in tj
        .get("added_tokens")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(id), Some(content)) = (
            added.get("id").and_then(Json::as_u64),
            added.get("content").and_then(Json::as_str),
        ) else {
            return Err(at(anyhow::anyhow!(
                "an added_tokens entry lacks id or content"
            )));
        };
        let special = added
            .get("special")
            .and_then(Json::as_bool)
            .unwrap_or(false);
        let ty = if special {
            TOKEN_TYPE_CONTROL
        } else {
            TOKEN_TYPE_USER_DEFINED
        };
        by_id.insert(id as usize, (content.to_string(), ty));
    }
    let n = config
        .vocab_size
        .max(by_id.keys().next_back().map_or(0, |&m| m + 1));
    ensure!(
        n == config.vocab_size,
        "GGUF export: {} has id {} but the model's vocab_size is {}",
        tok_path.display(),
        n - 1,
        config.vocab_size
    );
    let (mut tokens, mut types) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let (t, ty) = by_id
            .remove(&i)
            .unwrap_or_else(|| (format!("[PAD{i}]"), TOKEN_TYPE_UNUSED));
        tokens.push(t);
        types.push(ty);
    }
    let merges: Vec<String> = model
        .get("merges")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .map(|m| match m {
            Json::String(s) => Ok(s.clone()),
            Json::Array(p) if p.len() == 2 => match (p[0].as_str(), p[1].as_str()) {
                (Some(a), Some(b)) => Ok(format!("{a} {b}")),
                _ => bail!("merge {m} is not two strings"),
            },
            other => bail!("merge {other} is neither \"a b\" nor [a, b]"),
        })
        .collect::<anyhow::Result<_>>()
        .map_err(at)?;

    let cfg_path = dir.join("tokenizer_config.json");
    let cfg = if cfg_path.is_file() {
        read(&cfg_path)?
    } else {
        Json::Null
    };
    let id_of = |name: Option<String>| -> Option<u32> {
        let name = name?;
        tokens.iter().position(|t| *t == name).map(|i| i as u32)
    };
    let bos = id_of(special(&cfg, "bos_token")).or(config.bos_token_id);
    let eos = id_of(special(&cfg, "eos_token")).or(config.eos_token_ids.first().copied());
    let pad = id_of(special(&cfg, "pad_token")).or(eos);
    let add_bos = cfg
        .get("add_bos_token")
        .and_then(Json::as_bool)
        .unwrap_or(false);
    let template = foil_tokenizers::HfTokenizer::from_dir(dir)
        .ok()
        .and_then(|t| t.chat_template().map(|c| c.source().to_string()));

    let mut m: Vec<(String, Value)> = vec![
        ("tokenizer.ggml.model".into(), "gpt2".into()),
        ("tokenizer.ggml.pre".into(), pre.into()),
        ("tokenizer.ggml.tokens".into(), Value::str_array(tokens)),
        ("tokenizer.ggml.token_type".into(), types.into()),
        ("tokenizer.ggml.merges".into(), Value::str_array(merges)),
    ];
    for (key, id) in [
        ("tokenizer.ggml.bos_token_id", bos),
        ("tokenizer.ggml.eos_token_id", eos),
        ("tokenizer.ggml.padding_token_id", pad),
    ] {
        if let Some(id) = id {
            m.push((key.into(), id.into()));
        }
    }
    m.push(("tokenizer.ggml.add_bos_token".into(), add_bos.into()));
    if let Some(t) = template {
        m.push(("tokenizer.chat_template".into(), t.into()));
    }
    Ok(Some(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permute_inverts_unpermute() {
        // one head of 4 rows (m = 2): HF rows [h0 h1 h2 h3] go to GGUF rows
        // 2a+b for HF row b·m+a: h0→0, h2→1, h1→2, h3→3
        assert_eq!(
            permute(&[0.0, 1.0, 2.0, 3.0], 4, 1, 1),
            vec![0.0, 2.0, 1.0, 3.0]
        );
        let data: Vec<f32> = (0..48).map(|x| x as f32).collect();
        for heads in [1, 2, 3] {
            let rows = 48 / 2 / heads * heads;
            let d = &data[..rows * 2];
            let back = super::super::gguf::unpermute(&permute(d, rows, 2, heads), rows, 2, heads);
            assert_eq!(back, d, "heads {heads}");
        }
    }

    #[test]
    fn transpose_by_hand() {
        // [[0 1 2] [3 4 5]] → [[0 3] [1 4] [2 5]]
        assert_eq!(
            transpose(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0], 2, 3),
            vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
        );
        // across tile edges: element (r, c) lands at (c, r)
        let (rows, cols) = (37, 70);
        let data: Vec<f32> = (0..rows * cols).map(|x| x as f32).collect();
        let t = transpose(&data, rows, cols);
        for r in 0..rows {
            for c in 0..cols {
                assert_eq!(t[c * rows + r], data[r * cols + c]);
            }
        }
    }

    #[test]
    fn pre_tokenizer_names_follow_the_splits() {
        let smollm = serde_json::json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true},
            {"type": "ByteLevel", "add_prefix_space": false}]});
        assert_eq!(pre_tokenizer_name(&smollm).unwrap(), "smollm");
        let gpt2 = serde_json::json!({"type": "ByteLevel", "add_prefix_space": false});
        assert_eq!(pre_tokenizer_name(&gpt2).unwrap(), "gpt-2");
        let llama3 = serde_json::json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "(?i:'s|'t)|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+"}},
            {"type": "ByteLevel"}]});
        assert_eq!(pre_tokenizer_name(&llama3).unwrap(), "llama-bpe");
        let qwen = serde_json::json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "(?i:'s|'t)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+"}},
            {"type": "ByteLevel"}]});
        assert_eq!(pre_tokenizer_name(&qwen).unwrap(), "qwen2");
        let meta = serde_json::json!({"type": "Metaspace"});
        assert!(
            pre_tokenizer_name(&meta)
                .unwrap_err()
                .to_string()
                .contains("not byte-level")
        );
    }
}
