//! Parity with transformers on the tiny tokenizers of `tests/fixtures/<name>/`: ids of
//! `encode` (no special tokens) and of raw prompts (with them), decodes, special ids,
//! chat prompts; and the same tokenizers rebuilt from their GGUF vocabulary.

mod common;

use common::{fixtures, ids, read_json};
use foil_core::tokenizer::Tokenizer;
use foil_tokenizers::{GgufVocab, HfTokenizer, PromptFormat};

const NAMES: [&str; 4] = ["llama3", "qwen2", "smollm", "mistral"];

#[test]
fn directory_tokenizers_match_transformers() {
    for name in NAMES {
        let dir = fixtures().join(name);
        let tok = HfTokenizer::from_dir(&dir).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let exp = read_json(dir.join("expected.json"));
        assert_eq!(
            tok.vocab_size(),
            exp["vocab_size"].as_u64().unwrap() as usize,
            "{name}: vocab_size"
        );
        assert_eq!(
            tok.eos_id() as u64,
            exp["eos_id"].as_u64().unwrap(),
            "{name}: eos_id"
        );
        assert_eq!(
            tok.pad_id() as u64,
            exp["pad_id"].as_u64().unwrap(),
            "{name}: pad_id"
        );
        assert_eq!(
            tok.bos_id().map(u64::from),
            exp["bos_id"].as_u64(),
            "{name}: bos_id"
        );
        assert_eq!(tok.eos_ids(), ids(&exp["eos_ids"]), "{name}: eos_ids");
        for &id in tok.eos_ids() {
            assert!(tok.is_eos(id), "{name}: {id} should end a response");
        }
        assert!(!tok.is_eos(0), "{name}: id 0 is not an end token");

        let mut failures = Vec::new();
        for case in exp["cases"].as_array().unwrap() {
            let text = case["text"].as_str().unwrap();
            let encoded = tok.encode(text).unwrap();
            if encoded != ids(&case["encode"]) {
                failures.push(format!(
                    "encode {text:?}: got {encoded:?}, want {}",
                    case["encode"]
                ));
            }
            let raw = tok.encode_prompt(text).unwrap();
            if raw != ids(&case["raw"]) {
                failures.push(format!(
                    "raw prompt {text:?}: got {raw:?}, want {}",
                    case["raw"]
                ));
            }
            let decoded = tok.decode(&ids(&case["encode"]));
            if decoded != case["decode"].as_str().unwrap() {
                failures.push(format!(
                    "decode of {text:?}: got {decoded:?}, want {}",
                    case["decode"]
                ));
            }
            let decoded_raw = tok.decode(&ids(&case["raw"]));
            if decoded_raw != case["decode_raw"].as_str().unwrap() {
                failures.push(format!(
                    "decode (raw) of {text:?}: got {decoded_raw:?}, want {}",
                    case["decode_raw"]
                ));
            }
        }
        assert!(failures.is_empty(), "{name}:\n{}", failures.join("\n"));
    }
}

#[test]
fn chat_prompts_match_apply_chat_template() {
    for name in NAMES {
        let dir = fixtures().join(name);
        let exp = read_json(dir.join("expected.json"));
        for chat in exp["chat"].as_array().unwrap() {
            let system = chat["system"].as_str().map(str::to_string);
            let tok = HfTokenizer::from_dir(&dir)
                .unwrap()
                .with_prompt_format(PromptFormat::Chat {
                    system: system.clone(),
                })
                .unwrap();
            let prompt = chat["prompt"].as_str().unwrap();
            let mut messages = Vec::new();
            if let Some(s) = &system {
                messages.push(foil_tokenizers::ChatMessage::new("system", s.as_str()));
            }
            messages.push(foil_tokenizers::ChatMessage::new("user", prompt));
            let text = tok
                .chat_template()
                .unwrap()
                .render(&messages, true)
                .unwrap();
            assert_eq!(
                text,
                chat["text"].as_str().unwrap(),
                "{name}: chat text (system {system:?})"
            );
            assert_eq!(
                tok.encode_prompt(prompt).unwrap(),
                ids(&chat["ids"]),
                "{name}: chat ids (system {system:?})"
            );
        }
    }
}

