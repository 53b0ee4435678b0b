//! Times the phases of the `grpo_step` bench's GRPO step ([`foil_benches::GrpoStep`]):
//! medians over `STEPS` steps (argument 1, default 40) after 5 warm-up steps.
//!
//! `cargo run --profile dev -p foil-benches --example grpo_phases -- 40`
use std::time::Instant;

use foil_benches::{GrpoStep, minor_faults};

fn main() -> anyhow::Result<()> {
    foil::keep_freed_pages();
    let steps: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(40)
        .max(1);
    let mut step = GrpoStep::new()?;
    let mut phases: Vec<(&'static str, Vec<f64>)> = Vec::new();
    let mut faults = 0;
    for i in 0..steps + 5 {
        if i == 5 {
            faults = minor_faults();
        }
        let mut last = Instant::now();
        let mut k = 0;
        step.run(|name| {
            let now = Instant::now();
            if i >= 5 {
                if k == phases.len() {
                    phases.push((name, Vec::new()));
                }
                phases[k].1.push((now - last).as_secs_f64() * 1e3);
            }
            k += 1;
            last = now;
        })?;
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let totals: Vec<f64> = (0..steps)
        .map(|i| phases.iter().map(|(_, t)| t[i]).sum())
        .collect();
    println!("phase       median ms   min ms   max ms");
    for (name, t) in &phases {
        let (lo, hi) = t
            .iter()
            .fold((f64::MAX, 0f64), |(a, b), &x| (a.min(x), b.max(x)));
        println!("{name:<10} {:>10.2} {lo:>8.2} {hi:>8.2}", median(t));
    }
    println!("{:<10} {:>10.2}", "total", median(&totals));
    println!(
        "page faults per step: {:.1}",
        minor_faults().saturating_sub(faults) as f64 / steps as f64
    );
    Ok(())
}
