//! flex f32 GEMM throughput on the train step's shapes, for comparison with
//! `torch.matmul` at the same sizes (`cargo run --profile dev -p foil-benches --example
//! mm_probe`; `RAYON_NUM_THREADS=1` for one core). docs/benchmarks.md, session 6.

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::Distribution;
use std::time::Instant;
fn main() {
    let dev = Default::default();
    for (m, k, n) in [
        (2048, 256, 768),
        (2048, 256, 1024),
        (2048, 1024, 256),
        (16, 256, 768),
    ] {
        let a = Tensor::<Flex, 2>::random([m, k], Distribution::Normal(0.0, 1.0), &dev);
        let b = Tensor::<Flex, 2>::random([k, n], Distribution::Normal(0.0, 1.0), &dev);
        for _ in 0..3 {
            let _ = a.clone().matmul(b.clone()).into_data();
        }
        let it = 50;
        let t = Instant::now();
        for _ in 0..it {
            let _ = a.clone().matmul(b.clone()).into_data();
        }
        let s = t.elapsed().as_secs_f64() / it as f64;
        println!(
            "flex {m}x{k}x{n}: {:.3} ms, {:.1} GFLOP/s",
            s * 1e3,
            2.0 * (m * k * n) as f64 / s / 1e9
        );
    }
}
