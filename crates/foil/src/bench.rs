//! `foil bench`: speed checks that run from the binary alone, for machines without cargo
//! (a lent GPU machine gets the `foil` binary and `scripts/device/gpu_bench.sh`, nothing
//! else). The CPU benches with statistics are criterion's (`cargo xtask bench`).
//!
//! - `train`: SFT steps of a `tiny_gpt` on random tokens, as the `train_step` criterion
//!   bench does (forward, next-token NLL, backward, AdamW), at any size and precision.
//!   Defaults: issue 7's GPU config (12 layers, d 1024, 16 heads, vocabulary 32000, 8 rows
//!   of 512 tokens), whose PyTorch side is `scripts/bench/torch_train_step.py --gpu`.
//! - `matmul`: `[n, n] × [n, n]` products in f32 or bf16, as `../shared/baselines` timed
//!   burn and PyTorch.
//!
//! Each prints one JSON line. GPU work is asynchronous: every timed step ends in
//! `Backend::sync`, so a step's time includes its kernels.

use std::time::Instant;

use anyhow::Context;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Distribution, Tensor};
use serde::Serialize;

use foil_core::backend::{B, Device, inner_device, open_device};
use foil_core::batch::HostPolicyBatch;
use foil_core::policy::OptimizerConfig;
use foil_core::{Objective, PolicyConfig, PolicyOutput};
use foil_models::TinyGpt;
use foil_models::precision::Precision;
use foil_objectives::Nll;

/// Deterministic pseudo-random ids in `1..vocab` (splitmix64), `n` of them; the same ids
/// as `splitmix_ids` in `scripts/bench/tiny_gpt.py`.
pub fn random_ids(n: usize, vocab: usize, seed: u64) -> Vec<u32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            1 + (z % (vocab as u64 - 1)) as u32
        })
        .collect()
}

/// What `foil bench train` trains (its command-line arguments; `TrainBench::default()`
/// gives the defaults below). The default model has 218 M parameters: on a CPU, pass a
/// smaller one (`--d-model 256 --layers 4 --heads 4 --vocab 512 --rows 16 --len 128` is
/// the `train_step` criterion bench's).
#[derive(Debug, Clone, clap::Parser)]
pub struct TrainBench {
    /// `cpu`, `cpu-ndarray` or `cuda[:N]` (with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Width of the residual stream.
    #[arg(long, default_value_t = 1024)]
    pub d_model: usize,
    /// Decoder blocks.
    #[arg(long, default_value_t = 12)]
    pub layers: usize,
    /// Attention heads (must divide `--d-model`).
    #[arg(long, default_value_t = 16)]
    pub heads: usize,
    /// Vocabulary size.
    #[arg(long, default_value_t = 32000)]
    pub vocab: usize,
    /// Rows per batch.
    #[arg(long, default_value_t = 8)]
    pub rows: usize,
    /// Tokens per row (the loss covers the `len − 1` next-token predictions).
    #[arg(long, default_value_t = 512)]
    pub len: usize,
    /// `f32`, or `bf16` (mixed precision: bf16 passes, f32 weights and AdamW state).
    #[arg(long, default_value = "f32", value_parser = parse_precision)]
    pub precision: Precision,
    /// AdamW's learning rate.
    #[arg(long, default_value_t = 1e-4)]
    pub lr: f64,
    /// Untimed steps first, at least one (autotuning happens in these on GPUs).
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Timed steps; the report gives their median.
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
}

impl Default for TrainBench {
    /// Issue 7's GPU config (`../shared/baselines/results-h200.txt`) on the CPU.
    fn default() -> Self {
        <Self as clap::Parser>::parse_from(["train"])
    }
}

fn parse_precision(s: &str) -> Result<Precision, String> {
    match s {
        "f32" => Ok(Precision::F32),
        "bf16" => Ok(Precision::Bf16),
        other => Err(format!("{other:?}: expected f32 or bf16")),
    }
}

fn parse_dtype(s: &str) -> Result<DType, String> {
    match s {
        "f32" => Ok(DType::F32),
        "bf16" => Ok(DType::BF16),
        other => Err(format!("{other:?}: expected f32 or bf16")),
    }
}

