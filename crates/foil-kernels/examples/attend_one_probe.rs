//! Times `attend_one` (one query over a cache of keys/values, the decode step's
//! attention) at the generation bench's shapes: head width 64, 32–128 cached keys, once
//! with one cache (in L1/L2), once cycling over 256 caches (512·t bytes each: 4–17 MB, in
//! L3 at best, as a decode step of 16 rows × 4 layers × 4 heads reads its 8 MB cache) and
//! once over 4096 (67–268 MB: from memory).
//! `cargo run --profile dev -p foil-kernels --example attend_one_probe`.
use foil_kernels::attend_one;
use std::time::Instant;
fn main() {
    let dh = 64;
    for t in [32usize, 64, 96, 128] {
        let q: Vec<f32> = (0..dh)
            .map(|i| ((i * 7) % 13) as f32 / 13.0 - 0.5)
            .collect();
        let k: Vec<f32> = (0..t * dh)
            .map(|i| ((i * 5) % 11) as f32 / 11.0 - 0.5)
            .collect();
        let v: Vec<f32> = (0..t * dh)
            .map(|i| ((i * 3) % 17) as f32 / 17.0 - 0.5)
            .collect();
        let bias = vec![0f32; t];
        let (mut scores, mut out) = (vec![0f32; t], vec![0f32; dh]);
        let calls = 200_000;
        let start = Instant::now();
        for _ in 0..calls {
            attend_one(&q, &k, &v, &bias, 0.125, &mut scores, &mut out);
            std::hint::black_box(&mut out);
        }
        let ns = start.elapsed().as_nanos() as f64 / calls as f64;
        println!(
            "t {t:4}, one cache:  {ns:7.1} ns per call, {:5.2} ns per key",
            ns / t as f64
        );
        for caches in [256, 4096] {
            let (ks, vs) = (k.repeat(caches), v.repeat(caches));
            let start = Instant::now();
            for i in 0..calls {
                let at = (i % caches) * t * dh;
                attend_one(
                    &q,
                    &ks[at..],
                    &vs[at..],
                    &bias,
                    0.125,
                    &mut scores,
                    &mut out,
                );
                std::hint::black_box(&mut out);
            }
            let ns = start.elapsed().as_nanos() as f64 / calls as f64;
            let per_key = ns / t as f64;
            println!("t {t:4}, {caches} caches: {ns:7.1} ns per call, {per_key:5.2} ns per key");
        }
    }
}
