//! Error messages: each names what is wrong and where.

mod common;

use std::path::Path;

use common::fixtures;
use foil_core::tokenizer::Tokenizer;
use foil_tokenizers::{GgufVocab, HfTokenizer, PromptFormat};

/// A copy of the `qwen2` fixture directory, to break.
fn copy_fixture(name: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixtures().join(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), tmp.path().join(entry.file_name())).unwrap();
    }
    tmp
}

fn err_of(dir: &Path) -> String {
    format!("{:#}", HfTokenizer::from_dir(dir).unwrap_err())
}

fn edit_config(dir: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("tokenizer_config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();
}

#[test]
fn missing_tokenizer_json() {
    let tmp = copy_fixture("qwen2");
    std::fs::remove_file(tmp.path().join("tokenizer.json")).unwrap();
    let e = err_of(tmp.path());
    assert!(e.contains("tokenizer.json not found"), "{e}");
    assert!(e.contains(&tmp.path().display().to_string()), "{e}");
}

#[test]
fn missing_tokenizer_config() {
    let tmp = copy_fixture("qwen2");
    std::fs::remove_file(tmp.path().join("tokenizer_config.json")).unwrap();
    let e = err_of(tmp.path());
    assert!(e.contains("tokenizer_config.json not found"), "{e}");
}

#[test]
fn bad_json() {
    let tmp = copy_fixture("qwen2");
    std::fs::write(tmp.path().join("tokenizer_config.json"), "{\"eos_token\": ").unwrap();
    let e = err_of(tmp.path());
    assert!(e.contains("tokenizer_config.json is not valid JSON"), "{e}");

    let tmp = copy_fixture("qwen2");
    std::fs::write(tmp.path().join("tokenizer.json"), "{]").unwrap();
    let e = err_of(tmp.path());
    assert!(
        e.contains("tokenizer.json is not a valid tokenizer.json"),
        "{e}"
    );

    let tmp = copy_fixture("qwen2");
    std::fs::write(tmp.path().join("generation_config.json"), "[1, 2").unwrap();
    let e = err_of(tmp.path());
    assert!(
        e.contains("generation_config.json is not valid JSON"),
        "{e}"
    );
}

#[test]
fn bad_fields() {
    let tmp = copy_fixture("qwen2");
    edit_config(tmp.path(), |v| v["eos_token"] = "<|nope|>".into());
    let e = err_of(tmp.path());
    assert!(
        e.contains("eos_token \"<|nope|>\" is not in the vocabulary of tokenizer.json"),
        "{e}"
    );
    assert!(e.contains("tokenizer_config.json"), "{e}");

    let tmp = copy_fixture("qwen2");
    edit_config(tmp.path(), |v| {
        v["chat_template"] = serde_json::json!([{"name": "tool_use", "template": "x"}])
    });
    let e = err_of(tmp.path());
    assert!(
        e.contains("lists templates [\"tool_use\"] but none named `default`"),
        "{e}"
    );

    let tmp = copy_fixture("qwen2");
    edit_config(tmp.path(), |v| {
        v.as_object_mut().unwrap().remove("eos_token");
    });
    std::fs::remove_file(tmp.path().join("generation_config.json")).unwrap();
    let e = err_of(tmp.path());
    assert!(e.contains("no end-of-sequence token"), "{e}");

    let tmp = copy_fixture("qwen2");
    edit_config(tmp.path(), |v| {
        v["chat_template"] = "{% for m in messages %}".into()
    });
    let e = err_of(tmp.path());
    assert!(
        e.contains("the chat template of") && e.contains("syntax error"),
        "{e}"
    );
}

#[test]
fn eos_falls_back_to_generation_config() {
    let tmp = copy_fixture("llama3");
    edit_config(tmp.path(), |v| {
        v.as_object_mut().unwrap().remove("eos_token");
    });
    let generation = common::read_json(tmp.path().join("generation_config.json"));
    let gen_eos = common::ids(&generation["eos_token_id"]);
    let tok = HfTokenizer::from_dir(tmp.path()).unwrap();
    assert_eq!(
        tok.eos_id(),
        gen_eos[0],
        "the first eos_token_id of generation_config.json"
    );
    assert_eq!(tok.eos_ids(), gen_eos);
}

#[test]
fn chat_without_a_template() {
    let tmp = copy_fixture("llama3");
    // llama3 keeps its template in chat_template.jinja.
    std::fs::remove_file(tmp.path().join("chat_template.jinja")).unwrap();
    let tok = HfTokenizer::from_dir(tmp.path()).unwrap();
    assert!(tok.chat_template().is_none());
    let e = tok
        .with_prompt_format(PromptFormat::Chat { system: None })
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("prompt format `chat` needs a chat template"),
        "{e}"
    );
    assert!(e.contains("has none"), "{e}");
}

#[test]
fn template_raising_an_exception() {
    let tmp = copy_fixture("qwen2");
    edit_config(tmp.path(), |v| {
        v["chat_template"] = "{% if messages[0]['role'] == 'system' %}\n{{ raise_exception('System role not supported') }}\n{% endif %}{{ messages[0]['content'] }}".into()
    });
    let tok = HfTokenizer::from_dir(tmp.path())
        .unwrap()
        .with_prompt_format(PromptFormat::Chat {
            system: Some("x".into()),
        })
        .unwrap();
    let e = format!("{:#}", tok.encode_prompt("hi").unwrap_err());
    assert_eq!(
        e,
        "the chat template raised an exception at line 2: System role not supported"
    );
}

#[test]
fn gguf_errors() {
    let e = HfTokenizer::from_gguf_vocab(&GgufVocab::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("no tokens"), "{e}");
    let vocab = GgufVocab {
        model: "gpt2".into(),
        pre: Some("some-new-model".into()),
        tokens: vec!["a".into(), "b".into(), "ab".into(), "<eos>".into()],
        merges: vec!["a b".into()],
        eos_id: Some(3),
        ..Default::default()
    };
    let e = HfTokenizer::from_gguf_vocab(&vocab)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("tokenizer.ggml.pre \"some-new-model\" is not supported"),
        "{e}"
    );
    let e = HfTokenizer::from_gguf_vocab(&GgufVocab {
        model: "bert".into(),
        ..vocab.clone()
    })
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("tokenizer.ggml.model \"bert\" is not supported"),
        "{e}"
    );
    let e = HfTokenizer::from_gguf_vocab(&GgufVocab {
        eos_id: Some(7),
        ..vocab.clone()
    })
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("eos token id 7 is outside the vocabulary of 4 tokens"),
        "{e}"
    );
    let ok = HfTokenizer::from_gguf_vocab(&GgufVocab { pre: None, ..vocab }).unwrap();
    assert_eq!(ok.encode("ab<eos>").unwrap(), [2, 3]);
    assert_eq!(ok.decode(&[2, 3]), "ab");
    let e = ok
        .with_prompt_format(PromptFormat::Chat { system: None })
        .unwrap_err()
        .to_string();
    assert!(e.contains("no tokenizer.chat_template in a GGUF"), "{e}");
}
