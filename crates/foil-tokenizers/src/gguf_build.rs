//! Rebuilds a `tokenizer.json` from a GGUF vocabulary ([`GgufVocab`]).
//!
//! Where the behaviour comes from:
//!
//! - `gpt2` (byte-level BPE): transformers' GGUF converter
//!   (`integrations/gguf/gguf_tokenizer_mapping.py`, `byte_level_tokenizer` +
//!   `set_split_regex`): tokens respelled into the byte alphabet where needed, a `BPE`
//!   model, a `ByteLevel` decoder. The pre-tokenizer follows `tokenizer.ggml.pre` as
//!   llama.cpp does (`src/llama-vocab.cpp`, `llm_tokenizer_bpe`), which is also what the
//!   original `tokenizer.json` did: the Llama 3 / Qwen2 / GPT-4o / Tekken split regexes,
//!   one-digit splitting for `smollm` and `starcoder` (SmolLM2's own tokenizer is
//!   `Digits(individual) + ByteLevel`), the GPT-2 regex otherwise. Llama 3 and Tekken
//!   vocabularies use `ignore_merges` (a word already in the vocabulary is one token), as
//!   their `tokenizer.json` and llama.cpp do. transformers 5's converter has neither the
//!   `ignore_merges` nor the digit splitting, and so differs from the original tokenizers
//!   on some text (`"Cửa Việt"` for Llama 3, `"½"` for StarCoder); foil follows the
//!   originals (checked against llama.cpp's reference ids, `tests/gguf_refs.rs`).
//! - `llama` (SentencePiece BPE): the `tokenizer.json` of Llama 2 and Mistral 7B: `BPE`
//!   with `byte_fallback` and `fuse_unk`, sentencepiece's dummy prefix as the normalizer
//!   `Prepend("▁") + Replace(" ", "▁")` (on every piece of text between added tokens, as
//!   llama.cpp's `add_space_prefix` does), the `Replace("▁", " ") + ByteFallback + Fuse +
//!   Strip(left=1)` decoder; merges from the file, else rebuilt from the scores as
//!   transformers does (`generate_merges` of `tokenization_utils_base.py`).
//!   transformers 5 (its GGUF converter and its `LlamaTokenizer`) uses
//!   `Metaspace(prepend_scheme="first")` instead, which drops the dummy prefix before a
//!   leading space (`" Hello"` → `▁Hello`, not `▁` `▁Hello`); llama.cpp's reference ids
//!   of the original tokenizers keep it, and so does foil.
//! - Special tokens: type 3 (control) tokens are added as special tokens, type 4
//!   (user-defined) as plain added tokens, and the BOS/EOS/UNK/PAD tokens as special
//!   tokens, as transformers does (`add_gguf_special_tokens`).
//! - BOS: `tokenizer.ggml.add_bos_token`, defaulting as llama.cpp does (on for `llama`
//!   vocabularies and for the Llama 3 / Tekken pre-tokenizers, off otherwise).
//! - End of generation: EOS plus the tokens llama.cpp treats as ending generation
//!   (`<|eot_id|>`, `<|im_end|>`, `<|endoftext|>`, …) present in the vocabulary.

use std::collections::{BTreeSet, HashMap};

use anyhow::{bail, ensure};
use serde_json::{Map, Value, json};

use crate::gguf_vocab::{GgufVocab, TOKEN_TYPE_CONTROL, TOKEN_TYPE_USER_DEFINED};

/// A `tokenizer.json` document and the ids that end a response.
pub(crate) struct Built {
    pub json: Value,
    pub end_ids: BTreeSet<u32>,
}

/// Llama 3's split (its `tokenizer.json`; transformers' `_LLAMA3_SPLIT`).
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's split (transformers' `models/qwen2/tokenization_qwen2.py`).
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen3.5's split (transformers' `models/qwen3_5/tokenization_qwen3_5.py`).
const QWEN35_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Mistral's Tekken split (transformers' `_TEKKEN_SPLIT`).
const TEKKEN_SPLIT: &str = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// The GPT-4o / Llama 4 split (transformers' `_GPT4O_SPLIT`).
const GPT4O_SPLIT: &str = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// How a byte-level vocabulary splits text before BPE.
enum Split {
    /// A regex, then byte-level mapping without GPT-2's regex.
    Regex {
        pattern: &'static str,
        ignore_merges: bool,
        add_bos: bool,
    },
    /// One digit per piece, then GPT-2's regex (SmolLM, StarCoder).
    Digits,
    /// GPT-2's regex.
    Gpt2,
}

