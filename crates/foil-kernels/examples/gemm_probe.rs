use std::time::Instant;
fn main() {
    let shapes = [
        (2048usize, 256usize, 768usize),
        (2048, 256, 1024),
        (2048, 1024, 256),
        (2048, 256, 256),
    ];
    for (m, k, n) in shapes {
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7) % 13) as f32 / 13.0 - 0.5)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 5) % 11) as f32 / 11.0 - 0.5)
            .collect();
        let mut c = vec![0f32; m * n];
        let fl = 2.0 * (m * k * n) as f64;
        for (name, par) in [
            ("gemm-1", gemm::Parallelism::None),
            ("gemm-2", gemm::Parallelism::Rayon(2)),
        ] {
            let it = 30;
            let mut best = f64::MAX;
            for _ in 0..3 {
                let t = Instant::now();
                for _ in 0..it {
                    unsafe {
                        gemm::gemm(
                            m,
                            n,
                            k,
                            c.as_mut_ptr(),
                            1,
                            n as isize,
                            false,
                            a.as_ptr(),
                            1,
                            k as isize,
                            b.as_ptr(),
                            1,
                            n as isize,
                            0.0f32,
                            1.0f32,
                            false,
                            false,
                            false,
                            par,
                        );
                    }
                }
                best = best.min(t.elapsed().as_secs_f64() / it as f64);
            }
            println!(
                "{name} {m}x{k}x{n}: {:.2} ms {:.1} GFLOP/s",
                best * 1e3,
                fl / best / 1e9
            );
        }
        let p = foil_kernels::Packed::new(&b, k, n);
        let it = 30;
        let mut best = f64::MAX;
        for _ in 0..3 {
            let t = Instant::now();
            for _ in 0..it {
                foil_kernels::linear(&a, &p, None, m, &mut c);
            }
            best = best.min(t.elapsed().as_secs_f64() / it as f64);
        }
        println!(
            "foil   {m}x{k}x{n}: {:.2} ms {:.1} GFLOP/s",
            best * 1e3,
            fl / best / 1e9
        );
        // weight gradient: [k, m] x [m, n] with lhs transposed view
        let mut best = f64::MAX;
        let mut dw = vec![0f32; k * n];
        let dy: Vec<f32> = (0..m * n)
            .map(|i| ((i * 3) % 7) as f32 / 7.0 - 0.5)
            .collect();
        for _ in 0..3 {
            let t = Instant::now();
            for _ in 0..it {
                unsafe {
                    gemm::gemm(
                        k,
                        n,
                        m,
                        dw.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        a.as_ptr(),
                        k as isize,
                        1,
                        dy.as_ptr(),
                        1,
                        n as isize,
                        0.0f32,
                        1.0f32,
                        false,
                        false,
                        false,
                        gemm::Parallelism::Rayon(2),
                    );
                }
            }
            best = best.min(t.elapsed().as_secs_f64() / it as f64);
        }
        println!(
            "gemm-2 dW {k}x{m}x{n}: {:.2} ms {:.1} GFLOP/s",
            best * 1e3,
            fl / best / 1e9
        );
        let mut best = f64::MAX;
        let mut dx = vec![0f32; m * k];
        for _ in 0..3 {
            let t = Instant::now();
            for _ in 0..it {
                unsafe {
                    gemm::gemm(
                        m,
                        k,
                        n,
                        dx.as_mut_ptr(),
                        1,
                        k as isize,
                        false,
                        dy.as_ptr(),
                        1,
                        n as isize,
                        b.as_ptr(),
                        n as isize,
                        1,
                        0.0f32,
                        1.0f32,
                        false,
                        false,
                        false,
                        gemm::Parallelism::Rayon(2),
                    );
                }
            }
            best = best.min(t.elapsed().as_secs_f64() / it as f64);
        }
        println!(
            "gemm-2 dX {m}x{n}x{k}: {:.2} ms {:.1} GFLOP/s",
            best * 1e3,
            fl / best / 1e9
        );
    }
}
