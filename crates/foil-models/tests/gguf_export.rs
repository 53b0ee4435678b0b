//! `Policy::export_gguf`: the `hf` policy written as GGUF reads back (foil's reader) to
//! the same hyper-parameters, tokenizer and logits, for Llama (q/k rows permuted),
//! Mistral (written as llama), Qwen2 (tied and untied), LoRA merged, f32 and f16;
//! SmolLM2 GGUF → GGUF → foil; and llama.cpp (llama-cpp-python) computes the same logits
//! from foil's file as foil does.

use std::path::{Path, PathBuf};

use foil_core::PolicyConfig;
use foil_core::backend::parse_device;
use foil_core::batch::{SeqBatch, to_vec, token_logprobs};
use foil_core::policy::{GgufDtype, InferenceModel, OptimizerConfig, Policy};
use foil_gguf::GgufFile;
use foil_models::hf::policy::Hf;
use foil_models::hf::{HfConfig, LoraConfig};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hf")
        .join(name)
}

fn hf(path: &Path, lora: Option<LoraConfig>) -> Hf {
    serde_json::from_value(serde_json::json!({"path": path, "lora": lora, "context": 64})).unwrap()
}

fn rows(ids: &[Vec<u32>]) -> SeqBatch {
    SeqBatch::left_padded(ids, 0)
}

