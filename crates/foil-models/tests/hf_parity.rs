//! Logit parity with Hugging Face transformers on random-weight checkpoints of each
//! family (fixtures written by `scripts/fixtures/make_hf_fixtures.py`): a left-padded
//! batch through the full forward pass, and 20 greedy decode steps with the KV cache.
//! The comparison itself is `foil_models::hf::parity` (also behind `foil selftest`).

use std::path::{Path, PathBuf};

use foil_core::backend::{B, parse_device};
use foil_models::hf::parity::check_fixture;
use foil_models::hf::{HfConfig, HfDecoder, weights};

const TOL: f32 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hf")
        .join(name)
}

fn check_family(name: &str) {
    let device = parse_device("cpu").unwrap();
    let p = check_fixture(&fixture(name), &device).unwrap();
    eprintln!(
        "{name}: forward max abs diff {:e}, {} decode steps max abs diff {:e} (host path {:e})",
        p.forward_max_diff, p.steps, p.decode_max_diff, p.host_decode_max_diff
    );
    assert_eq!(p.steps, 20);
    assert_eq!(p.first_token_mismatch, None, "{name}: greedy tokens differ");
    assert!(p.holds(TOL), "{name}: {p:?}");
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
fn a_corrupted_weight_breaks_parity() {
    // the check can fail: the llama3 fixture with one norm weight changed
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(fixture("llama3")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dir.path().join(f.file_name().unwrap())).unwrap();
    }
    let device = parse_device("cpu").unwrap();
    let config = HfConfig::from_dir(dir.path()).unwrap();
    let mut model = weights::load_safetensors(
        HfDecoder::<B>::init(&config, 64, &device),
        &weights::checkpoint_files(dir.path()).unwrap(),
    )
    .unwrap();
    model.norm.gamma = model.norm.gamma.map(|g| g.mul_scalar(1.01));
    weights::save_safetensors(&model, &dir.path().join("model.safetensors")).unwrap();
    let p = check_fixture(dir.path(), &device).unwrap();
    assert!(!p.holds(TOL), "{p:?}");
    // the unchanged copy, saved by us, still holds: save → load is exact
    let model = weights::load_safetensors(
        HfDecoder::<B>::init(&config, 64, &device),
        &weights::checkpoint_files(&fixture("llama3")).unwrap(),
    )
    .unwrap();
    weights::save_safetensors(&model, &dir.path().join("model.safetensors")).unwrap();
    assert!(check_fixture(dir.path(), &device).unwrap().holds(TOL));
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
