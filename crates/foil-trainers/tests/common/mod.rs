//! What the data-parallel stage tests share: running a recipe text in process and reading
//! its metrics log back.

use std::path::{Path, PathBuf};

use foil_trainers::{RunOptions, run};
use serde_json::Value;

/// Writes `text` to `dir/r.yaml` and runs it into `dir/run` (stopping after
/// `stop_after` steps if given); returns the run directory.
pub fn run_recipe(dir: &Path, text: &str, stop_after: Option<usize>) -> anyhow::Result<PathBuf> {
    let path = dir.join("r.yaml");
    std::fs::write(&path, text).unwrap();
    let out = dir.join("run");
    run(
        Some(&path),
        &RunOptions {
            run_dir: Some(out.clone()),
            stop_after,
            ..Default::default()
        },
    )?;
    Ok(out)
}

/// The `metrics.jsonl` lines of `run` logged by stages of type `stage_type`.
pub fn log_lines(run: &Path, stage_type: &str) -> Vec<Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["stage_type"] == stage_type)
        .collect()
}

/// Largest absolute difference of two equally long series.
pub fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}
