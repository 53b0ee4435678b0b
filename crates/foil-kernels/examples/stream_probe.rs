//! Why [`foil_kernels::Packed`] is written with non-temporal stores: two threads each read
//! a 4 MiB buffer (more than a core's L2, like a decode step's weights) 16 times after one
//! thread rewrote it, and the mean time of each of the 16 passes is printed.
//!
//! `cargo run --profile dev -p foil-kernels --example stream_probe -- MODE`, MODE one of
//! `steady` (never rewritten), `stores` (rewritten with ordinary stores before each
//! round), `stream` (rewritten with non-temporal stores, x86_64 only). On the session-12
//! Xeon: steady 105–126 µs per pass; stores 154–222 µs, slow on every one of the 16
//! passes; stream 223–242 µs for the first pass, then 102–112 (`docs/benchmarks.md`,
//! session 12).
use std::sync::{Arc, Barrier};
use std::time::Instant;

const VALUES: usize = 1 << 20;
const ROUNDS: usize = 40;
const PASSES: usize = 16;

struct Buffer(*mut f32);
// SAFETY: the threads write and read it only between barriers that order those accesses
unsafe impl Send for Buffer {}
unsafe impl Sync for Buffer {}

fn read_pass(b: &Buffer) -> f32 {
    // SAFETY: `VALUES` initialised floats; no thread writes while the others read
    let v = unsafe { std::slice::from_raw_parts(b.0, VALUES) };
    let mut lanes = [0f32; 16];
    for c in v.chunks_exact(16) {
        for (l, x) in lanes.iter_mut().zip(c) {
            *l += x;
        }
    }
    lanes.iter().sum()
}

fn rewrite(b: &Buffer, value: f32, stream: bool) {
    #[cfg(target_arch = "x86_64")]
    if stream {
        use std::arch::x86_64::{_mm_set1_ps, _mm_sfence, _mm_stream_ps};
        // SAFETY: 64-byte aligned, `VALUES` floats long; SSE is part of x86_64
        unsafe {
            for i in (0..VALUES).step_by(4) {
                _mm_stream_ps(b.0.add(i), _mm_set1_ps(value));
            }
            _mm_sfence();
        }
        return;
    }
    assert!(!stream, "non-temporal stores are x86_64 only here");
    // SAFETY: as above
    unsafe { std::slice::from_raw_parts_mut(b.0, VALUES) }.fill(value);
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "stores".into());
    let (rewrites, stream) = match mode.as_str() {
        "steady" => (false, false),
        "stores" => (true, false),
        "stream" => (true, true),
        other => panic!("MODE is steady, stores or stream, not {other:?}"),
    };
    let layout = std::alloc::Layout::from_size_align(VALUES * 4, 64).expect("layout");
    // SAFETY: a non-zero size
    let buffer = Arc::new(Buffer(unsafe { std::alloc::alloc_zeroed(layout) }.cast()));
    let barrier = Arc::new(Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let (b, barrier) = (buffer.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut seconds = [0f64; PASSES];
                for round in 0..ROUNDS {
                    barrier.wait();
                    if t == 0 && rewrites && round > 0 {
                        rewrite(&b, round as f32, stream);
                    }
                    barrier.wait();
                    for s in &mut seconds {
                        let start = Instant::now();
                        std::hint::black_box(read_pass(&b));
                        // the first rounds warm up
                        if round >= 5 {
                            *s += start.elapsed().as_secs_f64();
                        }
                        barrier.wait();
                    }
                }
                seconds
            })
        })
        .collect();
    let seconds: Vec<[f64; PASSES]> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let us: Vec<String> = (0..PASSES)
        .map(|p| {
            let mean = (seconds[0][p] + seconds[1][p]) / 2.0 / (ROUNDS - 5) as f64;
            format!("{:.0}", mean * 1e6)
        })
        .collect();
    println!(
        "{mode}: µs per 4 MiB pass, passes 1–{PASSES}: {}",
        us.join(" ")
    );
}
