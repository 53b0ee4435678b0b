//! flex f32 GEMM throughput on the train step's shapes, for comparison with
//! `torch.matmul` at the same sizes (`cargo run --profile dev -p foil-benches --example
//! mm_probe [MxKxN…]`; `RAYON_NUM_THREADS=1` for one core). docs/benchmarks.md, session 6.
//! Without arguments it times the train step's shapes and one decode-step shape.

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::Distribution;
use std::time::Instant;
fn main() {
    let dev = Default::default();
    let mut shapes: Vec<(usize, usize, usize)> = std::env::args()
        .skip(1)
        .map(|a| {
            let d: Vec<usize> = a
                .split('x')
                .map(|v| v.parse().expect("shapes are MxKxN"))
                .collect();
            assert_eq!(d.len(), 3, "shapes are MxKxN, got {a}");
            (d[0], d[1], d[2])
        })
        .collect();
    if shapes.is_empty() {
        shapes = vec![
            (2048, 256, 768),
            (2048, 256, 1024),
            (2048, 1024, 256),
            (16, 256, 768),
        ];
    }
    for (m, k, n) in shapes {
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
