//! Peak memory of log-prob passes on a real-size decoder (random weights), with and
//! without chunking over the vocabulary head. One mode per process, so that each peak
//! (`VmHWM` from /proc/self/status, Linux only) is its own:
//!
//! ```text
//! cargo run --example hf_memory -p foil-models -- qwen2.5-0.5b full 8 256
//! cargo run --example hf_memory -p foil-models -- qwen2.5-0.5b chunked 8 256
//! ```

use burn::tensor::{Int, Tensor, TensorData};
use foil_core::backend::{B, materialize, parse_device};
use foil_core::batch::{to_vec, token_logprobs};
use foil_models::hf::{HfConfig, HfDecoder};

fn peak_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn config(name: &str) -> HfConfig {
    let j = match name {
        "qwen2.5-0.5b" => serde_json::json!({
            "model_type": "qwen2", "vocab_size": 151936, "hidden_size": 896,
            "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14,
            "num_key_value_heads": 2, "rope_theta": 1000000.0, "tie_word_embeddings": true,
            "max_position_embeddings": 32768
        }),
        "smollm2-135m" => serde_json::json!({
            "model_type": "llama", "vocab_size": 49152, "hidden_size": 576,
            "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9,
            "num_key_value_heads": 3, "rope_theta": 100000.0, "tie_word_embeddings": true
        }),
        other => panic!("unknown config {other} (qwen2.5-0.5b, smollm2-135m)"),
    };
    HfConfig::from_json(&j).unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.first().map_or("qwen2.5-0.5b", String::as_str);
    let mode = args.get(1).map_or("chunked", String::as_str);
    let n: usize = args.get(2).map_or(8, |s| s.parse().unwrap());
    let t: usize = args.get(3).map_or(256, |s| s.parse().unwrap());
    let device = parse_device(&std::env::var("FOIL_DEVICE").unwrap_or("cpu".into())).unwrap();
    let config = config(name);
    let model = materialize(HfDecoder::<B>::init(&config, t, &device));
    let after_init = peak_mb();
    let v = config.vocab_size as i64;
    let ids: Vec<i64> = (0..n * t).map(|i| (i as i64 * 7919) % v).collect();
    let positions: Vec<i64> = (0..n * t).map(|i| (i % t) as i64).collect();
    let tokens = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [n, t]), &device);
    let pos = Tensor::<B, 2, Int>::from_data(TensorData::new(positions, [n, t]), &device);
    let valid = Tensor::<B, 2, Int>::ones([n, t], &device).equal_elem(1);
    let targets = tokens.clone().slice([0..n, 1..t]);
    let start = std::time::Instant::now();
    let lp = match mode {
        "full" => token_logprobs(model.forward(tokens, pos, valid), targets),
        "chunked" => model.token_logprobs_chunked(
            tokens,
            pos,
            valid,
            targets,
            foil_models::hf::policy::LOGPROB_CHUNK_ELEMS,
        ),
        other => panic!("mode {other}: full or chunked"),
    };
    let sum: f32 = to_vec(lp).iter().sum();
    println!(
        "{{\"config\": \"{name}\", \"mode\": \"{mode}\", \"batch\": {n}, \"seq\": {t}, \
         \"params\": {}, \"peak_after_init_mb\": {after_init:.0}, \"peak_mb\": {:.0}, \
         \"seconds\": {:.2}, \"checksum\": {sum:.3}}}",
        config.num_params(),
        peak_mb(),
        start.elapsed().as_secs_f64()
    );
}