/// Where transformers 5's `gguf_file=` loading is known to differ from the tokenizer a
/// GGUF was made from: for SentencePiece vocabularies its `Metaspace` drops the dummy
/// prefix before a space that starts the text or follows a special token (see
/// `gguf_build.rs`).
fn transformers_gguf_differs(vocab: &GgufVocab, text: &str) -> bool {
    let after_special = vocab
        .tokens
        .iter()
        .zip(&vocab.token_types)
        .filter(|(_, ty)| **ty == foil_tokenizers::gguf_vocab::TOKEN_TYPE_CONTROL)
        .any(|(t, _)| text.contains(&format!("{t} ")));
    vocab.model == "llama" && (text.starts_with(' ') || after_special)
}

#[test]
fn gguf_vocabularies_match_their_tokenizers() {
    for name in NAMES {
        let doc = read_json(fixtures().join(name).join("gguf_vocab.json"));
        let vocab: GgufVocab = serde_json::from_value(doc["vocab"].clone()).unwrap();
        let tok = HfTokenizer::from_gguf_vocab(&vocab).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert_eq!(tok.vocab_size(), vocab.tokens.len(), "{name}: vocab_size");
        assert_eq!(Some(tok.eos_id()), vocab.eos_id, "{name}: eos");
        let mut failures = Vec::new();
        let mut known = 0;
        for case in doc["cases"].as_array().unwrap() {
            let text = case["text"].as_str().unwrap();
            // The tokenizer.json the GGUF was made from.
            let encoded = tok.encode(text).unwrap();
            if encoded != ids(&case["original_encode"]) {
                failures.push(format!(
                    "encode {text:?}: got {encoded:?}, want {}",
                    case["original_encode"]
                ));
            }
            let raw = tok.encode_prompt(text).unwrap();
            if raw != ids(&case["original_raw"]) {
                failures.push(format!(
                    "raw prompt {text:?}: got {raw:?}, want {}",
                    case["original_raw"]
                ));
            }
            // transformers' gguf_file= loading of the same GGUF.
            if transformers_gguf_differs(&vocab, text) {
                known += 1;
            } else {
                if encoded != ids(&case["encode"]) {
                    failures.push(format!(
                        "encode {text:?}: got {encoded:?}, transformers (gguf) {}",
                        case["encode"]
                    ));
                }
                if raw != ids(&case["raw"]) {
                    failures.push(format!(
                        "raw prompt {text:?}: got {raw:?}, transformers (gguf) {}",
                        case["raw"]
                    ));
                }
            }
            let decoded = tok.decode(&ids(&case["encode"]));
            if decoded != case["decode"].as_str().unwrap() {
                failures.push(format!(
                    "decode of {text:?}: got {decoded:?}, want {}",
                    case["decode"]
                ));
            }
        }
        assert!(failures.is_empty(), "{name}:\n{}", failures.join("\n"));
        if known > 0 {
            eprintln!(
                "{name}: {known} texts with a space after the start or a special token not compared with transformers' GGUF loading"
            );
        }
        // The GGUF's template is the directory's; chat prompts then agree too.
        let dir_tok = HfTokenizer::from_dir(fixtures().join(name)).unwrap();
        let chat = PromptFormat::Chat {
            system: Some("Be brief.".into()),
        };
        let from_dir = dir_tok
            .with_prompt_format(chat.clone())
            .unwrap()
            .encode_prompt("What is 2 + 2?")
            .unwrap();
        let from_gguf = tok
            .with_prompt_format(chat)
            .unwrap()
            .encode_prompt("What is 2 + 2?")
            .unwrap();
        assert_eq!(
            from_gguf, from_dir,
            "{name}: chat prompt from the GGUF vocabulary"
        );
    }
}

