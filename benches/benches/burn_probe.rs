//! The pre-foil baseline GPT (`../shared/baselines/burnprobe`: burn's `TransformerEncoder`,
//! pre-norm, d 256, 4 layers, 16 × 128, cross-entropy, AdamW) in foil's build profile, on
//! `Autodiff<Flex>` and on `burn::Dispatch` with an autodiff flex device: separates what the
//! profile costs from what foil's own model code costs (`docs/benchmarks.md`).

use std::time::Duration;

use burn::backend::{Autodiff, Flex};
use burn::nn::attention::generate_autoregressive_mask;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::transformer::{
    TransformerEncoder, TransformerEncoderConfig, TransformerEncoderInput,
};
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::backend::AutodiffBackend;
use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};

#[derive(Module, Debug)]
struct Gpt<B: Backend> {
    tok: Embedding<B>,
    pos: Embedding<B>,
    enc: TransformerEncoder<B>,
    head: Linear<B>,
}

impl<B: Backend> Gpt<B> {
    fn new(dev: &B::Device) -> Self {
        let d = 256;
        Self {
            tok: EmbeddingConfig::new(512, d).init(dev),
            pos: EmbeddingConfig::new(128, d).init(dev),
            enc: TransformerEncoderConfig::new(d, 4 * d, 4, 4)
                .with_dropout(0.0)
                .with_norm_first(true)
                .init(dev),
            head: LinearConfig::new(d, 512).init(dev),
        }
    }
    fn forward(&self, ids: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let [b, t] = ids.dims();
        let dev = ids.device();
        let pos = Tensor::<B, 1, Int>::arange(0..t as i64, &dev)
            .reshape([1, t])
            .repeat_dim(0, b);
        let x = self.tok.forward(ids) + self.pos.forward(pos);
        let mask = generate_autoregressive_mask::<B>(b, t, &dev);
        let h = self
            .enc
            .forward(TransformerEncoderInput::new(x).mask_attn(mask));
        self.head.forward(h)
    }
}

fn bench_on<B: AutodiffBackend>(c: &mut Criterion, name: &str, dev: B::Device) {
    let (b, t, vocab) = (16, 128, 512);
    let mut model = Gpt::<B>::new(&dev);
    let mut opt = AdamWConfig::new().init::<B, Gpt<B>>();
    let ce = CrossEntropyLossConfig::new().init(&dev);
    let ids = Tensor::<B, 2, Int>::random([b, t], Distribution::Uniform(0.0, vocab as f64), &dev);
    let tgt = Tensor::<B, 2, Int>::random([b, t], Distribution::Uniform(0.0, vocab as f64), &dev);
    let mut g = c.benchmark_group("burn_probe");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10));
    g.bench_function(name, |bench| {
        bench.iter(|| {
            let logits = model.forward(ids.clone());
            let loss = ce.forward(logits.reshape([b * t, vocab]), tgt.clone().reshape([b * t]));
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = opt.step(1e-4, model.clone(), grads);
            B::sync(&dev).unwrap();
        })
    });
    g.finish();
}

fn burn_probe(c: &mut Criterion) {
    bench_on::<Autodiff<Flex>>(c, "train_autodiff_flex", Default::default());
    let dev =
        burn::DispatchDevice::autodiff(burn::DispatchDevice::Flex(burn::backend::flex::FlexDevice));
    bench_on::<burn::Dispatch>(c, "train_dispatch_flex", dev);
}

criterion_group!(benches, burn_probe);
criterion_main!(benches);