/// The pre-tokenizers known for `tokenizer.ggml.pre` (llama.cpp's names).
fn split_of(pre: Option<&str>) -> anyhow::Result<Split> {
    let regex = |pattern, ignore_merges, add_bos| Split::Regex {
        pattern,
        ignore_merges,
        add_bos,
    };
    Ok(match pre {
        Some(
            "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0"
            | "lfm2" | "jina-v5-nano",
        ) => regex(LLAMA3_SPLIT, true, true),
        Some("dbrx" | "smaug-bpe") => regex(LLAMA3_SPLIT, false, false),
        Some("qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "megrez") => {
            regex(QWEN2_SPLIT, false, false)
        }
        Some("qwen35") => regex(QWEN35_SPLIT, false, false),
        Some("tekken") => regex(TEKKEN_SPLIT, true, true),
        Some("gpt-4o" | "llama4" | "kanana2" | "minimax-m2") => regex(GPT4O_SPLIT, false, false),
        Some("smollm" | "starcoder" | "refact" | "codeshell") => Split::Digits,
        None
        | Some(
            "default" | "gpt-2" | "phi-2" | "mpt" | "olmo" | "jais" | "gpt3-finnish" | "exaone4",
        ) => Split::Gpt2,
        Some(other) => bail!(
            "GGUF tokenizer.ggml.pre {other:?} is not supported; supported: llama-bpe (Llama 3), \
             qwen2, qwen35, tekken, gpt-4o, smollm, starcoder, gpt-2, default and their aliases"
        ),
    })
}

/// GPT-2's byte ↔ printable-character table (`bytes_to_unicode`).
fn byte_alphabet() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..=255u32 {
        let printable =
            (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b);
        table[b as usize] = if printable {
            char::from_u32(b).expect("latin-1")
        } else {
            n += 1;
            char::from_u32(255 + n).expect("valid")
        };
    }
    table
}

/// The tokens llama.cpp treats as ending generation (`llama_vocab::impl::load`,
/// `special_eog_ids`), those that apply to the vocabularies foil loads.
const END_TOKENS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "<|end_of_text|>",
    "<eos>",
    "<｜end▁of▁sentence｜>",
];

fn added(id: u32, content: &str, special: bool) -> Value {
    json!({
        "id": id, "content": content, "single_word": false, "lstrip": false,
        "rstrip": false, "normalized": false, "special": special,
    })
}

fn bos_template(bos: &str, bos_id: u32) -> Value {
    json!({
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [
            {"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
            {"SpecialToken": {"id": bos, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}},
        ],
        "special_tokens": {bos: {"id": bos, "ids": [bos_id], "tokens": [bos]}},
    })
}

/// transformers' `generate_merges(vocab, vocab_scores)`: every split of every token into
/// two tokens of the vocabulary, best score first (then longer left, longer right), ties
/// in vocabulary order.
fn merges_from_scores(
    tokens: &[String],
    scores: &[f32],
    vocab: &HashMap<&str, u32>,
) -> Vec<(String, String)> {
    // `dict(zip(tokens, scores))`: first-seen order, last-seen score.
    let mut order: Vec<(&str, f32)> = Vec::with_capacity(tokens.len());
    let mut at: HashMap<&str, usize> = HashMap::with_capacity(tokens.len());
    for (t, &s) in tokens.iter().zip(scores) {
        match at.get(t.as_str()) {
            Some(&i) => order[i].1 = s,
            None => {
                at.insert(t, order.len());
                order.push((t, s));
            }
        }
    }
    let mut merges: Vec<(&str, &str, f32)> = Vec::new();
    for (token, score) in order {
        let mut local: Vec<(&str, &str, f32)> = token
            .char_indices()
            .skip(1)
            .map(|(i, _)| token.split_at(i))
            .filter(|(l, r)| vocab.contains_key(l) && vocab.contains_key(r))
            .map(|(l, r)| (l, r, score))
            .collect();
        local.sort_by_key(|(l, r, _)| (vocab[l], vocab[r]));
        merges.extend(local);
    }
    let key = |m: &(&str, &str, f32)| (m.2, m.0.chars().count(), m.1.chars().count());
    // Python's `sorted(..., reverse=True)`: descending and stable.
    merges.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        kb.0.total_cmp(&ka.0)
            .then(kb.1.cmp(&ka.1))
            .then(kb.2.cmp(&ka.2))
    });
    merges
        .into_iter()
        .map(|(l, r, _)| (l.to_string(), r.to_string()))
        .collect()
}

