//! Whether the train step's element-wise passes are bound by arithmetic or by memory:
//! times the fused bias + GELU forward pass (which also writes GELU′), GELU in place (the
//! decode path's), GELU's backward pass (a product by the saved slope) and a plain
//! product `dy ← dy·(a·x + c)` for reference, over buffers of a train-step layer's size
//! (2 Mi values, 8 MiB, more than a core's L2) and over small ones that stay in cache, in
//! nanoseconds per value (both threads through rayon).
//!
//! `cargo run --profile dev -p foil-kernels --example elementwise_probe`
use foil_kernels::backprop::{bias_gelu_forward, gelu_backward};
use rayon::prelude::*;
use std::time::Instant;

fn time(values: usize, reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let t = Instant::now();
    for _ in 0..reps {
        f();
    }
    t.elapsed().as_secs_f64() * 1e9 / (values * reps) as f64
}

fn main() {
    let bias: Vec<f32> = (0..1024).map(|i| (i % 7) as f32 * 0.01).collect();
    for values in [1usize << 16, 1 << 21] {
        let reps = (1 << 25) / values;
        let x: Vec<f32> = (0..values)
            .map(|i| ((i % 977) as f32 - 488.0) / 150.0)
            .collect();
        let (mut slope, mut act) = (x.clone(), vec![0f32; values]);
        let mut dy = vec![1f32; values];
        let product = time(values, reps, || {
            dy.par_chunks_mut(1 << 14)
                .zip(x.par_chunks(1 << 14))
                .for_each(|(d, x)| {
                    d.iter_mut()
                        .zip(x)
                        .for_each(|(d, x)| *d *= x * 0.999 + 0.001)
                })
        });
        let forward = time(values, reps, || {
            slope.copy_from_slice(&x);
            bias_gelu_forward(&mut slope, &bias, &mut act)
        });
        let copy = time(values, reps, || slope.copy_from_slice(&x));
        let in_place = time(values, reps, || {
            act.par_chunks_mut(1 << 14).for_each(foil_kernels::gelu)
        });
        let backward = time(values, reps, || gelu_backward(&slope, &mut dy));
        println!(
            "{values:>8} values ({:>5} KiB): product {product:.3} ns; bias + GELU + GELU′ {:.3} ns; \
             GELU in place {in_place:.3} ns; GELU backward {backward:.3} ns per value",
            values * 4 / 1024,
            forward - copy
        );
    }
}
