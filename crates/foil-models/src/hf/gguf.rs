//! A GGUF file (llama.cpp's format) as a Hugging Face checkpoint: hyper-parameters from
//! its metadata, tensors dequantised to f32 and renamed to transformers' keys, and the
//! tokenizer from its `tokenizer.ggml.*` entries.
//!
//! llama.cpp's converter permutes the rows of Llama's `q`/`k` projections so that rotary
//! pairs are adjacent (interleaved layout); transformers' GGUF loader undoes it with
//! `reverse_permute_weights`, and so do we: within each head of `2m` rows, GGUF row
//! `2a + b` is Hugging Face row `b·m + a`.

use anyhow::{Context, bail};
use foil_gguf::GgufFile;
use foil_tokenizers::GgufVocab;
use serde_json::json;

use super::config::{Family, HfConfig};

/// The decoder configuration in the GGUF metadata (`{arch}.block_count`, …).
pub fn config(file: &GgufFile) -> anyhow::Result<HfConfig> {
    let arch = file
        .get_str("general.architecture")
        .context("GGUF metadata lacks general.architecture")?
        .to_string();
    let model_type = match arch.as_str() {
        "llama" | "qwen2" | "mistral" => arch.clone(),
        other => bail!("GGUF architecture `{other}` is not supported (llama, qwen2, mistral are)"),
    };
    let key = |k: &str| format!("{arch}.{k}");
    let num = |k: &str| -> anyhow::Result<u64> {
        file.get_u64(&key(k))
            .with_context(|| format!("GGUF metadata lacks {}", key(k)))
    };
    let heads = num("attention.head_count")?;
    let kv_heads = file
        .get_u64(&key("attention.head_count_kv"))
        .unwrap_or(heads);
    let hidden = num("embedding_length")?;
    let vocab = match file.get_u64(&key("vocab_size")) {
        Some(v) => v,
        None => file
            .get_str_array("tokenizer.ggml.tokens")
            .map(|t| t.len() as u64)
            .context("GGUF metadata has neither a vocab_size nor tokenizer.ggml.tokens")?,
    };
    let tied = !file.tensors().iter().any(|t| t.name == "output.weight");
    let mut j = json!({
        "model_type": model_type,
        "vocab_size": vocab,
        "hidden_size": hidden,
        "intermediate_size": num("feed_forward_length")?,
        "num_hidden_layers": num("block_count")?,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "rms_norm_eps": file.get_f64(&key("attention.layer_norm_rms_epsilon")).unwrap_or(1e-5),
        "rope_theta": file.get_f64(&key("rope.freq_base")).unwrap_or(10000.0),
        "max_position_embeddings": file.get_u64(&key("context_length")).unwrap_or(2048),
        "tie_word_embeddings": tied,
        "hidden_act": "silu",
    });
    if let Some(d) = file.get_u64(&key("rope.dimension_count")) {
        j["head_dim"] = json!(d);
    }
    if let Some(f) = file.get_f64(&key("rope.scaling.factor"))
        && file.get_str(&key("rope.scaling.type")) == Some("linear")
    {
        j["rope_scaling"] = json!({"rope_type": "linear", "factor": f});
    }
    if let Some(b) = file.get_u64("tokenizer.ggml.bos_token_id") {
        j["bos_token_id"] = json!(b);
    }
    if let Some(e) = file.get_u64("tokenizer.ggml.eos_token_id") {
        j["eos_token_id"] = json!(e);
    }
    if arch == "llama" && file.tensors().iter().any(|t| t.name == "blk.0.attn_q.bias") {
        j["attention_bias"] = json!(true);
    }
    HfConfig::from_json(&j).context("reading the GGUF hyper-parameters")
}

