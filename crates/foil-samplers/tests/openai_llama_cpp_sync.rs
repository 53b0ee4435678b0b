//! Weight sync to llama.cpp: `sync: {format: gguf, restart: {...}}` makes the `openai`
//! sampler start llama-cpp-python's server on SmolLM2's GGUF, and at each sync write the
//! policy as `{dir}/model.gguf`, stop the server it started and start it again on the new
//! file. Three syncs (a training step before each), sampling after each; the metrics are
//! printed (`--nocapture`) — the numbers in `docs/remote-inference.md`.
//!
//! The llama.cpp test is skipped, with a message, unless a Python with
//! `llama_cpp.server` (`$FOIL_LLAMA_PYTHON`, else `~/llama-venv/bin/python`, else `python3`) and
//! `models/SmolLM2-135M-Instruct.Q4_1.gguf` (`cargo xtask fetch smollm2`) exist. A server
//! that fails to start is an error quoting its output (tested with `sh`), and a GGUF sync
//! without a server writes the file (tiny Qwen2 fixture); both run everywhere.

mod common;

use std::path::PathBuf;

use foil_core::backend::parse_device;
use foil_core::batch::{SeqBatch, token_logprobs};
use foil_core::policy::{GgufDtype, OptimizerConfig};
use foil_core::{PolicyConfig, Sampler};
use foil_models::hf::policy::Hf;
use foil_samplers::openai::{OpenAi, Restart, SyncFormat, WeightSync};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[test]
fn gguf_sync_restarts_llama_cpp_on_the_new_weights() {
    let Some(gguf) = common::smollm2_gguf() else {
        return;
    };
    let Some(py) = common::llama_server_python() else {
        return;
    };
    let dtype = match std::env::var("FOIL_SYNC_DTYPE").as_deref() {
        Ok("f16") => GgufDtype::F16,
        _ => GgufDtype::F32,
    };
    let port = common::free_port().to_string();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("sync");
    let command: Vec<String> = [
        py.as_str(),
        "-m",
        "llama_cpp.server",
        "--model",
        "{gguf}",
        "--port",
        &port,
        "--n_ctx",
        "512",
        "--n_threads",
        "2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let s = OpenAi {
        base_url: format!("http://127.0.0.1:{port}/v1"),
        n: 2,
        n_per_request: 1,
        max_tokens: 8,
        stop: vec!["\n".into()],
        concurrency: 2,
        sync: Some(WeightSync {
            dir: dir.clone(),
            format: SyncFormat::Gguf,
            gguf_dtype: dtype,
            restart: Some(Restart {
                command,
                initial_gguf: gguf.clone(),
                ready_timeout_s: 120.0,
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let device = parse_device("cpu").unwrap();
    let part: Hf = serde_json::from_value(serde_json::json!({
        "path": gguf, "context": 64, "lora": {"rank": 4}
    }))
    .unwrap();
    let tok = part.tokenizer().unwrap().unwrap();
    let mut policy = part.build(49152, &device, 0).unwrap();
    policy.reset_optimizer(&OptimizerConfig::adamw(1e-3));
    let inference = policy.inference();

    // the first sample starts the server on the initial GGUF
    let groups = s
        .sample(inference.as_ref(), tok.as_ref(), &common::problems(), 1)
        .unwrap();
    assert!(groups.iter().all(|g| g.completions.len() == 2));

    let (mut export, mut mb, mut restart) = (Vec::new(), Vec::new(), Vec::new());
    for step in 0..3 {
        // one LoRA step, so each sync ships different (merged) weights
        let b = SeqBatch::left_padded(&[vec![1, 504, 3458, 314, 253, 1345]], 0);
        let input = b.to_input(&policy.device());
        let targets = input.tokens.clone().slice([0..1, 1..b.t]);
        let loss = token_logprobs(policy.forward(&input), targets)
            .mean()
            .neg()
            .reshape([1]);
        policy.step(loss, 1e-3).unwrap();

        let m = s.sync_weights(policy.as_ref(), step).unwrap();
        let names: Vec<&str> = m.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["sync_export_s", "sync_mb", "sync_restart_s"]);
        eprintln!("sync {step} ({dtype:?}): {m:?}");
        export.push(m[0].1);
        mb.push(m[1].1);
        restart.push(m[2].1);
        assert!(dir.join("model.gguf").is_file());
        // the restarted server serves the new file
        let mut resp = ureq::get(&format!("http://127.0.0.1:{port}/v1/models"))
            .call()
            .unwrap();
        let models = resp.body_mut().read_to_string().unwrap();
        assert!(models.contains("model.gguf"), "{models}");
        let groups = s
            .sample(
                policy.inference().as_ref(),
                tok.as_ref(),
                &common::problems(),
                2 + step as u64,
            )
            .unwrap();
        assert!(groups.iter().all(|g| g.completions.len() == 2));
    }
    // f32: 134.5M parameters × 4 bytes + tokenizer metadata
    let want_mb = match dtype {
        GgufDtype::F32 => 538.0,
        GgufDtype::F16 => 270.0,
    };
    assert!((mb[0] - want_mb).abs() < 10.0, "file MB {mb:?}");
    eprintln!(
        "SmolLM2-135M {dtype:?}: export {:.2} s, {:.1} MB, restart {:.2} s (median of 3)",
        median(export),
        median(mb),
        median(restart)
    );
}

#[test]
fn a_server_that_fails_to_start_is_an_error_with_its_output() {
    let out = tempfile::tempdir().unwrap();
    let initial = out.path().join("x.gguf");
    std::fs::write(&initial, b"not a model").unwrap();
    let s = OpenAi {
        base_url: format!("http://127.0.0.1:{}/v1", common::free_port()),
        sync: Some(WeightSync {
            dir: out.path().join("sync"),
            format: SyncFormat::Gguf,
            restart: Some(Restart {
                command: vec![
                    "sh".into(),
                    "-c".into(),
                    "echo cannot load {gguf} >&2; exit 3".into(),
                ],
                initial_gguf: initial.clone(),
                ready_timeout_s: 30.0,
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let sync = s.sync.as_ref().unwrap();
    let err = sync
        .ensure_started(&s.base_url, &ureq::Agent::new_with_defaults())
        .unwrap_err()
        .to_string();
    assert!(err.contains("exited"), "{err}");
    assert!(
        err.contains(&format!("cannot load {}", initial.display())),
        "{err}"
    );

    // a missing initial file is named
    let s2 = WeightSync {
        format: SyncFormat::Gguf,
        restart: Some(Restart {
            command: vec!["true".into()],
            initial_gguf: out.path().join("missing.gguf"),
            ..Default::default()
        }),
        ..Default::default()
    };
    let err = s2
        .ensure_started(&s.base_url, &ureq::Agent::new_with_defaults())
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.gguf"), "{err}");

    // restart needs a GGUF export
    let s3 = WeightSync {
        format: SyncFormat::Safetensors,
        restart: Some(Restart {
            command: vec!["true".into()],
            initial_gguf: initial,
            ..Default::default()
        }),
        ..Default::default()
    };
    let err = s3
        .ensure_started(&s.base_url, &ureq::Agent::new_with_defaults())
        .unwrap_err()
        .to_string();
    assert!(err.contains("format: gguf"), "{err}");
}

/// `format: gguf` without `restart` (runs everywhere): `{dir}/model.gguf` is written,
/// replaced at the next sync, and reads back as the policy's configuration.
#[test]
fn gguf_sync_without_a_server_writes_the_file() {
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../foil-models/tests/fixtures/hf/tiny-qwen2-arith");
    let part: Hf = serde_json::from_value(serde_json::json!({"path": fixture})).unwrap();
    let policy = part.build(277, &parse_device("cpu").unwrap(), 0).unwrap();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("sync");
    let s = OpenAi {
        sync: Some(WeightSync {
            dir: dir.clone(),
            format: SyncFormat::Gguf,
            gguf_dtype: GgufDtype::F16,
            ..Default::default()
        }),
        ..Default::default()
    };
    for step in 0..2 {
        let m = s.sync_weights(policy.as_ref(), step).unwrap();
        let names: Vec<&str> = m.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["sync_export_s", "sync_mb"]);
        let file = foil_gguf::GgufFile::open(dir.join("model.gguf")).unwrap();
        assert_eq!(file.architecture(), Some("qwen2"));
        assert_eq!(file.get_u64("qwen2.block_count"), Some(2));
        assert_eq!(
            file.tensor_info("blk.0.attn_q.weight").unwrap().ggml_type,
            foil_gguf::GgmlType::F16
        );
        let bytes = std::fs::metadata(dir.join("model.gguf")).unwrap().len();
        assert!(
            (m[1].1 - bytes as f64 / 1e6).abs() < 1e-9,
            "{m:?} vs {bytes}"
        );
    }
    assert!(!out.path().join(".sync.tmp").exists());
}
