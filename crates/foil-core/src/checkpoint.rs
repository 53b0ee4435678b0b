//! Checkpoints that are either complete or absent.
//!
//! A checkpoint is a directory `checkpoints/stage{S}-step{N:06}/` holding the policy's
//! files and `state.json`. It is written under a temporary name and renamed into place
//! only when every file is on disk; `checkpoints/latest` (itself replaced by rename) names
//! the newest one. A crash while writing leaves the previous checkpoint untouched.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// One finished evaluation, kept for the final table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EvalRecord {
    /// Label given in the recipe (`before`, `after`, …).
    pub label: String,
    /// Metric name → value, in a stable order.
    pub metrics: Vec<(String, f64)>,
}

/// Where a run stands: what a resumed run needs besides the weights.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunState {
    /// Index of the stage to continue.
    pub stage: usize,
    /// Next step to run within that stage.
    pub step: usize,
    /// Evaluations finished so far.
    pub evals: Vec<EvalRecord>,
    /// Lines of `metrics.jsonl` written up to this point.
    pub metrics_lines: usize,
    /// What the current stage's parts need besides the weights (e.g. an adaptive KL
    /// coefficient, [`crate::Objective::state`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_state: Option<serde_json::Value>,
}

const LATEST: &str = "latest";
const STATE: &str = "state.json";
/// Checkpoints kept on disk (older ones are removed after a new one is in place).
pub const KEEP: usize = 2;

/// Writes a checkpoint atomically. `save` fills the directory it is given.
pub fn write(
    run_dir: &Path,
    state: &RunState,
    save: impl FnOnce(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<PathBuf> {
    let root = run_dir.join("checkpoints");
    fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let name = format!("stage{}-step{:06}", state.stage, state.step);
    let tmp = root.join(format!(".tmp-{name}"));
    let fin = root.join(&name);
    if tmp.exists() {
        fs::remove_dir_all(&tmp)?;
    }
    fs::create_dir_all(&tmp)?;
    let filled = save(&tmp).and_then(|_| {
        fs::write(tmp.join(STATE), serde_json::to_vec_pretty(state)?)?;
        Ok(())
    });
    if let Err(e) = filled {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e.context(format!("writing checkpoint {}", fin.display())));
    }
    if fin.exists() {
        fs::remove_dir_all(&fin)?;
    }
    fs::rename(&tmp, &fin)?;
    let latest_tmp = root.join(".latest.tmp");
    fs::write(&latest_tmp, &name)?;
    fs::rename(&latest_tmp, root.join(LATEST))?;
    prune(&root, &name)?;
    Ok(fin)
}

/// The checkpoint written when `stage` started (kept by pruning: a frozen reference
/// policy is rebuilt from it on resume).
pub fn stage_start(run_dir: &Path, stage: usize) -> PathBuf {
    run_dir
        .join("checkpoints")
        .join(format!("stage{stage}-step{:06}", 0))
}

/// Removes all but the newest [`KEEP`] checkpoints (never `keep_name`, never a stage's
/// first checkpoint).
fn prune(root: &Path, keep_name: &str) -> anyhow::Result<()> {
    let mut names: Vec<String> = fs::read_dir(root)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("stage") && !n.ends_with("-step000000"))
        .collect();
    names.sort();
    let excess = names.len().saturating_sub(KEEP);
    for n in names.into_iter().take(excess) {
        if n != keep_name {
            fs::remove_dir_all(root.join(n))?;
        }
    }
    Ok(())
}

/// The newest complete checkpoint of a run, if any.
pub fn latest(run_dir: &Path) -> anyhow::Result<Option<(PathBuf, RunState)>> {
    let root = run_dir.join("checkpoints");
    let pointer = root.join(LATEST);
    if !pointer.exists() {
        return Ok(None);
    }
    let name = fs::read_to_string(&pointer)?;
    let dir = root.join(name.trim());
    let state: RunState = serde_json::from_slice(
        &fs::read(dir.join(STATE)).with_context(|| format!("reading {}", dir.display()))?,
    )
    .with_context(|| format!("parsing {}", dir.join(STATE).display()))?;
    Ok(Some((dir, state)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(step: usize) -> RunState {
        RunState {
            stage: 1,
            step,
            evals: vec![],
            metrics_lines: step,
            stage_state: None,
        }
    }

    #[test]
    fn failed_save_leaves_previous_checkpoint_and_no_temp_dir() {
        let run = tempfile::tempdir().unwrap();
        write(run.path(), &state(5), |d| {
            Ok(fs::write(d.join("w"), b"ok")?)
        })
        .unwrap();
        let err = write(run.path(), &state(10), |d| {
            fs::write(d.join("w"), b"half")?;
            anyhow::bail!("disk full")
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("disk full"));
        let (dir, st) = latest(run.path()).unwrap().unwrap();
        assert_eq!(st, state(5));
        assert_eq!(fs::read(dir.join("w")).unwrap(), b"ok");
        let leftovers: Vec<_> = fs::read_dir(run.path().join("checkpoints"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn keeps_only_the_newest_checkpoints() {
        let run = tempfile::tempdir().unwrap();
        write(
            run.path(),
            &RunState {
                step: 0,
                ..state(0)
            },
            |_| Ok(()),
        )
        .unwrap();
        for s in [1, 2, 3, 4] {
            write(run.path(), &state(s), |_| Ok(())).unwrap();
        }
        let n = fs::read_dir(run.path().join("checkpoints"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("stage")
            })
            .count();
        // the newest KEEP plus the stage's first checkpoint
        assert_eq!(n, KEEP + 1);
        assert_eq!(latest(run.path()).unwrap().unwrap().1.step, 4);
    }
}
