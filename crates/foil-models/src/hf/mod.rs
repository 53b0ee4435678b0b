//! Pretrained decoders in the Hugging Face layout: Llama 1/2/3, Qwen2/2.5, Mistral and
//! SmolLM, loaded from a transformers directory (safetensors, sharded or not) or a GGUF
//! file, trained whole or through LoRA adapters, and exported back as a directory that
//! transformers and vLLM load.
//!
//! | file | what |
//! |---|---|
//! | `config.rs` | `config.json` → [`HfConfig`], clear errors for what is not implemented |
//! | `rope.rs` | rotary embeddings (HF half layout, per-row positions, llama3 scaling) |
//! | `decoder.rs` | RMSNorm, grouped-query attention, SwiGLU, KV cache |
//! | `lora.rs` | LoRA adapters, merge, base-as-reference |
//! | `weights.rs` | safetensors in/out through burn-store (keys, layout, dtype, shards) |
//! | `gguf.rs` | GGUF metadata, dequantised tensors and vocabulary → the same model |
//! | `gguf_export.rs` | the model → a GGUF file llama.cpp serves (inverse of `gguf.rs`) |
//! | `cast.rs` | f32 ↔ bf16 parameters |
//! | `parity.rs` | logits vs transformers on a fixture checkpoint (tests, `foil selftest`) |
//! | `policy.rs` | the `hf` recipe part |

pub mod cast;
pub mod config;
pub mod decoder;
pub mod gguf;
pub mod gguf_export;
pub mod lora;
pub mod parity;
pub mod policy;
pub mod rope;
pub mod weights;

pub use config::{Family, HfConfig, RopeScaling};
pub use decoder::HfDecoder;
pub use lora::LoraConfig;
