//! Times `backprop::Attention` on one layer of the train step's shape (16 rows × 128
//! tokens, 4 heads of 64, fused q/k/v views): forward and backward, in GFLOP/s of the
//! full (unmasked) products: `cargo run --profile dev -p foil-kernels --example attn_probe`.
use foil_kernels::backprop::{Attention, Heads};
use std::time::Instant;
fn main() {
    let a = Attention {
        rows: 16,
        t: 128,
        q_heads: 4,
        kv_heads: 4,
        dh: 64,
    };
    let m = 16 * 128;
    let d = 256;
    let qkv: Vec<f32> = (0..m * 3 * d)
        .map(|i| ((i * 7) % 13) as f32 / 13.0 - 0.5)
        .collect();
    let valid = vec![true; m];
    let mut p = vec![0f32; a.probs_len()];
    let mut out = vec![0f32; m * d];
    let v = |o| Heads {
        data: &qkv,
        offset: o * d,
        stride: 3 * d,
    };
    let (mut dq, mut dk, mut dv) = (vec![0f32; m * d], vec![0f32; m * d], vec![0f32; m * d]);
    for _ in 0..3 {
        let t = Instant::now();
        for _ in 0..10 {
            a.forward(v(0), v(1), v(2), &valid, &mut p, &mut out);
        }
        let f = t.elapsed().as_secs_f64() / 10.0;
        let t = Instant::now();
        for _ in 0..10 {
            a.backward(v(0), v(1), v(2), &p, &out, &mut dq, &mut dk, &mut dv);
        }
        let b = t.elapsed().as_secs_f64() / 10.0;
        let fl = 2.0 * 2.0 * (16 * 4 * 128 * 128 * 64) as f64;
        println!(
            "fwd {:.2} ms ({:.1} GFLOP/s)  bwd {:.2} ms ({:.1} GFLOP/s)",
            f * 1e3,
            fl / f / 1e9,
            b * 1e3,
            2.0 * fl / b / 1e9
        );
    }
}
