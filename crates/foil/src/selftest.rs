//! `foil selftest`: transformers parity of this build on the fixture checkpoints, on the
//! device it runs on (the test suite checks the CPU; this checks a GPU build where it is).

use std::path::Path;

use anyhow::{Context, bail};
use foil_core::backend::open_device;
use foil_models::hf::parity::check_fixture;

pub fn selftest(fixtures: &Path, device: &str, tol: f32) -> anyhow::Result<()> {
    let device = open_device(device)?;
    let mut dirs: Vec<_> = std::fs::read_dir(fixtures)
        .with_context(|| format!("reading {}", fixtures.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("expected.json").exists())
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        bail!("no fixture with expected.json under {}", fixtures.display());
    }
    println!(
        "| fixture | forward max abs diff | decode steps | decode max abs diff | greedy tokens | ok |"
    );
    println!("|---|---|---|---|---|---|");
    let mut failed = 0;
    for dir in &dirs {
        let name = dir.file_name().unwrap_or_default().to_string_lossy();
        let start = std::time::Instant::now();
        let p = check_fixture(dir, &device)?;
        let ok = p.holds(tol);
        failed += usize::from(!ok);
        println!(
            "| {name} | {:.2e} | {} | {:.2e} | {} | {} ({:.1} s) |",
            p.forward_max_diff,
            p.steps,
            p.decode_max_diff,
            match (p.first_token_mismatch, p.mismatch_margin) {
                (None, _) => "identical".to_string(),
                (Some((r, s)), Some(m)) if m < 2.0 * tol => format!(
                    "first differ at row {r} step {s}, near-ties (transformers' largest margin \
                     {m:.1e} < 2·tol)"
                ),
                (Some((r, s)), Some(m)) => format!(
                    "first differ at row {r} step {s} (transformers' largest margin {m:.1e})"
                ),
                (Some((r, s)), None) => format!("differ at row {r} step {s}"),
            },
            if ok { "yes" } else { "NO" },
            start.elapsed().as_secs_f64()
        );
    }
    if failed > 0 {
        bail!(
            "{failed} of {} fixtures exceed tolerance {tol:e}",
            dirs.len()
        );
    }
    Ok(())
}
