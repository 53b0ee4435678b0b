//! SmolLM2-135M-Instruct from its Q4_1 GGUF (`cargo xtask fetch smollm2`) against what
//! transformers computes from the same file (`scripts/fixtures/make_smollm2_expected.py`):
//! chat-formatted prompt ids, last-position logits to 1e-3, and 32 greedy tokens on 5
//! prompts. Skipped, with a message, when the model has not been fetched.

use std::path::{Path, PathBuf};

use burn::tensor::{Int, Tensor, TensorData};
use foil_core::PolicyConfig;
use foil_core::backend::{B, parse_device};
use foil_core::batch::{SeqBatch, to_vec};
use foil_models::hf::policy::Hf;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn model_path() -> Option<PathBuf> {
    let p = root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
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

#[test]
fn smollm2_gguf_matches_transformers() {
    let Some(path) = model_path() else { return };
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smollm2_expected.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let device = parse_device(&std::env::var("FOIL_TEST_DEVICE").unwrap_or("cpu".into())).unwrap();
    let hf: Hf = serde_json::from_value(serde_json::json!({
        "path": path, "prompt": {"chat": {}}
    }))
    .unwrap();
    let tokenizer = hf.tokenizer().unwrap().unwrap();
    let model = hf.load_inference(&device).unwrap();
    for case in expected["cases"].as_array().unwrap() {
        let prompt = case["prompt"].as_str().unwrap();
        let ids: Vec<u32> = case["prompt_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(
            tokenizer.encode_prompt(prompt).unwrap(),
            ids,
            "chat template + tokenizer on {prompt:?}"
        );
        let batch = SeqBatch::left_padded(std::slice::from_ref(&ids), 2);
        let (logits, mut cache) = model.prefill(&batch.to_input(&device));
        let last = to_vec(logits.clone());
        let mut worst = 0f32;
        for key in [("top_ids", "top_logits"), ("probe_ids", "probe_logits")] {
            let idx = case[key.0].as_array().unwrap();
            let val = case[key.1].as_array().unwrap();
            for (i, v) in idx.iter().zip(val) {
                let d = (last[i.as_u64().unwrap() as usize] - v.as_f64().unwrap() as f32).abs();
                worst = worst.max(d);
            }
        }
        eprintln!("{prompt:?}: last-position logits max abs diff {worst:e}");
        assert!(worst < 1e-3, "{prompt:?}: logits differ by {worst}");
        let mean = last.iter().sum::<f32>() / last.len() as f32;
        assert!((mean - case["mean"].as_f64().unwrap() as f32).abs() < 1e-3);
        // 32 greedy tokens with the KV cache
        let want: Vec<u32> = case["greedy"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        let mut host = last;
        let mut got = Vec::new();
        for step in 0..want.len() {
            let next = (0..host.len())
                .max_by(|&a, &b| host[a].total_cmp(&host[b]))
                .unwrap();
            if step < want.len() && next as u32 != want[step] {
                eprintln!(
                    "{prompt:?} step {step}: ours {next} ({}) vs transformers {} ({})",
                    host[next], want[step], host[want[step] as usize]
                );
            }
            got.push(next as u32);
            let tt =
                Tensor::<B, 2, Int>::from_data(TensorData::new(vec![next as i64], [1, 1]), &device);
            let pp = Tensor::<B, 2, Int>::from_data(
                TensorData::new(vec![(ids.len() + step) as i64], [1, 1]),
                &device,
            );
            host = to_vec(model.decode(&mut cache, tt, pp));
        }
        assert_eq!(got, want, "greedy tokens for {prompt:?}");
    }
}

#[test]
fn smollm2_builds_as_a_trainable_policy() {
    let Some(path) = model_path() else { return };
    let hf: Hf = serde_json::from_value(serde_json::json!({
        "path": path, "lora": {"rank": 4}
    }))
    .unwrap();
    let policy = hf.build(49152, &parse_device("cpu").unwrap(), 0).unwrap();
    // 134,515,008 base + 30 layers × (q: 576·4 + 4·576, v: 576·4 + 4·192) adapters
    assert_eq!(
        policy.num_params(),
        134_515_008 + 30 * ((576 * 4 + 4 * 576) + (576 * 4 + 4 * 192))
    );
}

/// Prefill + 64 greedy decode steps of 8 chat prompts, timed (run by hand; the decode path
/// is the host's on the CPU unless `FOIL_BURN_DECODE=1`):
/// `cargo test -p foil-models --test smollm2 time_decode -- --ignored --nocapture`.
#[test]
#[ignore = "timing, run by hand"]
fn time_decode() {
    let Some(path) = model_path() else { return };
    let device = parse_device("cpu").unwrap();
    let hf: Hf = serde_json::from_value(serde_json::json!({
        "path": path, "prompt": {"chat": {}}
    }))
    .unwrap();
    let tokenizer = hf.tokenizer().unwrap().unwrap();
    let model = hf.load_inference(&device).unwrap();
    let prompts: Vec<Vec<u32>> = (0..8)
        .map(|i| {
            let prompt = format!("What is {i} plus {}? Answer briefly.", 2 * i + 1);
            tokenizer.encode_prompt(&prompt).unwrap()
        })
        .collect();
    let path_name = match std::env::var("FOIL_BURN_DECODE").as_deref() {
        Ok("1") => "burn",
        _ => "host",
    };
    for round in 0..3 {
        let start = std::time::Instant::now();
        let batch = SeqBatch::left_padded(&prompts, 0);
        let (mut logits, mut cache) = model.prefill(&batch.to_input(&device));
        let prefill = start.elapsed().as_secs_f64();
        for step in 0..64 {
            let host = to_vec(logits);
            let v = host.len() / 8;
            let next: Vec<i64> = (0..8)
                .map(|r| {
                    let row = &host[r * v..(r + 1) * v];
                    (0..v).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap() as i64
                })
                .collect();
            let pos: Vec<i64> = prompts.iter().map(|p| (p.len() + step) as i64).collect();
            let tt = Tensor::<B, 2, Int>::from_data(TensorData::new(next, [8, 1]), &device);
            let pp = Tensor::<B, 2, Int>::from_data(TensorData::new(pos, [8, 1]), &device);
            logits = model.decode(&mut cache, tt, pp);
        }
        let total = start.elapsed().as_secs_f64();
        eprintln!(
            "round {round} ({path_name}): prefill of 8 × {} tokens {prefill:.3} s, 64 decode steps {:.3} s ({:.0} tokens/s)",
            batch.t,
            total - prefill,
            8.0 * 64.0 / (total - prefill)
        );
    }
}