/// The `tokenizer.json` of `vocab`.
pub(crate) fn build(vocab: &GgufVocab) -> anyhow::Result<Built> {
    ensure!(
        !vocab.tokens.is_empty(),
        "the GGUF vocabulary has no tokens (tokenizer.ggml.tokens)"
    );
    let n = vocab.tokens.len();
    for (what, id) in [
        ("bos", vocab.bos_id),
        ("eos", vocab.eos_id),
        ("pad", vocab.pad_id),
        ("unk", vocab.unk_id),
    ] {
        if let Some(id) = id {
            ensure!(
                (id as usize) < n,
                "the GGUF {what} token id {id} is outside the vocabulary of {n} tokens"
            );
        }
    }
    let ty = |i: usize| vocab.token_types.get(i).copied().unwrap_or(1);
    let byte_level = match vocab.model.as_str() {
        "gpt2" => true,
        "llama" => false,
        other => bail!(
            "GGUF tokenizer.ggml.model {other:?} is not supported (supported: \"gpt2\", byte-level BPE; \
             \"llama\", SentencePiece BPE)"
        ),
    };

    // The spelling of each token in the model's vocabulary.
    let alphabet = byte_alphabet();
    let in_alphabet = |t: &str| t.chars().all(|c| alphabet.contains(&c));
    let spelled: Vec<String> = if byte_level {
        vocab
            .tokens
            .iter()
            .map(|t| {
                if in_alphabet(t) {
                    t.clone()
                } else {
                    t.bytes().map(|b| alphabet[b as usize]).collect()
                }
            })
            .collect()
    } else {
        vocab.tokens.clone()
    };
    let mut vocab_json = Map::with_capacity(n);
    let mut ids: HashMap<&str, u32> = HashMap::with_capacity(n);
    for (i, t) in spelled.iter().enumerate() {
        vocab_json.insert(t.clone(), json!(i));
        ids.insert(t, i as u32);
    }

    let merges: Vec<(String, String)> = if !vocab.merges.is_empty() {
        vocab
            .merges
            .iter()
            .map(|m| {
                m.split_once(' ')
                    .map(|(l, r)| (l.to_string(), r.to_string()))
                    .ok_or_else(|| {
                        anyhow::anyhow!("GGUF merge {m:?} is not two tokens separated by a space")
                    })
            })
            .collect::<anyhow::Result<_>>()?
    } else if byte_level {
        bail!("the GGUF byte-level vocabulary has no merges (tokenizer.ggml.merges)")
    } else {
        ensure!(
            vocab.scores.len() == n,
            "the GGUF vocabulary has no merges and {} scores for {n} tokens (tokenizer.ggml.scores)",
            vocab.scores.len()
        );
        merges_from_scores(&spelled, &vocab.scores, &ids)
    };
    let merges_json: Vec<Value> = merges.into_iter().map(|(l, r)| json!([l, r])).collect();

    // Added tokens: control → special; user-defined → plain; then BOS/EOS/UNK/PAD.
    let mut added_tokens: Vec<Value> = Vec::new();
    let mut added_set: BTreeSet<u32> = BTreeSet::new();
    for (i, t) in vocab.tokens.iter().enumerate() {
        if ty(i) == TOKEN_TYPE_CONTROL && (!byte_level || in_alphabet(t)) {
            let id = ids[t.as_str()];
            if added_set.insert(id) {
                added_tokens.push(added(id, t, true));
            }
        }
    }
    for (i, t) in vocab.tokens.iter().enumerate() {
        if ty(i) == TOKEN_TYPE_USER_DEFINED
            && let Some(&id) = ids.get(t.as_str())
            && added_set.insert(id)
        {
            added_tokens.push(added(id, t, false));
        }
    }
    for id in [vocab.bos_id, vocab.eos_id, vocab.unk_id, vocab.pad_id]
        .into_iter()
        .flatten()
    {
        let t = &spelled[id as usize];
        let id = ids[t.as_str()];
        if added_set.insert(id) {
            added_tokens.push(added(id, t, true));
        }
    }

    let split = if byte_level {
        Some(split_of(vocab.pre.as_deref())?)
    } else {
        None
    };
    let default_add_bos = match &split {
        None => true,
        Some(Split::Regex { add_bos, .. }) => *add_bos,
        Some(_) => false,
    };
    let add_bos = vocab.add_bos.unwrap_or(default_add_bos);
    let bos = vocab.bos_id.map(|id| (spelled[id as usize].as_str(), id));
    let bos_post = match (add_bos, bos) {
        (true, Some((t, id))) => Some(bos_template(t, id)),
        _ => None,
    };
    let unk = vocab.unk_id.map(|id| spelled[id as usize].clone());

    let json = if byte_level {
        let byte_level = |use_regex: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex});
        let (pre_tokenizer, ignore_merges) = match split.expect("byte-level") {
            Split::Regex {
                pattern,
                ignore_merges,
                ..
            } => (
                json!({"type": "Sequence", "pretokenizers": [
                    {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false},
                    byte_level(false),
                ]}),
                ignore_merges,
            ),
            Split::Digits => (
                json!({"type": "Sequence", "pretokenizers": [
                    {"type": "Digits", "individual_digits": true},
                    byte_level(true),
                ]}),
                false,
            ),
            Split::Gpt2 => (byte_level(true), false),
        };
        json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added_tokens,
            "normalizer": null,
            "pre_tokenizer": pre_tokenizer,
            "post_processor": bos_post.unwrap_or_else(|| json!({
                "type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true
            })),
            "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
            "model": {
                "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "",
                "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false,
                "ignore_merges": ignore_merges, "vocab": vocab_json, "merges": merges_json,
            },
        })
    } else {
        json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added_tokens,
            "normalizer": {"type": "Sequence", "normalizers": [
                {"type": "Prepend", "prepend": "▁"},
                {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
            ]},
            "pre_tokenizer": null,
            "post_processor": bos_post,
            "decoder": {"type": "Sequence", "decoders": [
                {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
                {"type": "ByteFallback"},
                {"type": "Fuse"},
                {"type": "Strip", "content": " ", "start": 1, "stop": 0},
            ]},
            "model": {
                "type": "BPE", "dropout": null, "unk_token": unk, "continuing_subword_prefix": null,
                "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": true,
                "ignore_merges": false, "vocab": vocab_json, "merges": merges_json,
            },
        })
    };

    let mut end_ids: BTreeSet<u32> = END_TOKENS
        .iter()
        .filter_map(|t| ids.get(t).copied())
        .collect();
    end_ids.extend(vocab.eos_id);
    Ok(Built { json, end_ids })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_alphabet_is_gpt2s() {
        let a = byte_alphabet();
        assert_eq!(a[b' ' as usize], 'Ġ');
        assert_eq!(a[b'\n' as usize], 'Ċ');
        assert_eq!(a[b'A' as usize], 'A');
        assert_eq!(a[0xad], 'Ń');
        let distinct: BTreeSet<char> = a.iter().copied().collect();
        assert_eq!(distinct.len(), 256);
    }

    #[test]
    fn merges_from_scores_ranks_like_transformers() {
        let tokens: Vec<String> = ["a", "b", "c", "ab", "bc", "abc"]
            .map(String::from)
            .to_vec();
        let scores = [0.0, 0.0, 0.0, -1.0, -2.0, -3.0];
        let ids: HashMap<&str, u32> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.as_str(), i as u32))
            .collect();
        let m = merges_from_scores(&tokens, &scores, &ids);
        let m: Vec<(&str, &str)> = m.iter().map(|(l, r)| (l.as_str(), r.as_str())).collect();
        assert_eq!(m, [("a", "b"), ("b", "c"), ("ab", "c"), ("a", "bc")]);
    }
}
