//! The Hugging Face path through the whole framework: a run on the fixture Qwen2 with its
//! own tokenizer and chat template, LoRA with the base as KL reference, `foil generate`
//! from a pretrained directory and from the run, and `foil export` of the run loading
//! back as a pretrained directory that generates the same tokens.

use std::path::{Path, PathBuf};

use foil::generate::{GenerateOptions, generate};
use foil_trainers::{RunOptions, run};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../foil-models/tests/fixtures/hf/tiny-qwen2-arith")
}

fn recipe(lora: bool) -> String {
    format!(
        "\
name: hf-tiny
seed: 2
device: cpu
checkpoint_every: 3
task: {{type: arithmetic, max_operand: 3, ops: '+', modulus: 10, train: 48, test: 8}}
policy:
  type: hf
  path: {path}
  context: 96
  prompt: {{chat: {{}}}}
  {lora}
stages:
  - {{type: sft, steps: 6, batch: 8, optimizer: {{type: adamw, lr: 1.0e-2}}}}
  - type: rl
    steps: 2
    prompts_per_step: 2
    sampler: {{type: local, n: 4, max_tokens: 12}}
    objective:
      type: sum
      terms:
        - {{type: ppo_clip}}
        - {{type: kl, coef: 0.1}}
  - {{type: eval, label: after, k: [1], sampler: {{type: local, n: 2, max_tokens: 12}}}}
",
        path = fixture().display(),
        lora = if lora {
            "lora: {rank: 4, alpha: 8, targets: [q_proj, v_proj, up_proj]}"
        } else {
            ""
        }
    )
}

fn gen_opts(policy: &Path, chat: bool) -> GenerateOptions {
    GenerateOptions {
        policy: policy.to_path_buf(),
        prompts: vec!["Q:1+2=".into(), "Q:3+3=".into()],
        max_tokens: 10,
        temperature: 0.0,
        top_p: 1.0,
        n: 1,
        chat: chat.then_some(None),
        device: "cpu".into(),
        seed: 0,
        warmup: false,
        dtype: Default::default(),
    }
}

#[test]
fn generate_from_a_pretrained_directory_formats_chat_prompts() {
    foil::link_all();
    let raw = generate(&gen_opts(&fixture(), false)).unwrap();
    let chat = generate(&gen_opts(&fixture(), true)).unwrap();
    assert_eq!(raw.outputs.len(), 2);
    // ChatML: <|im_start|>user\nQ:1+2=<|im_end|>\n<|im_start|>assistant\n — ids 1 and 2
    // are <|im_start|> and <|im_end|> in the fixture tokenizer
    let p = &chat.outputs[0].prompt_token_ids;
    assert_eq!(p[0], 1);
    assert!(p.contains(&2));
    assert!(p.len() > raw.outputs[0].prompt_token_ids.len() + 5);
    // greedy is deterministic
    let again = generate(&gen_opts(&fixture(), true)).unwrap();
    assert_eq!(chat.outputs, again.outputs);
    for o in &chat.outputs {
        assert!(!o.token_ids.is_empty() && o.token_ids.len() <= 10);
    }
}

#[test]
fn a_run_trains_generates_and_exports() {
    foil::link_all();
    for lora in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("r.yaml");
        std::fs::write(&path, recipe(lora)).unwrap();
        let summary = run(
            Some(&path),
            &RunOptions {
                run_dir: Some(tmp.path().join("run")),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(summary.finished);
        let metrics = std::fs::read_to_string(summary.dir.join("metrics.jsonl")).unwrap();
        // both stages logged
        assert!(metrics.contains(r#""stage_type":"sft""#), "{metrics}");
        assert!(metrics.contains(r#""stage_type":"rl""#), "{metrics}");
        let from_run = generate(&gen_opts(&summary.dir, false)).unwrap();
        let out = tmp.path().join("exported");
        foil::export::export(&summary.dir, &out).unwrap();
        for f in [
            "model.safetensors",
            "config.json",
            "tokenizer.json",
            "tokenizer_config.json",
        ] {
            assert!(out.join(f).exists(), "lora={lora}: {f} missing");
        }
        // the exported directory, read as a pretrained model with chat prompts (the run's
        // format), greedily continues exactly as the run's checkpoint does
        let from_export = generate(&gen_opts(&out, true)).unwrap();
        let ids = |r: &foil::generate::GenerateReport| {
            r.outputs
                .iter()
                .map(|o| o.token_ids.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&from_run), ids(&from_export), "lora={lora}");
        // the same as one GGUF file (f32): same greedy continuations
        let gguf = tmp.path().join("exported.gguf");
        foil::export::export_as(
            &summary.dir,
            &gguf,
            foil::export::ExportFormat::Gguf(foil_core::policy::GgufDtype::F32),
        )
        .unwrap();
        let from_gguf = generate(&gen_opts(&gguf, true)).unwrap();
        assert_eq!(ids(&from_run), ids(&from_gguf), "lora={lora} (gguf)");
        // export refuses to overwrite
        let e = foil::export::export(&summary.dir, &out)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not empty"), "{e}");
    }
}

#[test]
fn bad_policy_paths_are_explained() {
    foil::link_all();
    let e = generate(&gen_opts(Path::new("/nonexistent/model"), false))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("does not exist"), "{e}");
    let tmp = tempfile::tempdir().unwrap();
    let e = generate(&gen_opts(tmp.path(), false))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("is not a model directory"), "{e}");
}
