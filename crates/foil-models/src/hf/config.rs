//! `config.json` of a Hugging Face decoder (Llama 1/2/3, Qwen2/2.5, Mistral, SmolLM) read
//! into the few numbers the decoder needs, with a clear error for anything it does not
//! implement.
//!
//! Both config layouts of transformers are accepted: `rope_theta` + `rope_scaling`
//! (transformers 4) and `rope_parameters` (transformers 5).

use std::path::Path;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The families one implementation covers. They differ only in biases and defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Llama,
    Qwen2,
    Mistral,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Llama => "llama",
            Family::Qwen2 => "qwen2",
            Family::Mistral => "mistral",
        }
    }
}

/// How rotary frequencies are rescaled for long contexts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RopeScaling {
    /// `θ_i = base^{-2i/d}`.
    Default,
    /// Position interpolation: `θ_i / factor`.
    Linear { factor: f64 },
    /// Llama 3's frequency-dependent rescaling (Meta 2024, `_compute_llama3_parameters`).
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position_embeddings: f64,
    },
}

/// The decoder's hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HfConfig {
    pub family: Family,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: RopeScaling,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    /// Biases on q/k/v (always on for Qwen2, `attention_bias` for Llama).
    pub qkv_bias: bool,
    /// Bias on the attention output projection (`attention_bias` for Llama).
    pub o_bias: bool,
    /// Biases in the MLP (`mlp_bias` for Llama).
    pub mlp_bias: bool,
    /// Sliding attention window, if the model uses one (longer sequences are refused).
    pub sliding_window: Option<usize>,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
}

impl HfConfig {
    /// Reads `dir/config.json`.
    pub fn from_dir(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let json: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", path.display()))?;
        Self::from_json(&json).with_context(|| format!("in {}", path.display()))
    }

