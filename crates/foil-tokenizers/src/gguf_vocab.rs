//! The tokenizer entries of a GGUF file's metadata (llama.cpp's `tokenizer.ggml.*` keys),
//! gathered in one struct so that building a tokenizer needs no GGUF reader.
//!
//! The GGUF reader (`foil-gguf`, wired in `foil-models`) fills it;
//! [`HfTokenizer::from_gguf_vocab`](crate::HfTokenizer::from_gguf_vocab) turns it into a
//! tokenizer. Key names and token-type codes are llama.cpp's (`gguf-py/gguf/constants.py`:
//! `TokenType`).

use serde::{Deserialize, Serialize};

/// llama.cpp token type: a normal token.
pub const TOKEN_TYPE_NORMAL: i32 = 1;
/// llama.cpp token type: the unknown token.
pub const TOKEN_TYPE_UNKNOWN: i32 = 2;
/// llama.cpp token type: a control (special) token such as `<|im_end|>`.
pub const TOKEN_TYPE_CONTROL: i32 = 3;
/// llama.cpp token type: a user-defined token, matched whole in text but not special.
pub const TOKEN_TYPE_USER_DEFINED: i32 = 4;
/// llama.cpp token type: unused.
pub const TOKEN_TYPE_UNUSED: i32 = 5;
/// llama.cpp token type: a byte token `<0xNN>` of a SentencePiece vocabulary.
pub const TOKEN_TYPE_BYTE: i32 = 6;

/// A GGUF file's tokenizer metadata.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GgufVocab {
    /// `tokenizer.ggml.model`: `"gpt2"` (byte-level BPE) or `"llama"` (SentencePiece BPE
    /// with byte fallback).
    pub model: String,
    /// `tokenizer.ggml.pre`: the pre-tokenizer (`"llama-bpe"`, `"qwen2"`, `"smollm"`, …).
    pub pre: Option<String>,
    /// `tokenizer.ggml.tokens`, indexed by id.
    pub tokens: Vec<String>,
    /// `tokenizer.ggml.token_type` (the `TOKEN_TYPE_*` codes); empty when absent.
    pub token_types: Vec<i32>,
    /// `tokenizer.ggml.scores`; empty when absent.
    pub scores: Vec<f32>,
    /// `tokenizer.ggml.merges`, each `"left right"`; empty when absent.
    pub merges: Vec<String>,
    /// `tokenizer.ggml.bos_token_id`.
    pub bos_id: Option<u32>,
    /// `tokenizer.ggml.eos_token_id`.
    pub eos_id: Option<u32>,
    /// `tokenizer.ggml.padding_token_id`.
    pub pad_id: Option<u32>,
    /// `tokenizer.ggml.unknown_token_id`.
    pub unk_id: Option<u32>,
    /// `tokenizer.ggml.add_bos_token`.
    pub add_bos: Option<bool>,
    /// `tokenizer.chat_template`.
    pub chat_template: Option<String>,
}
