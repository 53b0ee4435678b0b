//! The `hf` policy part: LoRA training moves only the adapters, the reference is the base
//! model, checkpoints round-trip, and `export` writes a directory that loads back to the
//! same logits (adapters merged).

use std::path::{Path, PathBuf};

use foil_core::PolicyConfig;
use foil_core::backend::{B, parse_device};
use foil_core::batch::{SeqBatch, to_vec, token_logprobs};
use foil_core::policy::{InferenceModel, OptimizerConfig, Policy};
use foil_models::hf::policy::Hf;
use foil_models::hf::{HfConfig, HfDecoder, LoraConfig, weights};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hf")
        .join(name)
}

fn hf(name: &str, lora: Option<LoraConfig>) -> Hf {
    serde_json::from_value(serde_json::json!({
        "path": fixture(name),
        "lora": lora,
    }))
    .unwrap()
}

fn rows() -> SeqBatch {
    SeqBatch::left_padded(&[vec![5, 9, 17, 3, 44, 8], vec![7, 7, 21, 90]], 0)
}

fn logits(model: &dyn InferenceModel) -> Vec<f32> {
    let device = model.device();
    to_vec(model.forward(&rows().to_input(&device)))
}

/// One AdamW step that raises the log-likelihood of the rows.
fn train_step(policy: &mut Box<dyn Policy>) {
    let device = policy.device();
    let input = rows().to_input(&device);
    let t = rows().t;
    let targets = input.tokens.clone().slice([0..2, 1..t]);
    let lp = token_logprobs(policy.forward(&input), targets);
    let loss = lp.mean().neg().reshape([1]);
    policy.step(loss, 1e-2).unwrap();
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn lora_trains_only_adapters_and_the_reference_is_the_base() {
    let device = parse_device("cpu").unwrap();
    let lora = LoraConfig {
        rank: 4,
        alpha: 8.0,
        targets: vec!["q_proj".into(), "v_proj".into(), "down_proj".into()],
    };
    let mut policy = hf("qwen2", Some(lora)).build(128, &device, 7).unwrap();
    policy.reset_optimizer(&OptimizerConfig::adamw(1e-2));
    // 2 layers × (q: 64·4 + 4·64, v: 64·4 + 4·32, down: 128·4 + 4·64) adapter parameters
    let base = HfConfig::from_dir(&fixture("qwen2")).unwrap().num_params();
    let adapters = 2 * ((64 * 4 + 4 * 64) + (64 * 4 + 4 * 32) + (128 * 4 + 4 * 64));
    assert_eq!(policy.num_params(), base + adapters);
    let before = logits(policy.inference().as_ref());
    let reference_before = logits(policy.reference().expect("LoRA has a reference").as_ref());
    // B = 0 at start: the adapted model equals the base
    assert!(max_diff(&before, &reference_before) < 1e-6);
    for _ in 0..3 {
        train_step(&mut policy);
    }
    let after = logits(policy.inference().as_ref());
    let reference_after = logits(policy.reference().unwrap().as_ref());
    assert!(
        max_diff(&before, &after) > 1e-3,
        "the adapters moved the outputs"
    );
    assert_eq!(reference_before, reference_after, "the base stays frozen");
}

#[test]
fn full_fine_tuning_then_export_loads_back_the_same_model() {
    let device = parse_device("cpu").unwrap();
    for lora in [
        None,
        Some(LoraConfig {
            rank: 2,
            alpha: 4.0,
            targets: vec!["k_proj".into(), "o_proj".into(), "gate_proj".into()],
        }),
    ] {
        let with_lora = lora.is_some();
        let mut policy = hf("llama3", lora).build(128, &device, 1).unwrap();
        policy.reset_optimizer(&OptimizerConfig::adamw(1e-2));
        assert!(policy.reference().is_some() == with_lora);
        train_step(&mut policy);
        train_step(&mut policy);
        let trained = logits(policy.inference().as_ref());
        let dir = tempfile::tempdir().unwrap();
        policy.export(dir.path()).unwrap();
        let config = HfConfig::from_dir(dir.path()).unwrap();
        assert_eq!(config, HfConfig::from_dir(&fixture("llama3")).unwrap());
        let model = weights::load_safetensors(
            HfDecoder::<B>::init(&config, 64, &device),
            &weights::checkpoint_files(dir.path()).unwrap(),
        )
        .unwrap();
        let input = rows().to_input(&device);
        let exported = to_vec(model.forward(input.tokens, input.positions, input.key_valid));
        let d = max_diff(&trained, &exported);
        assert!(d < 1e-4, "lora={with_lora}: exported logits differ by {d}");
    }
}

#[test]
fn checkpoints_restore_weights_and_optimizer() {
    let device = parse_device("cpu").unwrap();
    let lora = LoraConfig {
        rank: 2,
        alpha: 4.0,
        targets: vec!["q_proj".into()],
    };
    let mut a = hf("smollm", Some(lora.clone()))
        .build(128, &device, 3)
        .unwrap();
    a.reset_optimizer(&OptimizerConfig::adamw(1e-2));
    train_step(&mut a);
    let dir = tempfile::tempdir().unwrap();
    a.save(dir.path()).unwrap();
    let mut b = hf("smollm", Some(lora)).build(128, &device, 99).unwrap();
    b.reset_optimizer(&OptimizerConfig::adamw(1e-2));
    b.load(dir.path()).unwrap();
    assert_eq!(
        logits(a.inference().as_ref()),
        logits(b.inference().as_ref())
    );
    // the same next step from both (optimizer moments restored)
    train_step(&mut a);
    train_step(&mut b);
    assert!(
        max_diff(
            &logits(a.inference().as_ref()),
            &logits(b.inference().as_ref())
        ) < 1e-6
    );
}

/// Frozen log-prob passes: the host pass of a CPU inference copy and burn's chunked pass
/// (GPUs; 3 logits at a time here) both equal log-softmax over the full pass's logits, at
/// the columns that predict from a real token (a left-padding column sees no real key, and
/// what each path computes there is not a prediction).
#[test]
fn frozen_logprobs_equal_the_full_pass() {
    let device = parse_device("cpu").unwrap();
    let policy = hf("qwen2-tied", None).build(128, &device, 0).unwrap();
    let model = policy.inference();
    let batch = rows();
    let input = batch.to_input(&device);
    let t = batch.t;
    let targets = input.tokens.clone().slice([0..2, 1..t]);
    let full = to_vec(token_logprobs(model.forward(&input), targets.clone()));
    let host = to_vec(model.token_logprobs(&input, targets.clone()));
    let config = HfConfig::from_dir(&fixture("qwen2-tied")).unwrap();
    let decoder = weights::load_safetensors(
        HfDecoder::<B>::init(&config, 64, &device),
        &weights::checkpoint_files(&fixture("qwen2-tied")).unwrap(),
    )
    .unwrap();
    let chunked = to_vec(decoder.token_logprobs_chunked(
        input.tokens.clone(),
        input.positions.clone(),
        input.key_valid.clone(),
        targets,
        3 * 128,
    ));
    let real: Vec<usize> = (0..2 * (t - 1))
        .filter(|i| batch.valid[i + i / (t - 1)])
        .collect();
    assert_eq!(real.len(), 5 + 3);
    let pick = |v: &[f32]| real.iter().map(|&i| v[i]).collect::<Vec<f32>>();
    assert!(max_diff(&pick(&full), &pick(&host)) < 1e-5);
    assert!(max_diff(&pick(&full), &pick(&chunked)) < 1e-5);
}

#[test]
fn bad_paths_and_options_are_clear_errors() {
    let device = parse_device("cpu").unwrap();
    let e = hf("no-such-model", None)
        .build(128, &device, 0)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("does not exist"), "{e}");
    let e = hf("qwen2", None)
        .build(500, &device, 0)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("the tokenizer has 500 ids but the model's vocab_size is 128"),
        "{e}"
    );
    let bad = LoraConfig {
        rank: 2,
        alpha: 4.0,
        targets: vec!["qproj".into()],
    };
    let e = format!(
        "{:#}",
        hf("qwen2", Some(bad)).build(128, &device, 0).err().unwrap()
    );
    assert!(e.contains("did you mean `q_proj`"), "{e}");
}