    /// Parses a `config.json` value.
    pub fn from_json(j: &Value) -> anyhow::Result<Self> {
        let model_type = j
            .get("model_type")
            .and_then(Value::as_str)
            .context("field `model_type` is missing")?;
        let family = match model_type {
            "llama" => Family::Llama,
            "qwen2" => Family::Qwen2,
            "mistral" => Family::Mistral,
            other => bail!(
                "model_type `{other}` is not supported; foil's decoder implements llama, qwen2 \
                 and mistral (SmolLM is llama)"
            ),
        };
        let usize_field = |name: &str| -> anyhow::Result<Option<usize>> {
            match j.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_u64()
                    .map(|x| Some(x as usize))
                    .with_context(|| format!("field `{name}` must be a non-negative integer")),
            }
        };
        let need = |name: &str| -> anyhow::Result<usize> {
            usize_field(name)?.with_context(|| format!("field `{name}` is missing"))
        };
        let f64_field = |name: &str| -> anyhow::Result<Option<f64>> {
            match j.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_f64()
                    .map(Some)
                    .with_context(|| format!("field `{name}` must be a number")),
            }
        };
        let bool_field = |name: &str, default: bool| -> anyhow::Result<bool> {
            match j.get(name) {
                None | Some(Value::Null) => Ok(default),
                Some(v) => v
                    .as_bool()
                    .with_context(|| format!("field `{name}` must be true or false")),
            }
        };
        let hidden_size = need("hidden_size")?;
        let heads = need("num_attention_heads")?;
        let kv_heads = usize_field("num_key_value_heads")?.unwrap_or(heads);
        anyhow::ensure!(
            heads > 0 && kv_heads > 0 && heads.is_multiple_of(kv_heads),
            "num_attention_heads ({heads}) must be a positive multiple of num_key_value_heads \
             ({kv_heads})"
        );
        let head_dim = usize_field("head_dim")?.unwrap_or(hidden_size / heads.max(1));
        anyhow::ensure!(
            head_dim > 0 && head_dim.is_multiple_of(2),
            "head_dim ({head_dim}) must be even and positive"
        );
        if let Some(act) = j.get("hidden_act").and_then(Value::as_str)
            && act != "silu"
        {
            bail!("hidden_act `{act}` is not supported (only silu, i.e. SwiGLU)");
        }
        if bool_field("use_qk_norm", false)? {
            bail!("use_qk_norm is not supported");
        }
        // transformers 5 moves rope settings into `rope_parameters`
        let rope = j.get("rope_parameters").filter(|v| !v.is_null());
        let rope_theta = rope
            .and_then(|r| r.get("rope_theta"))
            .and_then(Value::as_f64)
            .or(f64_field("rope_theta")?)
            .unwrap_or(10_000.0);
        let scaling = rope.or(j.get("rope_scaling")).filter(|v| !v.is_null());
        let rope_scaling = match scaling {
            None => RopeScaling::Default,
            Some(s) => {
                let kind = s
                    .get("rope_type")
                    .or(s.get("type"))
                    .and_then(Value::as_str)
                    .unwrap_or("default");
                let num = |name: &str| -> anyhow::Result<f64> {
                    s.get(name)
                        .and_then(Value::as_f64)
                        .with_context(|| format!("rope scaling `{kind}` needs `{name}`"))
                };
                match kind {
                    "default" => RopeScaling::Default,
                    "linear" => RopeScaling::Linear {
                        factor: num("factor")?,
                    },
                    "llama3" => RopeScaling::Llama3 {
                        factor: num("factor")?,
                        low_freq_factor: num("low_freq_factor")?,
                        high_freq_factor: num("high_freq_factor")?,
                        original_max_position_embeddings: num("original_max_position_embeddings")?,
                    },
                    other => bail!(
                        "rope scaling `{other}` is not supported (default, linear, llama3 are)"
                    ),
                }
            }
        };
        let attention_bias = bool_field("attention_bias", false)?;
        let (qkv_bias, o_bias, mlp_bias) = match family {
            Family::Qwen2 => (true, false, false),
            Family::Llama => (
                attention_bias,
                attention_bias,
                bool_field("mlp_bias", false)?,
            ),
            Family::Mistral => (false, false, false),
        };
        let sliding_window = match family {
            Family::Qwen2 if !bool_field("use_sliding_window", false)? => None,
            _ => usize_field("sliding_window")?,
        };
        let eos_token_ids = match j.get("eos_token_id") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_u64())
                .map(|v| v as u32)
                .collect(),
            Some(v) => v.as_u64().map(|v| vec![v as u32]).unwrap_or_default(),
        };
        Ok(Self {
            family,
            vocab_size: need("vocab_size")?,
            hidden_size,
            intermediate_size: need("intermediate_size")?,
            num_hidden_layers: need("num_hidden_layers")?,
            num_attention_heads: heads,
            num_key_value_heads: kv_heads,
            head_dim,
            rms_norm_eps: f64_field("rms_norm_eps")?.unwrap_or(1e-6),
            rope_theta,
            rope_scaling,
            max_position_embeddings: usize_field("max_position_embeddings")?.unwrap_or(2048),
            tie_word_embeddings: bool_field("tie_word_embeddings", family == Family::Qwen2)?,
            qkv_bias,
            o_bias,
            mlp_bias,
            sliding_window,
            bos_token_id: usize_field("bos_token_id")?.map(|v| v as u32),
            eos_token_ids,
        })
    }

    /// The `config.json` that transformers (and vLLM) load for this configuration.
    pub fn to_json(&self) -> Value {
        let mut j = serde_json::json!({
            "architectures": [match self.family {
                Family::Llama => "LlamaForCausalLM",
                Family::Qwen2 => "Qwen2ForCausalLM",
                Family::Mistral => "MistralForCausalLM",
            }],
            "model_type": self.family.as_str(),
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "max_position_embeddings": self.max_position_embeddings,
            "tie_word_embeddings": self.tie_word_embeddings,
            "torch_dtype": "float32",
        });
        let o = j.as_object_mut().expect("object");
        match &self.rope_scaling {
            RopeScaling::Default => {}
            RopeScaling::Linear { factor } => {
                o.insert(
                    "rope_scaling".into(),
                    serde_json::json!({"rope_type": "linear", "factor": factor}),
                );
            }
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            } => {
                o.insert(
                    "rope_scaling".into(),
                    serde_json::json!({
                        "rope_type": "llama3",
                        "factor": factor,
                        "low_freq_factor": low_freq_factor,
                        "high_freq_factor": high_freq_factor,
                        "original_max_position_embeddings": original_max_position_embeddings,
                    }),
                );
            }
        }
        if self.family == Family::Llama {
            o.insert("attention_bias".into(), self.qkv_bias.into());
            o.insert("mlp_bias".into(), self.mlp_bias.into());
        }
        if let Some(w) = self.sliding_window {
            o.insert("sliding_window".into(), w.into());
            if self.family == Family::Qwen2 {
                o.insert("use_sliding_window".into(), true.into());
            }
        }
        if let Some(b) = self.bos_token_id {
            o.insert("bos_token_id".into(), b.into());
        }
        match self.eos_token_ids.as_slice() {
            [] => {}
            [e] => {
                o.insert("eos_token_id".into(), (*e).into());
            }
            many => {
                o.insert("eos_token_id".into(), many.to_vec().into());
            }
        }
        j
    }

    /// Scalar parameters of the network.
    pub fn num_params(&self) -> usize {
        let (d, f, v) = (self.hidden_size, self.intermediate_size, self.vocab_size);
        let q = self.num_attention_heads * self.head_dim;
        let kv = self.num_key_value_heads * self.head_dim;
        let bias = if self.qkv_bias { q + 2 * kv } else { 0 }
            + if self.o_bias { d } else { 0 }
            + if self.mlp_bias { 2 * f + d } else { 0 };
        let layer = d * (q + 2 * kv) + q * d + 3 * d * f + 2 * d + bias;
        v * d
            + self.num_hidden_layers * layer
            + d
            + if self.tie_word_embeddings { 0 } else { v * d }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn llama() -> Value {
        json!({
            "model_type": "llama", "vocab_size": 100, "hidden_size": 64,
            "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
            "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                             "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
            "eos_token_id": [1, 2], "tie_word_embeddings": false
        })
    }

    #[test]
    fn reads_a_llama3_config() {
        let c = HfConfig::from_json(&llama()).unwrap();
        assert_eq!(c.family, Family::Llama);
        assert_eq!(c.head_dim, 16); // 64 / 4
        assert_eq!(c.num_key_value_heads, 2);
        assert_eq!(c.rope_theta, 500000.0);
        assert!(matches!(c.rope_scaling, RopeScaling::Llama3 { factor, .. } if factor == 8.0));
        assert_eq!(c.eos_token_ids, vec![1, 2]);
        assert!(!c.qkv_bias && !c.tie_word_embeddings);
    }

    #[test]
    fn reads_transformers5_rope_parameters() {
        let j = json!({
            "model_type": "qwen2", "vocab_size": 100, "hidden_size": 64,
            "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
            "sliding_window": 32, "use_sliding_window": false
        });
        let c = HfConfig::from_json(&j).unwrap();
        assert_eq!(c.rope_theta, 1e6);
        assert_eq!(c.rope_scaling, RopeScaling::Default);
        assert!(c.qkv_bias && c.tie_word_embeddings);
        assert_eq!(c.sliding_window, None);
    }

    #[test]
    fn round_trips_through_json() {
        let c = HfConfig::from_json(&llama()).unwrap();
        assert_eq!(HfConfig::from_json(&c.to_json()).unwrap(), c);
    }

    #[test]
    fn unsupported_configs_are_clear_errors() {
        let mut j = llama();
        j["model_type"] = json!("gemma");
        let e = format!("{:#}", HfConfig::from_json(&j).unwrap_err());
        assert!(e.contains("model_type `gemma` is not supported"), "{e}");
        let mut j = llama();
        j["hidden_act"] = json!("gelu");
        let e = format!("{:#}", HfConfig::from_json(&j).unwrap_err());
        assert!(e.contains("hidden_act `gelu`"), "{e}");
        let mut j = llama();
        j["rope_scaling"] = json!({"rope_type": "yarn", "factor": 4.0});
        let e = format!("{:#}", HfConfig::from_json(&j).unwrap_err());
        assert!(e.contains("rope scaling `yarn` is not supported"), "{e}");
        let mut j = llama();
        j.as_object_mut().unwrap().remove("hidden_size");
        let e = format!("{:#}", HfConfig::from_json(&j).unwrap_err());
        assert!(e.contains("`hidden_size` is missing"), "{e}");
    }

    #[test]
    fn counts_parameters_like_transformers() {
        // SmolLM2-135M: d 576, ffn 1536, 30 layers, 9 heads / 3 kv heads (head 64),
        // vocab 49152, tied: 49152·576 + 30·(576·(576+2·192) + 576·576 + 3·576·1536
        // + 2·576) + 576 = 134,515,008 (transformers reports 134,515,008)
        let j = json!({
            "model_type": "llama", "vocab_size": 49152, "hidden_size": 576,
            "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9,
            "num_key_value_heads": 3, "tie_word_embeddings": true
        });
        assert_eq!(HfConfig::from_json(&j).unwrap().num_params(), 134_515_008);
    }
}
