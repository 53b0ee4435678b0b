//! The `local` sampler's own work per decode step, without a model: a model whose
//! prefill and decode return the same fixed `[64, 49152]` logits (SmolLM2's vocabulary,
//! the batch of issue 7's GPU decode target). What is timed is everything the sampler does
//! on the host around the model: copying the logits out of the tensor, the entropy of
//! every row, the processed distribution, the draw and the bookkeeping. On a GPU this
//! runs between two decode steps while the device waits, so it bounds decode speed
//! however fast the kernels are (`docs/benchmarks.md`, session 11).

use std::time::Duration;

use burn::tensor::{Int, Tensor, TensorData};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use foil_benches::IdTokenizer;
use foil_core::backend::{B, Device};
use foil_core::batch::SeqInput;
use foil_core::policy::{DecodeCache, InferenceModel};
use foil_core::{Problem, Sampler, Tokenizer};
use foil_samplers::Local;

const ROWS: usize = 64;
const VOCAB: usize = 49152;
const NEW: usize = 16;

/// Returns the same logits for every row set it is asked about: no compute at all.
struct FixedLogits {
    logits: Tensor<B, 2>,
    device: Device,
}

impl InferenceModel for FixedLogits {
    fn forward(&self, _input: &SeqInput) -> Tensor<B, 3> {
        unreachable!("the sampler bench only prefills and decodes")
    }
    fn prefill(&self, input: &SeqInput) -> (Tensor<B, 2>, DecodeCache) {
        let n = input.tokens.dims()[0];
        (self.logits.clone().slice([0..n, 0..VOCAB]), Box::new(()))
    }
    fn decode(
        &self,
        _cache: &mut DecodeCache,
        tokens: Tensor<B, 2, Int>,
        _positions: Tensor<B, 2, Int>,
    ) -> Tensor<B, 2> {
        let n = tokens.dims()[0];
        self.logits.clone().slice([0..n, 0..VOCAB])
    }
    fn device(&self) -> Device {
        self.device.clone()
    }
    fn context(&self) -> usize {
        1024
    }
}

/// Logits of spread ~N(0, 3²)-like values from a fixed xorshift stream.
fn fixed_logits(device: &Device) -> Tensor<B, 2> {
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let values: Vec<f32> = (0..ROWS * VOCAB)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            // sum of three uniforms in [-1, 1): roughly normal, std 1; scaled to 3
            let u = |b: u64| ((s >> b) & 0xFFFF) as f32 / 32768.0 - 1.0;
            3.0 * (u(0) + u(16) + u(32))
        })
        .collect();
    Tensor::from_data(TensorData::new(values, [ROWS, VOCAB]), device)
}

fn sampler_host(c: &mut Criterion) {
    foil::link_all();
    let device = foil_core::backend::parse_device("cpu").expect("cpu device");
    let model = FixedLogits {
        logits: fixed_logits(&device),
        device,
    };
    let tok = IdTokenizer { vocab: VOCAB };
    let problems: Vec<Problem> = (0..ROWS)
        .map(|i| Problem {
            id: format!("p{i}"),
            prompt: tok.decode(&[1 + i as u32, 2, 3]),
            solution: String::new(),
            answer: String::new(),
            difficulty: 0,
        })
        .collect();
    let mut g = c.benchmark_group("sampler_host");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements((ROWS * NEW) as u64));
    for (name, temperature, top_p) in [
        ("greedy", 0.0, 1.0),
        ("t1", 1.0, 1.0),
        ("t1_top_p", 1.0, 0.9),
    ] {
        // one row group, as on a GPU device
        let sampler = Local {
            n: 1,
            temperature,
            top_p,
            max_tokens: NEW,
            threads: 1,
            ..Default::default()
        };
        let tokens: usize = sampler
            .sample(&model, &tok, &problems, 0)
            .expect("sampling")
            .iter()
            .flat_map(|g| &g.completions)
            .map(|c| c.tokens.len())
            .sum();
        assert_eq!(tokens, ROWS * NEW, "every row decodes all its tokens");
        g.bench_function(format!("{name}_b{ROWS}_v{VOCAB}"), |b| {
            b.iter(|| {
                sampler
                    .sample(&model, &tok, &problems, 0)
                    .expect("sampling")
            })
        });
    }
    g.finish();
}

criterion_group!(benches, sampler_host);
criterion_main!(benches);