#[test]
fn special_token_strings_in_text_are_single_tokens() {
    let tok = HfTokenizer::from_dir(fixtures().join("qwen2")).unwrap();
    let ids = tok.encode("a<|im_end|>b").unwrap();
    assert!(ids.contains(&tok.eos_id()), "{ids:?}");
    assert_eq!(tok.decode(&ids), "ab", "decode skips special tokens");
}

#[test]
fn prompt_format_deserialises_from_recipe_yaml_shapes() {
    let raw: PromptFormat = serde_json::from_str(r#""raw""#).unwrap();
    assert_eq!(raw, PromptFormat::Raw);
    let chat: PromptFormat = serde_json::from_str(r#"{"chat": {"system": "Be brief."}}"#).unwrap();
    assert_eq!(
        chat,
        PromptFormat::Chat {
            system: Some("Be brief.".into())
        }
    );
    let chat: PromptFormat = serde_json::from_str(r#"{"chat": {}}"#).unwrap();
    assert_eq!(chat, PromptFormat::Chat { system: None });
    assert!(serde_json::from_str::<PromptFormat>(r#"{"chat": {"sytem": "x"}}"#).is_err());
    assert_eq!(PromptFormat::default(), PromptFormat::Raw);
}

/// A copy of a fixture directory, to edit.
fn copy_fixture(name: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixtures().join(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), tmp.path().join(entry.file_name())).unwrap();
    }
    tmp
}

fn edit_json(path: &std::path::Path, f: impl FnOnce(&mut serde_json::Value)) {
    let mut v = read_json(path);
    f(&mut v);
    std::fs::write(path, serde_json::to_string(&v).unwrap()).unwrap();
}

#[test]
fn add_bos_token_applies_when_tokenizer_json_has_no_post_processor() {
    let tmp = copy_fixture("llama3");
    edit_json(&tmp.path().join("tokenizer.json"), |v| {
        v["post_processor"] = serde_json::Value::Null
    });
    let bos = HfTokenizer::from_dir(tmp.path()).unwrap().bos_id().unwrap();
    let plain = HfTokenizer::from_dir(tmp.path())
        .unwrap()
        .encode_prompt("hi")
        .unwrap();
    assert_ne!(
        plain[0], bos,
        "no post-processor and no add_bos_token: no BOS"
    );
    edit_json(&tmp.path().join("tokenizer_config.json"), |v| {
        v["add_bos_token"] = true.into()
    });
    let tok = HfTokenizer::from_dir(tmp.path()).unwrap();
    assert_eq!(
        tok.encode_prompt("hi").unwrap(),
        [vec![bos], plain].concat()
    );
    assert_eq!(
        tok.encode("hi").unwrap()[0],
        tok.encode_prompt("hi").unwrap()[1],
        "encode adds nothing"
    );
}

#[test]
fn chat_template_files_take_priority_over_the_config() {
    let tmp = copy_fixture("qwen2");
    let tok = HfTokenizer::from_dir(tmp.path()).unwrap();
    assert!(tok.chat_template().unwrap().source().contains("Qwen"));
    std::fs::write(
        tmp.path().join("chat_template.json"),
        r#"{"chat_template": "json:{{ messages[0].content }}"}"#,
    )
    .unwrap();
    let tok = HfTokenizer::from_dir(tmp.path()).unwrap();
    assert_eq!(
        tok.chat_template().unwrap().source(),
        "json:{{ messages[0].content }}"
    );
    std::fs::write(
        tmp.path().join("chat_template.jinja"),
        "jinja:{{ messages[0].content }}",
    )
    .unwrap();
    let tok = HfTokenizer::from_dir(tmp.path())
        .unwrap()
        .with_prompt_format(PromptFormat::Chat { system: None })
        .unwrap();
    assert_eq!(
        tok.encode_prompt("x").unwrap(),
        tok.encode("jinja:x").unwrap()
    );
}