/// The tokenizer entries of the GGUF metadata.
pub fn vocab(file: &GgufFile) -> anyhow::Result<GgufVocab> {
    let id = |k: &str| file.get_u64(k).map(|v| v as u32);
    Ok(GgufVocab {
        model: file
            .get_str("tokenizer.ggml.model")
            .context("GGUF metadata lacks tokenizer.ggml.model")?
            .to_string(),
        pre: file.get_str("tokenizer.ggml.pre").map(str::to_string),
        tokens: file
            .get_str_array("tokenizer.ggml.tokens")
            .context("GGUF metadata lacks tokenizer.ggml.tokens")?
            .into_iter()
            .map(str::to_string)
            .collect(),
        token_types: file
            .get_i64_array("tokenizer.ggml.token_type")
            .map(|v| v.into_iter().map(|x| x as i32).collect())
            .unwrap_or_default(),
        scores: file
            .get_f64_array("tokenizer.ggml.scores")
            .map(|v| v.into_iter().map(|x| x as f32).collect())
            .unwrap_or_default(),
        merges: file
            .get_str_array("tokenizer.ggml.merges")
            .map(|m| m.into_iter().map(str::to_string).collect())
            .unwrap_or_default(),
        bos_id: id("tokenizer.ggml.bos_token_id"),
        eos_id: id("tokenizer.ggml.eos_token_id"),
        pad_id: id("tokenizer.ggml.padding_token_id"),
        unk_id: id("tokenizer.ggml.unknown_token_id"),
        add_bos: file.get_bool("tokenizer.ggml.add_bos_token"),
        chat_template: file.get_str("tokenizer.chat_template").map(str::to_string),
    })
}

/// Tensor names of the whole model: (llama.cpp, transformers).
const MODEL_NAMES: [(&str, &str); 3] = [
    ("token_embd.weight", "model.embed_tokens.weight"),
    ("output_norm.weight", "model.norm.weight"),
    ("output.weight", "lm_head.weight"),
];

/// Module names within layer N (`blk.N.` / `model.layers.N.`): (llama.cpp, transformers).
const LAYER_NAMES: [(&str, &str); 9] = [
    ("attn_q", "self_attn.q_proj"),
    ("attn_k", "self_attn.k_proj"),
    ("attn_v", "self_attn.v_proj"),
    ("attn_output", "self_attn.o_proj"),
    ("ffn_gate", "mlp.gate_proj"),
    ("ffn_up", "mlp.up_proj"),
    ("ffn_down", "mlp.down_proj"),
    ("attn_norm", "input_layernorm"),
    ("ffn_norm", "post_attention_layernorm"),
];

/// The GGUF architecture a family is stored as (Mistral as `llama`, as llama.cpp's
/// converter writes it).
pub fn architecture(family: Family) -> &'static str {
    match family {
        Family::Llama | Family::Mistral => "llama",
        Family::Qwen2 => "qwen2",
    }
}

/// The heads whose rows llama.cpp permutes: the q and k weights of the `llama`
/// architecture (`None` for everything else).
fn rotary_heads(gguf_module: &str, kind: &str, config: &HfConfig) -> Option<usize> {
    if architecture(config.family) != "llama" || kind != "weight" {
        return None;
    }
    match gguf_module {
        "attn_q" => Some(config.num_attention_heads),
        "attn_k" => Some(config.num_key_value_heads),
        _ => None,
    }
}

/// The name of a tensor on the other side of [`MODEL_NAMES`] / [`LAYER_NAMES`], and its
/// rotary heads. `to_gguf`: `name` is a transformers key; otherwise a GGUF name.
pub(super) fn rename(
    name: &str,
    to_gguf: bool,
    config: &HfConfig,
) -> Option<(String, Option<usize>)> {
    // (this side's name, the other side's name)
    let from = |pair: &(&'static str, &'static str)| -> (&'static str, &'static str) {
        if to_gguf {
            (pair.1, pair.0)
        } else {
            (pair.0, pair.1)
        }
    };
    if let Some(pair) = MODEL_NAMES.iter().find(|p| from(p).0 == name) {
        return Some((from(pair).1.to_string(), None));
    }
    let (prefix, out_prefix) = if to_gguf {
        ("model.layers.", "blk.")
    } else {
        ("blk.", "model.layers.")
    };
    let rest = name.strip_prefix(prefix)?;
    let (layer, part) = rest.split_once('.')?;
    let (module, kind) = part.rsplit_once('.')?;
    let pair = LAYER_NAMES.iter().find(|p| from(p).0 == module)?;
    let heads = rotary_heads(pair.0, kind, config);
    Some((
        format!("{out_prefix}{layer}.{}.{kind}", from(pair).1),
        heads,
    ))
}

