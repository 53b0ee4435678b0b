//! Logit parity with Hugging Face transformers on random-weight checkpoints of each
//! family (fixtures written by `scripts/fixtures/make_hf_fixtures.py`): a left-padded
//! batch through the full forward pass, and 20 greedy decode steps with the KV cache.

use std::path::{Path, PathBuf};

use burn::tensor::{Int, Tensor, TensorData};
use foil_core::backend::{B, parse_device};
use foil_core::batch::{SeqBatch, to_vec};
use foil_models::hf::{HfConfig, HfDecoder, weights};

const TOL: f32 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    // at run time first, so that a test binary copied to another machine finds the
    // fixtures of the checkout it runs in
    let crate_dir = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    Path::new(&crate_dir).join("tests/fixtures/hf").join(name)
}

struct Expected {
    vocab: usize,
    rows: Vec<Vec<u32>>,
    t: usize,
    logits: Vec<f32>,
    generated: Vec<Vec<u32>>,
    step_logits: Vec<f32>,
}

fn expected(dir: &Path) -> Expected {
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let ints = |v: &serde_json::Value| -> Vec<Vec<u32>> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_u64().unwrap() as u32)
                    .collect()
            })
            .collect()
    };
    let floats = |v: &serde_json::Value| -> Vec<f32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    };
    let tokens = ints(&j["tokens"]);
    let mask = ints(&j["mask"]);
    let rows = tokens
        .iter()
        .zip(&mask)
        .map(|(t, m)| {
            t.iter()
                .zip(m)
                .filter(|(_, m)| **m == 1)
                .map(|(t, _)| *t)
                .collect()
        })
        .collect();
    Expected {
        vocab: j["vocab"].as_u64().unwrap() as usize,
        t: tokens[0].len(),
        rows,
        logits: floats(&j["logits"]),
        generated: ints(&j["generated"]),
        step_logits: floats(&j["step_logits"]),
    }
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// `FOIL_TEST_DEVICE=cuda` runs the parity checks on a GPU (build with `--features cuda`).
fn test_device() -> foil_core::backend::Device {
    parse_device(&std::env::var("FOIL_TEST_DEVICE").unwrap_or_else(|_| "cpu".into())).unwrap()
}

fn check_family(name: &str) {
    let dir = fixture(name);
    let device = test_device();
    let config = HfConfig::from_dir(&dir).unwrap();
    let model = HfDecoder::<B>::init(&config, 64, &device);
    let model =
        weights::load_safetensors(model, &weights::checkpoint_files(&dir).unwrap()).unwrap();
    let e = expected(&dir);
    let v = e.vocab;

    // full forward on the left-padded batch
    let batch = SeqBatch::left_padded(&e.rows, 0);
    assert_eq!(batch.t, e.t);
    let input = batch.to_input(&device);
    let got = to_vec(model.forward(
        input.tokens.clone(),
        input.positions.clone(),
        input.key_valid.clone(),
    ));
    let mut worst = 0f32;
    for r in 0..e.rows.len() {
        for c in e.t - e.rows[r].len()..e.t {
            let at = (r * e.t + c) * v;
            worst = worst.max(max_diff(&got[at..at + v], &e.logits[at..at + v]));
        }
    }
    eprintln!("{name}: forward max abs diff {worst:e}");
    assert!(worst < TOL, "{name}: forward max abs diff {worst}");

    // greedy generation with the KV cache
    let (mut logits, mut cache) = model.prefill(
        input.tokens.clone(),
        input.positions.clone(),
        input.key_valid,
    );
    let n = e.rows.len();
    let mut worst = 0f32;
    for step in 0..20 {
        let host = to_vec(logits.clone());
        let want = &e.step_logits[step * n * v..(step + 1) * n * v];
        worst = worst.max(max_diff(&host, want));
        let mut next = Vec::new();
        for r in 0..n {
            let row = &host[r * v..(r + 1) * v];
            let arg = (0..v).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
            assert_eq!(
                arg as u32, e.generated[r][step],
                "{name}: row {r} step {step}"
            );
            next.push(arg as i64);
        }
        let pos: Vec<i64> = e.rows.iter().map(|p| (p.len() + step) as i64).collect();
        let tt = Tensor::<B, 2, Int>::from_data(TensorData::new(next, [n, 1]), &device);
        let pp = Tensor::<B, 2, Int>::from_data(TensorData::new(pos, [n, 1]), &device);
        logits = model.decode(&mut cache, tt, pp);
    }
    eprintln!("{name}: 20 decode steps, max abs diff {worst:e}");
    assert!(worst < TOL, "{name}: decode max abs diff {worst}");
}

#[test]
fn llama3_with_rope_scaling_matches_transformers() {
    check_family("llama3");
}

#[test]
fn sharded_tied_smollm_matches_transformers() {
    check_family("smollm");
}

#[test]
fn qwen2_tied_matches_transformers() {
    check_family("qwen2-tied");
}

#[test]
fn qwen2_untied_matches_transformers() {
    check_family("qwen2");
}

#[test]
fn mistral_matches_transformers() {
    check_family("mistral");
}

#[test]
fn a_checkpoint_missing_tensors_is_a_clear_error() {
    // the smollm shards without the last one
    let dir = fixture("smollm");
    let mut files = weights::checkpoint_files(&dir).unwrap();
    files.pop();
    let config = HfConfig::from_dir(&dir).unwrap();
    let device = parse_device("cpu").unwrap();
    let err = weights::load_safetensors(HfDecoder::<B>::init(&config, 64, &device), &files)
        .unwrap_err()
        .to_string();
    assert!(err.contains("the checkpoint lacks"), "{err}");
    assert!(err.contains("model."), "names are Hugging Face keys: {err}");
}
