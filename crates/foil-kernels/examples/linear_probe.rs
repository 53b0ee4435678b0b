//! GFLOP/s of [`foil_kernels::linear`] on decode-step shapes, cycling over as many
//! weights as a 4-layer d-256 GPT has (so they come from L3, as in a decode step):
//! `cargo run --profile dev -p foil-kernels --example linear_probe [ROWS]`.
use std::time::Instant;

fn main() {
    let m: usize = std::env::args()
        .nth(1)
        .map_or(8, |a| a.parse().expect("ROWS"));
    let shapes = [(256, 768), (256, 256), (256, 1024), (1024, 256)];
    let weights: Vec<Vec<foil_kernels::Packed>> = (0..4)
        .map(|l| {
            shapes
                .iter()
                .map(|&(k, n)| {
                    let w: Vec<f32> = (0..k * n)
                        .map(|i| ((i * 31 + l) % 97) as f32 / 97.0 - 0.5)
                        .collect();
                    foil_kernels::Packed::new(&w, k, n)
                })
                .collect()
        })
        .collect();
    let x: Vec<f32> = (0..m * 1024).map(|i| (i % 13) as f32 / 13.0).collect();
    let mut out = vec![0f32; m * 1024];
    let flops: usize = shapes.iter().map(|(k, n)| 2 * m * k * n).sum::<usize>() * 4;
    for round in 0..3 {
        let it = 200;
        let t = Instant::now();
        for _ in 0..it {
            for layer in &weights {
                for w in layer {
                    let (k, n) = (w.k(), w.n());
                    foil_kernels::linear(&x[..m * k], w, None, m, &mut out[..m * n]);
                }
            }
        }
        let s = t.elapsed().as_secs_f64() / it as f64;
        println!(
            "round {round}: m={m}: {:.3} ms per step, {:.1} GFLOP/s",
            s * 1e3,
            flops as f64 / s / 1e9
        );
    }
    // one 256 × 768 weight over and over: it stays in L2, so this is the kernel's own speed
    let w = &weights[0][0];
    let it = 20_000;
    let t = Instant::now();
    for _ in 0..it {
        foil_kernels::linear(&x[..m * 256], w, None, m, &mut out[..m * 768]);
    }
    let s = t.elapsed().as_secs_f64() / it as f64;
    println!(
        "one weight in cache: {:.1} GFLOP/s",
        (2 * m * 256 * 768) as f64 / s / 1e9
    );
}