/// The transformers key of a GGUF tensor name, and whether its rows need llama's
/// rotary un-permutation (`Some(heads)`).
fn hf_key(name: &str, config: &HfConfig) -> Option<(String, Option<usize>)> {
    rename(name, false, config)
}

/// llama.cpp's q/k row order: within each head of `2m` rows, Hugging Face row `b·m + a`
/// is GGUF row `2a + b` (`LlamaModel.permute` of its converter). `to_gguf` applies it,
/// otherwise it is undone.
fn rotary_rows(data: &[f32], rows: usize, cols: usize, heads: usize, to_gguf: bool) -> Vec<f32> {
    let per_head = rows / heads;
    let m = per_head / 2;
    let mut out = vec![0.0; data.len()];
    for h in 0..heads {
        for a in 0..m {
            for b in 0..2 {
                let hf = (h * per_head + b * m + a) * cols;
                let gguf = (h * per_head + 2 * a + b) * cols;
                let (src, dst) = if to_gguf { (hf, gguf) } else { (gguf, hf) };
                out[dst..dst + cols].copy_from_slice(&data[src..src + cols]);
            }
        }
    }
    out
}

/// Undoes llama.cpp's q/k row permutation: rows `[heads, m, 2, cols]` → `[heads, 2, m, cols]`.
pub fn unpermute(data: &[f32], rows: usize, cols: usize, heads: usize) -> Vec<f32> {
    rotary_rows(data, rows, cols, heads, false)
}

/// llama.cpp's q/k row permutation: rows `[heads, 2, m, cols]` → `[heads, m, 2, cols]`.
pub fn permute(data: &[f32], rows: usize, cols: usize, heads: usize) -> Vec<f32> {
    rotary_rows(data, rows, cols, heads, true)
}

/// Every tensor of the file, dequantised and renamed, as one safetensors buffer (f32).
pub fn to_safetensors(file: &GgufFile, config: &HfConfig) -> anyhow::Result<Vec<u8>> {
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for info in file.tensors() {
        let Some((key, permute)) = hf_key(&info.name, config) else {
            // rotary frequency tables and the like are recomputed, not loaded
            continue;
        };
        let (shape, mut data) = file
            .tensor_f32(&info.name)
            .with_context(|| format!("dequantising {}", info.name))?;
        if let Some(heads) = permute {
            anyhow::ensure!(
                shape.len() == 2 && shape[0] % (2 * heads) == 0,
                "{}: shape {shape:?} does not split into {heads} rotary heads",
                info.name
            );
            data = unpermute(&data, shape[0], shape[1], heads);
        }
        let bytes = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        tensors.push((key, shape, bytes));
    }
    let views = tensors
        .iter()
        .map(|(k, shape, bytes)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                .map(|v| (k.clone(), v))
        })
        .collect::<Result<Vec<_>, _>>()
        .context("building safetensors views")?;
    safetensors::serialize(views, None).context("serialising GGUF tensors")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpermute_by_hand() {
        // one head of 4 rows (m = 2), 1 column: GGUF rows [r0 r1 r2 r3] hold HF rows
        // (a=0,b=0)→0, (a=0,b=1)→2, (a=1,b=0)→1, (a=1,b=1)→3, so HF = [r0 r2 r1 r3]
        assert_eq!(
            unpermute(&[0.0, 1.0, 2.0, 3.0], 4, 1, 1),
            vec![0.0, 2.0, 1.0, 3.0]
        );
        // two heads, two columns: each head's rows reorder on their own
        let data: Vec<f32> = (0..16).map(|x| x as f32).collect();
        let out = unpermute(&data, 8, 2, 2);
        assert_eq!(&out[..8], &[0.0, 1.0, 4.0, 5.0, 2.0, 3.0, 6.0, 7.0]);
        assert_eq!(&out[8..], &[8.0, 9.0, 12.0, 13.0, 10.0, 11.0, 14.0, 15.0]);
    }
}