/// One line of `foil bench train`.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    pub bench: &'static str,
    pub device: String,
    pub precision: Precision,
    /// Median over the timed steps.
    pub ms_per_step: f64,
    pub steps_ms: Vec<f64>,
    /// The first warm-up step, which includes autotuning and kernel compilation on GPUs.
    pub first_step_ms: f64,
    pub tokens_per_s: f64,
    /// `6 · params · tokens / s` in TFLOP/s: the usual estimate of a step's FLOPs. It
    /// counts the embeddings' parameters (which take no multiplies; ~15 % of the default
    /// model) and not attention's score products, as `torch_train_step.py` does too: use it
    /// for ratios, not as an absolute rate.
    pub tflops_6nd: f64,
    pub params: usize,
    /// NLL of the first and of the last step (the same batch each time, so it falls).
    pub loss_first: f32,
    pub loss_last: f32,
}

/// Runs `cfg.warmup + cfg.iters` SFT steps on one fixed batch.
pub fn train(cfg: &TrainBench) -> anyhow::Result<TrainReport> {
    anyhow::ensure!(cfg.len >= 2, "--len must be at least 2");
    anyhow::ensure!(cfg.iters >= 1, "--iters must be at least 1");
    let device = open_device(&cfg.device)?;
    let policy_cfg = TinyGpt {
        d_model: cfg.d_model,
        layers: cfg.layers,
        heads: cfg.heads,
        context: cfg.len,
        mlp_ratio: 4,
        init_seed: 0,
        precision: cfg.precision,
    };
    let mut policy = policy_cfg.build(cfg.vocab, &device, 0)?;
    policy.reset_optimizer(&OptimizerConfig::adamw(cfg.lr));
    let ids = random_ids(cfg.rows * cfg.len, cfg.vocab, 7);
    // one prompt token + len − 1 targets per row, as scripts/bench/torch_train_step.py
    let rows: Vec<(&[u32], &[u32], Vec<f32>)> = ids
        .chunks(cfg.len)
        .map(|r| (&r[..1], &r[1..], vec![1.0; cfg.len - 1]))
        .collect();
    // on the device once, as the reference script keeps its ids there
    let batch = HostPolicyBatch::new(&rows, 0).to_device(&policy.device(), cfg.len - 1);
    let objective = Nll::default();
    let sync_on = inner_device(&policy.device());
    let mut step = || -> anyhow::Result<(f64, f32)> {
        let start = Instant::now();
        let logprobs = policy.token_logprobs(&batch.input, batch.targets.clone());
        let output = PolicyOutput {
            logprobs,
            entropy: None,
        };
        let loss = objective.loss(&batch, &output)?;
        // read after the step, as PyTorch's `loss.item()`: reading it before the backward
        // pass would make a GPU wait idle between forward and backward
        let value = loss.value.clone().detach();
        policy.step(loss.value, cfg.lr)?;
        sync(&sync_on)?;
        let value = value.into_scalar();
        Ok((start.elapsed().as_secs_f64() * 1e3, value))
    };
    let (first_step_ms, loss_first) = step()?;
    for _ in 1..cfg.warmup {
        step()?;
    }
    let mut steps_ms = Vec::with_capacity(cfg.iters);
    let mut loss_last = loss_first;
    for _ in 0..cfg.iters {
        let (ms, loss) = step()?;
        steps_ms.push(ms);
        loss_last = loss;
    }
    let ms = median(&steps_ms);
    let params = policy.num_params();
    let tokens = (cfg.rows * cfg.len) as f64;
    Ok(TrainReport {
        bench: "train_step",
        device: cfg.device.clone(),
        precision: cfg.precision,
        ms_per_step: ms,
        steps_ms,
        first_step_ms,
        tokens_per_s: tokens / (ms / 1e3),
        tflops_6nd: 6.0 * params as f64 * tokens / (ms / 1e3) / 1e12,
        params,
        loss_first,
        loss_last,
    })
}

/// What `foil bench matmul` multiplies (its command-line arguments).
#[derive(Debug, Clone, clap::Parser)]
pub struct MatmulBench {
    /// `cpu`, `cpu-ndarray` or `cuda[:N]` (with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Side of the square matrices.
    #[arg(long, default_value_t = 8192)]
    pub n: usize,
    /// `f32` or `bf16`.
    #[arg(long, default_value = "f32", value_parser = parse_dtype)]
    pub dtype: DType,
    /// Timed products (after one untimed one).
    #[arg(long, default_value_t = 10)]
    pub iters: usize,
}

/// One line of `foil bench matmul`.
#[derive(Debug, Clone, Serialize)]
pub struct MatmulReport {
    pub bench: &'static str,
    pub device: String,
    pub dtype: String,
    pub n: usize,
    /// Mean over the timed products (one sync at the end, as the baseline probes did).
    pub ms: f64,
    pub tflops: f64,
}

