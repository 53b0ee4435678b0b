//! `cargo xtask <command>`: the project's workflows in one place.
//!
//! | command | does |
//! |---|---|
//! | `run RECIPE [foil run args…]` | builds and runs `foil run` (dev profile, dependencies optimised) |
//! | `check RECIPE` / `list` | `foil check` / `foil list` |
//! | `test` | `cargo test --workspace` (what `.ci/run` calls) |
//! | `bench` | the criterion benches, then one table of their medians and ratios |
//! | `ci` | fmt check, clippy with warnings denied, tests, and a shortened quickstart |

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn status(mut c: Command) -> anyhow::Result<()> {
    let shown = format!("{c:?}");
    let s = c.status().with_context(|| format!("starting {shown}"))?;
    if !s.success() {
        bail!("{shown} failed ({s})");
    }
    Ok(())
}

fn foil(args: &[String]) -> anyhow::Result<()> {
    let mut c = cargo();
    c.args(["run", "--quiet", "--package", "foil", "--"])
        .args(args);
    status(c)
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn test() -> anyhow::Result<()> {
    let mut c = cargo();
    c.args(["test", "--workspace"]);
    status(c)
}

/// Runs the criterion benches and prints one table from their estimates.
fn bench(extra: &[String]) -> anyhow::Result<()> {
    let mut c = cargo();
    // the dev profile (dependencies at opt-level 3) is what runs and tests use: no second build
    c.args(["bench", "--profile", "dev", "--package", "foil-benches"])
        .args(extra);
    status(c)?;
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("target"));
    let dir = target.join("criterion");
    let mut rows = Vec::new();
    collect(&dir, &dir, &mut rows)?;
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    println!("\n| benchmark | median | per second |");
    println!("|---|---|---|");
    for (name, ns, throughput) in &rows {
        let per_s = throughput
            .as_ref()
            .map(|t| format!("{:.0} {}", t.0 / (ns / 1e9), t.1))
            .unwrap_or_default();
        println!("| {name} | {:.2} ms | {per_s} |", ns / 1e6);
    }
    // ratios between backends measured in this run
    for (name, ns, _) in &rows {
        if let Some(base) = name.strip_suffix("/flex")
            && let Some((_, nd, _)) = rows
                .iter()
                .find(|(n, _, _)| n == &format!("{base}/ndarray"))
        {
            println!("{base}: flex is {:.2}× ndarray's speed", nd / ns);
        }
    }
    Ok(())
}

type Row = (String, f64, Option<(f64, String)>);

fn collect(root: &Path, dir: &Path, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            let est = p.join("new/estimates.json");
            if est.exists() {
                let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&est)?)?;
                let ns = v["median"]["point_estimate"].as_f64().unwrap_or(f64::NAN);
                let bench: serde_json::Value = std::fs::read(p.join("new/benchmark.json"))
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or_default();
                let tp = bench["throughput"]["Elements"]
                    .as_f64()
                    .map(|n| (n, "tokens/s".to_string()));
                let name = p.strip_prefix(root)?.to_string_lossy().replace('\\', "/");
                rows.push((name, ns, tp));
            } else if p.file_name().is_some_and(|n| n != "report") {
                collect(root, &p, rows)?;
            }
        }
    }
    Ok(())
}

fn ci() -> anyhow::Result<()> {
    let mut c = cargo();
    c.args(["fmt", "--all", "--check"]);
    status(c)?;
    let mut c = cargo();
    c.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    status(c)?;
    test()?;
    smoke()
}

/// A shortened quickstart: every stage runs, in seconds.
fn smoke() -> anyhow::Result<()> {
    let runs = std::env::temp_dir().join("foil-smoke-runs");
    let args: Vec<String> = [
        "run",
        &root().join("recipes/quickstart.yaml").to_string_lossy(),
        "--quiet",
        "--runs-dir",
        &runs.to_string_lossy(),
        "--set",
        "stages.0.steps=20",
        "--set",
        "stages.1.limit=16",
        "--set",
        "stages.2.steps=3",
        "--set",
        "stages.3.limit=16",
        "--set",
        "task.train=200",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    foil(&args)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("run") => {
            let mut a = vec!["run".to_string()];
            a.extend_from_slice(&args[1..]);
            foil(&a)
        }
        Some("check") | Some("list") => foil(&args),
        Some("test") => test(),
        Some("bench") => bench(&args[1..]),
        Some("ci") => ci(),
        Some("smoke") => smoke(),
        _ => {
            eprintln!(
                "usage: cargo xtask <run RECIPE [args…] | check RECIPE | list | test | bench | ci | smoke>"
            );
            std::process::exit(2)
        }
    }
}
