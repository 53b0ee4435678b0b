//! The real model, when `cargo xtask fetch smollm2` has put it in `models/`: metadata,
//! every tensor dequantised, and values compared with gguf-py
//! (`fixtures/smollm2.json`, from `scripts/fixtures/make_gguf_fixtures.py --smollm2`).
//! Skipped (with a message) when the file is absent.

use std::path::PathBuf;

use foil_gguf::{GgmlType, GgufFile};

const FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

fn open() -> Option<GgufFile> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../models")
        .join(FILE);
    if !path.exists() {
        eprintln!(
            "skipping: {} absent (run `cargo xtask fetch smollm2`)",
            path.display()
        );
        return None;
    }
    Some(GgufFile::open(&path).unwrap())
}

#[test]
fn smollm2_metadata() {
    let Some(f) = open() else { return };
    assert_eq!(f.version(), 3);
    assert_eq!(f.architecture(), Some("llama"));
    assert_eq!(f.get_u64("llama.block_count"), Some(30));
    assert_eq!(f.get_u64("llama.embedding_length"), Some(576));
    assert_eq!(f.get_u64("llama.feed_forward_length"), Some(1536));
    assert_eq!(f.get_u64("llama.attention.head_count"), Some(9));
    assert_eq!(f.get_u64("llama.attention.head_count_kv"), Some(3));
    assert_eq!(f.get_f64("llama.rope.freq_base"), Some(100000.0));
    let tokens = f.get_str_array("tokenizer.ggml.tokens").unwrap();
    assert_eq!(tokens.len(), 49152);
    assert_eq!(
        &tokens[..3],
        ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    );
    assert_eq!(
        f.get_i64_array("tokenizer.ggml.token_type")
            .map(|t| t.len()),
        Some(49152)
    );
    assert_eq!(f.get_str("tokenizer.ggml.model"), Some("gpt2"));
    assert_eq!(f.get_str("tokenizer.ggml.pre"), Some("smollm"));
    assert!(f.get_str_array("tokenizer.ggml.merges").unwrap().len() > 40_000);
    assert!(
        f.get_str("tokenizer.chat_template")
            .unwrap()
            .contains("<|im_start|>")
    );
    assert_eq!(f.get_u64("tokenizer.ggml.bos_token_id"), Some(1));
    assert_eq!(f.get_u64("tokenizer.ggml.eos_token_id"), Some(2));
    let mut keys: Vec<_> = f
        .metadata()
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| k.starts_with("tokenizer."))
        .collect();
    keys.sort();
    println!("tokenizer keys: {keys:?}");
}

#[test]
fn smollm2_every_tensor_dequantises_to_finite_values() {
    let Some(f) = open() else { return };
    assert_eq!(f.tensors().len(), 272);
    let mut counts = std::collections::BTreeMap::new();
    let mut n_params = 0u64;
    for t in f.tensors() {
        *counts.entry(t.ggml_type.name()).or_insert(0) += 1;
        let (shape, data) = f.tensor_f32(&t.name).unwrap();
        assert_eq!(shape.iter().product::<usize>(), data.len(), "{}", t.name);
        assert_eq!(data.len() as u64, t.n_elements(), "{}", t.name);
        if let Some(i) = data.iter().position(|x| !x.is_finite()) {
            panic!("{}: element {i} is {}", t.name, data[i]);
        }
        n_params += t.n_elements();
    }
    println!("types: {counts:?}; {n_params} parameters");
    let emb = f.tensor_info("token_embd.weight").unwrap();
    assert_eq!(
        (emb.ggml_type, emb.shape()),
        (GgmlType::Q8_0, vec![49152, 576])
    );
    let down = f.tensor_info("blk.0.ffn_down.weight").unwrap();
    assert_eq!(
        (down.ggml_type, down.shape()),
        (GgmlType::Q4_1, vec![576, 1536])
    );
    let norm = f.tensor_info("output_norm.weight").unwrap();
    assert_eq!((norm.ggml_type, norm.shape()), (GgmlType::F32, vec![576]));
}

#[test]
fn smollm2_values_match_gguf_py() {
    let Some(f) = open() else { return };
    let v: serde_json::Value = serde_json::from_str(include_str!("fixtures/smollm2.json")).unwrap();
    assert_eq!(v["file"], FILE);
    for t in v["tensors"].as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        let info = f.tensor_info(name).unwrap();
        assert_eq!(info.ggml_type.name(), t["type"].as_str().unwrap(), "{name}");
        let dims: Vec<u64> = t["dims"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        assert_eq!(info.dims, dims, "{name}");
        let (_, data) = f.tensor_f32(name).unwrap();
        let idx = t["indices"].as_array().unwrap();
        let vals = t["values"].as_array().unwrap();
        for (i, want) in idx.iter().zip(vals) {
            let (i, want) = (i.as_u64().unwrap() as usize, want.as_f64().unwrap() as f32);
            let got = data[i];
            assert!(
                got == want || (got - want).abs() <= 1e-6 * want.abs(),
                "{name}[{i}]: got {got}, gguf-py {want}"
            );
        }
        let sum: f64 = data.iter().map(|&x| x as f64).sum();
        let sum_sq: f64 = data.iter().map(|&x| (x as f64) * (x as f64)).sum();
        let (want_sum, want_sq) = (t["sum"].as_f64().unwrap(), t["sum_sq"].as_f64().unwrap());
        assert!(
            (sum - want_sum).abs() <= 1e-9 * want_sq.max(1.0),
            "{name}: sum {sum} vs {want_sum}"
        );
        assert!(
            (sum_sq - want_sq).abs() <= 1e-9 * want_sq,
            "{name}: sum_sq {sum_sq} vs {want_sq}"
        );
        println!(
            "{name} ({}): {} checked values and sums agree",
            info.ggml_type,
            idx.len()
        );
    }
}
