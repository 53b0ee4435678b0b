//! `from_gguf_vocab` on real GGUF vocabularies. Their dumps are too big to commit: the
//! fixture script writes them to `models/tokenizer-refs/` (git-ignored), and these tests
//! skip, saying so, when they are missing.
//!
//! - `smollm2.json`: SmolLM2-135M-Instruct's GGUF vocabulary, checked against transformers'
//!   `gguf_file=` ids, chat render and chat ids (`tests/fixtures/smollm2_expected.json`,
//!   committed).
//! - `ggml-vocab-<name>.json`: llama.cpp's tokenizer test vocabularies (Llama 3, Qwen2,
//!   StarCoder — the pre-tokenizer SmolLM shares —, GPT-2, Llama 2 SentencePiece, Refact)
//!   with the ids the original Hugging Face tokenizers give (llama.cpp's `.out` files).

mod common;

use common::{fixtures, ids, read_json, refs_dir};
use foil_core::tokenizer::Tokenizer;
use foil_tokenizers::{GgufVocab, HfTokenizer, PromptFormat};

fn vocab_of(path: &std::path::Path) -> Option<GgufVocab> {
    if !path.is_file() {
        eprintln!(
            "skipping: {} not found (run scripts/fixtures/make_tokenizer_fixtures.py)",
            path.display()
        );
        return None;
    }
    Some(serde_json::from_value(read_json(path)["vocab"].clone()).expect("a GgufVocab"))
}

#[test]
fn smollm2_gguf_matches_transformers() {
    let Some(vocab) = vocab_of(&refs_dir().join("smollm2.json")) else {
        return;
    };
    assert_eq!(
        (vocab.model.as_str(), vocab.pre.as_deref()),
        ("gpt2", Some("smollm"))
    );
    let exp = read_json(fixtures().join("smollm2_expected.json"));
    let tok = HfTokenizer::from_gguf_vocab(&vocab).unwrap();
    assert_eq!(
        tok.vocab_size(),
        exp["vocab_size"].as_u64().unwrap() as usize
    );
    assert_eq!(tok.eos_id() as u64, exp["eos_id"].as_u64().unwrap());
    assert_eq!(tok.pad_id() as u64, exp["pad_id"].as_u64().unwrap());
    // <|im_end|> ends a response; so does <|endoftext|>, as in llama.cpp.
    assert!(tok.is_eos(2) && tok.is_eos(0) && !tok.is_eos(1));
    let mut failures = Vec::new();
    for case in exp["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let got = tok.encode(text).unwrap();
        if got != ids(&case["encode"]) {
            failures.push(format!(
                "encode {text:?}: got {got:?}, want {}",
                case["encode"]
            ));
        }
        let raw = tok.encode_prompt(text).unwrap();
        if raw != ids(&case["raw"]) {
            failures.push(format!("raw {text:?}: got {raw:?}, want {}", case["raw"]));
        }
        let dec = tok.decode(&got);
        if dec != case["decode"].as_str().unwrap() {
            failures.push(format!(
                "decode {text:?}: got {dec:?}, want {}",
                case["decode"]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let chat = &exp["chat"];
    let messages: Vec<foil_tokenizers::ChatMessage> =
        serde_json::from_value(chat["messages"].clone()).unwrap();
    let text = tok
        .chat_template()
        .unwrap()
        .render(&messages, true)
        .unwrap();
    assert_eq!(text, chat["text"].as_str().unwrap());
    let system = messages[0].content.clone();
    let tok = tok
        .with_prompt_format(PromptFormat::Chat {
            system: Some(system),
        })
        .unwrap();
    assert_eq!(
        tok.encode_prompt(&messages[1].content).unwrap(),
        ids(&chat["ids"])
    );
}

#[test]
fn llama_cpp_vocabularies_match_the_original_tokenizers() {
    let mut seen = 0;
    let mut failures = Vec::new();
    for name in [
        "llama-bpe",
        "qwen2",
        "starcoder",
        "gpt-2",
        "llama-spm",
        "refact",
    ] {
        let path = refs_dir().join(format!("ggml-vocab-{name}.json"));
        let Some(vocab) = vocab_of(&path) else {
            continue;
        };
        seen += 1;
        let tok = HfTokenizer::from_gguf_vocab(&vocab).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let doc = read_json(&path);
        let cases = doc["cases"].as_array().unwrap();
        let mut bad = 0;
        let mut transformers_differs = Vec::new();
        for case in cases {
            let text = case["text"].as_str().unwrap();
            let got = tok.encode(text).unwrap();
            if got != ids(&case["encode"]) {
                bad += 1;
                failures.push(format!(
                    "{name}: encode {text:?}: got {got:?}, want {}",
                    case["encode"]
                ));
            }
            if case["transformers_encode"].is_array()
                && ids(&case["transformers_encode"]) != ids(&case["encode"])
            {
                transformers_differs.push(text);
            }
        }
        eprintln!(
            "{name}: {}/{} cases match llama.cpp's reference; transformers' gguf_file= loading differs from it on {:?}",
            cases.len() - bad,
            cases.len(),
            transformers_differs
        );
    }
    if seen == 0 {
        return;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
