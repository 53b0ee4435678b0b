//! Times the `local` sampler alone on the GRPO bench's config (random Qwen2 hidden 128 ×
//! 4 layers, 2 prompts × 8 completions of ≤ 16 tokens, temperature 1): the mean time of a
//! `Sampler::sample` call over `CALLS` calls (argument 1, default 300).
//!
//! `FRESH=1` takes a new inference snapshot (`Policy::inference`) before every call, as
//! an RL step does; `WARM=k` then runs `k` untimed calls on it first; `OTHER=1` takes a
//! snapshot every call but samples with the first one; `THREADS=t` sets the sampler's
//! `threads` (row groups). On the session-12 Xeon a fresh snapshot samples ~1.4× slower
//! than one used for many calls, and as fast after ~3 calls (`docs/benchmarks.md`,
//! session 12).
//!
//! `cargo run --profile dev -p foil-benches --example sample_probe -- 300`
use std::time::Instant;

use foil_benches::TrlSetup;

fn main() -> anyhow::Result<()> {
    foil::link_all();
    foil::keep_freed_pages();
    let calls: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(300);
    let flag = |name| std::env::var(name).is_ok_and(|v| v != "0");
    let (fresh, other) = (flag("FRESH"), flag("OTHER"));
    let warm: usize = std::env::var("WARM").map_or(Ok(0), |w| w.parse())?;
    // kept whole: its temporary model directory lives as long as it does
    let setup = TrlSetup::new()?;
    let (task, policy) = (&setup.task, &setup.policy);
    let sampler = TrlSetup::sampler(std::env::var("THREADS").map_or(Ok(0), |t| t.parse())?);
    let tok = task.tokenizer.as_ref();
    let mut model = policy.inference();
    let mut total = 0.0;
    for i in 0..calls {
        if fresh {
            model = policy.inference();
        }
        let _other = other.then(|| policy.inference());
        for _ in 0..warm {
            sampler.sample(model.as_ref(), tok, &task.train[..2], u64::MAX)?;
        }
        let lo = (i * 2) % (task.train.len() - 2);
        let t = Instant::now();
        sampler.sample(model.as_ref(), tok, &task.train[lo..lo + 2], i as u64)?;
        total += t.elapsed().as_secs_f64();
    }
    println!(
        "{:.3} ms per sample call (FRESH {fresh}, WARM {warm}, OTHER {other})",
        total * 1e3 / calls as f64
    );
    Ok(())
}
