//! GFLOP/s of the gemm crate (what `backprop::matmul` calls) on the train step's shapes,
//! one and two threads, next to `foil_kernels::linear` (packed strips), and the backward
//! pass's two products, `dW = xᵀ·dy` and `dx = dy·Wᵀ`, read transposed in place:
//! `cargo run --profile dev -p foil-kernels --example gemm_probe`.
use foil_kernels::backprop::{Mat, matmul};
use std::time::Instant;

/// Best of three rounds of 30 calls, in seconds per call.
fn best(mut f: impl FnMut()) -> f64 {
    (0..3)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..30 {
                f();
            }
            t.elapsed().as_secs_f64() / 30.0
        })
        .fold(f64::MAX, f64::min)
}

fn main() {
    let shapes = [
        (2048, 256, 768),
        (2048, 256, 1024),
        (2048, 1024, 256),
        (2048, 256, 256),
    ];
    let fill = |n: usize, s: usize| -> Vec<f32> {
        (0..n).map(|i| ((i * s) % 13) as f32 / 13.0 - 0.5).collect()
    };
    for (m, k, n) in shapes {
        let (x, w, dy) = (fill(m * k, 7), fill(k * n, 5), fill(m * n, 3));
        let (mut y, mut dw, mut dx) = (vec![0f32; m * n], vec![0f32; k * n], vec![0f32; m * k]);
        let gflops = |s: f64| 2.0 * (m * k * n) as f64 / s / 1e9;
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let serial = one.install(|| {
            best(|| {
                matmul(
                    &mut y,
                    n,
                    false,
                    Mat::rows(&x, k),
                    Mat::rows(&w, n),
                    m,
                    k,
                    n,
                )
            })
        });
        let forward = best(|| {
            matmul(
                &mut y,
                n,
                false,
                Mat::rows(&x, k),
                Mat::rows(&w, n),
                m,
                k,
                n,
            )
        });
        let packed = foil_kernels::Packed::new(&w, k, n);
        let strips = best(|| foil_kernels::linear(&x, &packed, None, m, &mut y));
        let weight = best(|| {
            matmul(
                &mut dw,
                n,
                false,
                Mat::cols(&x, k),
                Mat::rows(&dy, n),
                k,
                m,
                n,
            )
        });
        let input = best(|| {
            matmul(
                &mut dx,
                k,
                false,
                Mat::rows(&dy, n),
                Mat::cols(&w, n),
                m,
                n,
                k,
            )
        });
        println!(
            "{m}x{k}x{n}: gemm 1 thread {:.0}, all threads {:.0}, packed strips {:.0}, dW {:.0}, dx {:.0} GFLOP/s",
            gflops(serial),
            gflops(forward),
            gflops(strips),
            gflops(weight),
            gflops(input)
        );
    }
}