fn logits(model: &dyn InferenceModel, ids: &[Vec<u32>]) -> Vec<f32> {
    let device = model.device();
    to_vec(model.forward(&rows(ids).to_input(&device)))
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn small_rows() -> Vec<Vec<u32>> {
    vec![vec![5, 9, 17, 3, 44, 8], vec![7, 7, 21, 90]]
}

/// One AdamW step, so the exported weights differ from the fixture's.
fn train_step(policy: &mut Box<dyn Policy>) {
    let device = policy.device();
    let b = rows(&small_rows());
    let input = b.to_input(&device);
    let targets = input.tokens.clone().slice([0..2, 1..b.t]);
    let loss = token_logprobs(policy.forward(&input), targets)
        .mean()
        .neg()
        .reshape([1]);
    policy.step(loss, 1e-2).unwrap();
}

/// Loads `path` (a .gguf) as an inference model.
fn load(path: &Path) -> Box<dyn InferenceModel> {
    hf(path, None)
        .load_inference(&parse_device("cpu").unwrap())
        .unwrap()
}

#[test]
fn fixtures_export_to_gguf_and_load_back_to_the_same_logits() {
    let device = parse_device("cpu").unwrap();
    let lora = LoraConfig {
        rank: 2,
        alpha: 4.0,
        targets: vec!["q_proj".into(), "k_proj".into(), "down_proj".into()],
    };
    for (name, lora) in [
        ("mistral", None),
        ("mistral", Some(lora.clone())),
        ("qwen2", Some(lora)),
        ("qwen2-tied", None),
    ] {
        let with_lora = lora.is_some();
        let mut policy = hf(&fixture(name), lora).build(64, &device, 3).unwrap();
        policy.reset_optimizer(&OptimizerConfig::adamw(1e-2));
        train_step(&mut policy);
        let trained = logits(policy.inference().as_ref(), &small_rows());
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("m.gguf");
        policy.export_gguf(&out, GgufDtype::F32).unwrap();

        let file = GgufFile::open(&out).unwrap();
        let want = HfConfig::from_dir(&fixture(name)).unwrap();
        // Mistral is written as llama (q/k rows permuted), as llama.cpp's converter does
        let arch = if name == "mistral" { "llama" } else { "qwen2" };
        assert_eq!(file.architecture(), Some(arch), "{name}");
        assert_eq!(file.get_u64("general.file_type"), Some(0));
        let got = foil_models::hf::gguf::config(&file).unwrap();
        assert_eq!(got.hidden_size, want.hidden_size, "{name}");
        assert_eq!(got.num_hidden_layers, want.num_hidden_layers, "{name}");
        assert_eq!(got.num_key_value_heads, want.num_key_value_heads, "{name}");
        assert_eq!(got.head_dim, want.head_dim, "{name}");
        assert_eq!(got.intermediate_size, want.intermediate_size, "{name}");
        assert_eq!(got.tie_word_embeddings, want.tie_word_embeddings, "{name}");
        assert_eq!(got.qkv_bias, want.qkv_bias, "{name}");
        assert_eq!(got.rope_theta, want.rope_theta, "{name}");
        assert!(
            (got.rms_norm_eps - want.rms_norm_eps).abs() < 1e-12,
            "{name}"
        );
        // tied models carry no output.weight
        assert_eq!(
            file.tensor_info("output.weight").is_some(),
            !want.tie_word_embeddings,
            "{name}"
        );

        let exported = logits(load(&out).as_ref(), &small_rows());
        let d = max_diff(&trained, &exported);
        assert!(d < 1e-5, "{name} lora={with_lora}: logits differ by {d}");
    }
}

#[test]
fn f16_export_halves_the_matrices_and_stays_close() {
    let device = parse_device("cpu").unwrap();
    let policy = hf(&fixture("mistral"), None).build(64, &device, 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.gguf"), dir.path().join("b.gguf"));
    policy.export_gguf(&a, GgufDtype::F32).unwrap();
    policy.export_gguf(&b, GgufDtype::F16).unwrap();
    let fb = GgufFile::open(&b).unwrap();
    assert_eq!(fb.get_u64("general.file_type"), Some(1));
    for t in fb.tensors() {
        let want = if t.dims.len() >= 2 {
            foil_gguf::GgmlType::F16
        } else {
            foil_gguf::GgmlType::F32
        };
        assert_eq!(t.ggml_type, want, "{}", t.name);
    }
    // f16 keeps 11 significant bits: relative rounding error ≤ 2^-11 per weight
    let (la, lb) = (
        logits(load(&a).as_ref(), &small_rows()),
        logits(load(&b).as_ref(), &small_rows()),
    );
    let scale = la.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let d = max_diff(&la, &lb);
    assert!(
        d > 0.0 && d < 1e-2 * scale.max(1.0),
        "f16 logits differ by {d}"
    );
}

#[test]
fn llama3_rope_scaling_is_a_clear_error() {
    let device = parse_device("cpu").unwrap();
    let policy = hf(&fixture("llama3"), None).build(64, &device, 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = policy
        .export_gguf(&dir.path().join("x.gguf"), GgufDtype::F32)
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("llama3 rope scaling"),
        "{err:#}"
    );
}

#[test]
fn hf_directory_tokenizer_becomes_gguf_metadata() {
    let dir_path = fixture("tiny-qwen2-arith");
    let device = parse_device("cpu").unwrap();
    let part = hf(&dir_path, None);
    let policy = part.build(277, &device, 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("arith.gguf");
    policy.export_gguf(&out, GgufDtype::F32).unwrap();
    let file = GgufFile::open(&out).unwrap();
    assert_eq!(file.get_str("tokenizer.ggml.model"), Some("gpt2"));
    // Digits(individual) + ByteLevel in tokenizer.json
    assert_eq!(file.get_str("tokenizer.ggml.pre"), Some("smollm"));
    assert_eq!(
        file.get_str_array("tokenizer.ggml.tokens").unwrap().len(),
        277
    );
    assert_eq!(file.get_u64("tokenizer.ggml.eos_token_id"), Some(2));
    assert_eq!(file.get_u64("tokenizer.ggml.padding_token_id"), Some(0));
    assert_eq!(
        file.get_i64_array("tokenizer.ggml.token_type").unwrap()[..3],
        [3, 3, 3]
    );
    assert!(file.get_str("tokenizer.chat_template").is_some());

    let original = part.tokenizer().unwrap().unwrap();
    let round = hf(&out, None).tokenizer().unwrap().unwrap();
    for text in ["12+34=46", "A: 7 apples and 305 pears.", " the  sum\nis 99"] {
        assert_eq!(
            round.encode(text).unwrap(),
            original.encode(text).unwrap(),
            "{text:?}"
        );
    }
    let ids = vec![original.encode("12+34=").unwrap()];
    let d = max_diff(
        &logits(policy.inference().as_ref(), &ids),
        &logits(load(&out).as_ref(), &ids),
    );
    assert!(d < 1e-5, "logits differ by {d}");
}

fn smollm2() -> Option<PathBuf> {
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/SmolLM2-135M-Instruct.Q4_1.gguf");
    if p.exists() {
        Some(p)
    } else {
        eprintln!(
            "skipped: {} is missing (run `cargo xtask fetch smollm2`)",
            p.display()
        );
        None
    }
}

/// A chat-formatted prompt's ids from the model's own tokenizer.
fn smollm2_ids(part: &Hf) -> Vec<u32> {
    let tok = part.tokenizer().unwrap().unwrap();
    tok.encode("<|im_start|>user\nWhat is 12 + 30?<|im_end|>\n<|im_start|>assistant\n")
        .unwrap()
}

#[test]
fn smollm2_gguf_exports_to_gguf_with_the_same_logits() {
    let Some(src) = smollm2() else { return };
    let device = parse_device("cpu").unwrap();
    let part = hf(&src, None);
    let policy = part.build(49152, &device, 0).unwrap();
    let ids = vec![smollm2_ids(&part)];
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("smollm2.gguf");
    policy.export_gguf(&out, GgufDtype::F32).unwrap();
    let (a, b) = (GgufFile::open(&src).unwrap(), GgufFile::open(&out).unwrap());
    for (k, v) in a.metadata() {
        if k.starts_with("tokenizer.") {
            assert_eq!(b.get(k), Some(v), "{k}");
        }
    }
    let d = max_diff(
        &logits(policy.inference().as_ref(), &ids),
        &logits(load(&out).as_ref(), &ids),
    );
    assert!(d < 1e-5, "SmolLM2 logits differ by {d}");
    let round = hf(&out, None).tokenizer().unwrap().unwrap();
    assert_eq!(
        vec![
            round
                .encode("<|im_start|>user\nWhat is 12 + 30?<|im_end|>\n<|im_start|>assistant\n")
                .unwrap()
        ],
        ids
    );
}

/// The Python with llama-cpp-python: `FOIL_LLAMA_PYTHON` or `~/llama-venv/bin/python` (where
/// foil-samplers' llama.cpp tests look too).
pub fn llama_python() -> Option<PathBuf> {
    let py = std::env::var_os("FOIL_LLAMA_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join("llama-venv/bin/python")
        });
    let ok = std::process::Command::new(&py)
        .args(["-c", "import llama_cpp"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        Some(py)
    } else {
        eprintln!(
            "skipped: {} cannot import llama_cpp (set FOIL_LLAMA_PYTHON to a Python with \
             llama-cpp-python)",
            py.display()
        );
        None
    }
}

const LLAMA_LOGITS: &str = r#"
import json, sys
import numpy as np
import llama_cpp
path, ids = sys.argv[1], json.loads(sys.argv[2])
m = llama_cpp.Llama(model_path=path, logits_all=True, n_ctx=64, n_batch=64, n_threads=2, verbose=False)
m.eval(ids)
np.save(sys.argv[3], np.asarray(m.scores[: len(ids)], dtype=np.float32))
"#;

/// llama.cpp's logits `[len(ids), vocab]` for `ids` from the GGUF at `path`.
fn llama_cpp_logits(py: &Path, path: &Path, ids: &[u32], out: &Path) -> Vec<f32> {
    let o = std::process::Command::new(py)
        .args(["-c", LLAMA_LOGITS])
        .arg(path)
        .arg(serde_json::to_string(ids).unwrap())
        .arg(out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "llama-cpp-python failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    // .npy v1: magic, version, u16 header length, header, then little-endian f32 data
    let bytes = std::fs::read(out).unwrap();
    let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    bytes[10 + hlen..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// llama.cpp loads foil's GGUF and computes foil's logits: SmolLM2 (llama, q/k rows
/// permuted, tokenizer copied) and the tiny Qwen2 with its tokenizer built from
/// tokenizer.json. Tolerance: 1e-2 · max |logit| — llama.cpp keeps its KV cache in f16
/// and sums in another order, so rows agree to a few 1e-3 relative, not to f32 rounding;
/// a wrong permutation or name moves logits by O(1).
#[test]
fn llama_cpp_serves_foils_gguf_with_the_same_logits() {
    let Some(py) = llama_python() else { return };
    let device = parse_device("cpu").unwrap();
    let mut cases: Vec<(Hf, Vec<u32>, usize)> = Vec::new();
    let arith = hf(&fixture("tiny-qwen2-arith"), None);
    let ids = arith
        .tokenizer()
        .unwrap()
        .unwrap()
        .encode("12+34=46")
        .unwrap();
    cases.push((arith, ids, 277));
    if let Some(src) = smollm2() {
        let part = hf(&src, None);
        let ids = smollm2_ids(&part);
        cases.push((part, ids, 49152));
    }
    for (part, ids, vocab) in cases {
        let policy = part.build(vocab, &device, 0).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("m.gguf");
        policy.export_gguf(&out, GgufDtype::F32).unwrap();
        let ours = logits(policy.inference().as_ref(), std::slice::from_ref(&ids));
        let theirs = llama_cpp_logits(&py, &out, &ids, &dir.path().join("l.npy"));
        assert_eq!(theirs.len(), ours.len(), "{}", part.path.display());
        let scale = ours.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let d = max_diff(&ours, &theirs);
        eprintln!(
            "{}: llama.cpp vs foil max |Δlogit| = {d:.2e} (max |logit| {scale:.2})",
            part.path.display()
        );
        assert!(
            d < 1e-2 * scale,
            "{}: logits differ by {d}",
            part.path.display()
        );
        let argmax = |r: &[f32]| {
            r.iter()
                .enumerate()
                .fold((0, f32::MIN), |b, (i, &x)| if x > b.1 { (i, x) } else { b })
                .0
        };
        for (p, (a, b)) in ours.chunks(vocab).zip(theirs.chunks(vocab)).enumerate() {
            assert_eq!(argmax(a), argmax(b), "position {p}");
        }
    }
}