/// Times `cfg.iters` products `[n, n] × [n, n]` after one untimed one.
pub fn matmul(cfg: &MatmulBench) -> anyhow::Result<MatmulReport> {
    anyhow::ensure!(cfg.iters >= 1, "--iters must be at least 1");
    let device = inner_device(&open_device(&cfg.device)?);
    let random =
        || Tensor::<B, 2>::random([cfg.n, cfg.n], Distribution::Default, &device).cast(cfg.dtype);
    let (a, b) = (random(), random());
    // one untimed product (autotuning on GPUs), kept until the sync so it is not dropped
    let warm = a.clone().matmul(b.clone());
    sync(&device)?;
    drop(warm);
    let start = Instant::now();
    let mut keep = Vec::with_capacity(cfg.iters);
    for _ in 0..cfg.iters {
        keep.push(a.clone().matmul(b.clone()));
    }
    sync(&device)?;
    let ms = start.elapsed().as_secs_f64() * 1e3 / cfg.iters as f64;
    drop(keep);
    let n = cfg.n as f64;
    Ok(MatmulReport {
        bench: "matmul",
        device: cfg.device.clone(),
        dtype: format!("{:?}", cfg.dtype).to_lowercase(),
        n: cfg.n,
        ms,
        tflops: 2.0 * n * n * n / (ms / 1e3) / 1e12,
    })
}

/// Waits for `device`'s queued work.
fn sync(device: &Device) -> anyhow::Result<()> {
    B::sync(device)
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .context("waiting for the device")
}

fn median(xs: &[f64]) -> f64 {
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        0.5 * (s[m - 1] + s[m])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(precision: Precision) -> TrainBench {
        TrainBench {
            d_model: 8,
            layers: 1,
            heads: 2,
            vocab: 16,
            rows: 2,
            len: 4,
            precision,
            lr: 1e-2,
            warmup: 1,
            iters: 3,
            ..TrainBench::default()
        }
    }

    /// The bench trains the model it says: its parameter count is the config's, worked by
    /// hand for d 8, 1 layer, vocabulary 16, 4 positions, FFN 4d (weights + biases):
    /// token 16·8 = 128, position 4·8 = 32; the block's LN₁ 2·8 = 16, qkv 8·24 + 24 = 216,
    /// proj 8·8 + 8 = 72, LN₂ 16, fc1 8·32 + 32 = 288, fc2 32·8 + 8 = 264 (sum 872);
    /// LN_f 16; head 8·16 + 16 = 144. Total 128 + 32 + 872 + 16 + 144 = 1192.
    /// Its steps are real: on one fixed batch at lr 1e-2 the NLL falls, in f32 and in
    /// bf16 mixed precision.
    #[test]
    fn train_bench_steps_the_configured_model() {
        for precision in [Precision::F32, Precision::Bf16] {
            let r = train(&tiny(precision)).unwrap();
            assert_eq!(r.params, 1192);
            assert_eq!(r.steps_ms.len(), 3);
            assert!(r.ms_per_step > 0.0 && r.tokens_per_s > 0.0);
            // 4 steps (1 warm-up + 3 timed) from a start near ln 16 ≈ 2.77
            assert!((r.loss_first - 16f32.ln()).abs() < 0.5, "{}", r.loss_first);
            assert!(r.loss_last < r.loss_first - 0.05, "{precision:?}: {r:?}");
            let tflops = 6.0 * 1192.0 * 8.0 / (r.ms_per_step / 1e3) / 1e12;
            assert!((r.tflops_6nd - tflops).abs() < 1e-12);
        }
    }

    #[test]
    fn matmul_bench_reports_its_rate() {
        let cpu = open_device("cpu").unwrap();
        // its random draws under with_seed's lock, away from other tests' seeded ones
        let r = foil_core::backend::with_seed(&cpu, 1, || {
            matmul(&MatmulBench {
                device: "cpu".into(),
                n: 64,
                dtype: DType::F32,
                iters: 2,
            })
        })
        .unwrap();
        assert_eq!((r.n, r.dtype.as_str()), (64, "f32"));
        assert!((r.tflops - 2.0 * 64f64.powi(3) / (r.ms / 1e3) / 1e12).abs() < 1e-9);
    }

    #[test]
    fn ids_match_the_python_references() {
        // what scripts/bench/tiny_gpt.py's splitmix_ids(4, 512, 7) printed
        assert_eq!(random_ids(4, 512, 7), vec![451, 158, 449, 417]);
    }
}
