//! Several recipes ("arms") trained from one shared checkpoint per seed, in process.
//!
//! The arms of a comparison share everything before their `rl` stage (task, policy,
//! seed, the SFT warm-up and the "before" evaluation); only the RL stage and what follows
//! differ. So per seed the shared prefix runs once (`foil_trainers::run` with `stop_after`
//! = its steps, which leaves a checkpoint), is copied once per arm, and each copy is
//! resumed with the arm's resolved recipe. Because every random stream derives from
//! `(seed, stage, step, purpose)` and resume is exact, each arm's result is the one
//! `foil run ARM_RECIPE --set …` gives on its own (checked for `psr.yaml`, seed 1: pass@1
//! 0.3631 both ways); the prefix is merely not recomputed.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use foil_core::checkpoint::EvalRecord;
use foil_core::recipe::Recipe;
use foil_trainers::{RunOptions, run};
use serde_json::Value;

/// One recipe of a comparison.
#[derive(Debug, Clone)]
pub struct Arm {
    /// Name in tables and plots (`GRPO`, `PSR`, …).
    pub label: String,
    /// The recipe file.
    pub recipe: PathBuf,
    /// Extra `--set` overrides of this arm alone (applied after the common ones).
    pub overrides: Vec<String>,
}

impl Arm {
    pub fn new(label: &str, recipe: PathBuf) -> Self {
        Self {
            label: label.to_string(),
            recipe,
            overrides: Vec::new(),
        }
    }
}

/// What one arm produced for one seed.
#[derive(Debug, Clone)]
pub struct ArmRun {
    pub label: String,
    pub seed: u64,
    pub dir: PathBuf,
    pub evals: Vec<EvalRecord>,
}

impl ArmRun {
    /// A metric of the eval labelled `eval` (`before`, `after`).
    pub fn metric(&self, eval: &str, name: &str) -> anyhow::Result<f64> {
        metric(&self.evals, eval, name).with_context(|| {
            format!(
                "{} seed {}: no `{name}` in eval `{eval}`",
                self.label, self.seed
            )
        })
    }
}

/// A metric of the eval labelled `eval` in `evals`.
pub fn metric(evals: &[EvalRecord], eval: &str, name: &str) -> Option<f64> {
    evals
        .iter()
        .find(|e| e.label == eval)?
        .metrics
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| *v)
}

/// Stage types at which arms branch off the shared prefix (`rl`, and the training stages
/// that replace it in some comparisons: `per_step`, `rft`, `preference`).
pub const BRANCH_STAGES: &[&str] = &["rl", "per_step", "rft", "preference"];

/// The runs of a reproduction as `result.json` records them: arm, seed, run directory and
/// evaluations.
pub fn runs_json(runs: &[ArmRun]) -> Value {
    Value::Array(
        runs.iter()
            .map(|r| {
                serde_json::json!({
                    "arm": r.label,
                    "seed": r.seed,
                    "dir": r.dir,
                    "evals": r.evals,
                })
            })
            .collect(),
    )
}

/// Index of the first `rl` (or other [`BRANCH_STAGES`]) stage of a recipe.
fn rl_index(recipe: &Recipe) -> anyhow::Result<usize> {
    recipe
        .stages
        .iter()
        .position(|s| {
            serde_json::to_value(s)
                .ok()
                .and_then(|v| {
                    v.get("type")
                        .and_then(|t| t.as_str())
                        .map(|t| BRANCH_STAGES.contains(&t))
                })
                .unwrap_or(false)
        })
        .with_context(|| format!("recipe `{}` has no rl stage", recipe.name))
}

/// Everything that must be equal for two arms to share a checkpoint: the recipe without
/// its name and without the stages from `rl` on.
fn prefix(recipe: &Recipe, rl: usize) -> anyhow::Result<Value> {
    let mut v = serde_json::to_value(recipe)?;
    let obj = v.as_object_mut().context("recipe is not a map")?;
    obj.remove("name");
    if let Some(Value::Array(stages)) = obj.get_mut("stages") {
        stages.truncate(rl);
    }
    Ok(v)
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let dest = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &dest)?;
        } else {
            std::fs::copy(e.path(), &dest)
                .with_context(|| format!("copying {}", e.path().display()))?;
        }
    }
    Ok(())
}

/// `--set` overrides given on the command line (`cargo xtask repro NAME --set K=V`),
/// applied to every arm after its own (see [`crate::Options::sets`]).
static EXTRA: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// The command-line overrides applied to every arm.
pub fn extra_overrides() -> Vec<String> {
    EXTRA.lock().map(|g| g.clone()).unwrap_or_default()
}

/// Replaces the command-line overrides applied to every arm.
pub fn set_extra_overrides(sets: &[String]) {
    if let Ok(mut g) = EXTRA.lock() {
        *g = sets.to_vec();
    }
}

/// Runs every arm for one seed under `dir/` (`dir/prefix`, `dir/<label>`), the shared
/// prefix once. `common` are `--set` overrides for every arm (the seed among them); the
/// command line's `--set`s come last.
pub fn run_arms(
    arms: &[Arm],
    common: &[String],
    seed: u64,
    dir: &Path,
    progress: bool,
) -> anyhow::Result<Vec<ArmRun>> {
    anyhow::ensure!(!arms.is_empty(), "no arms to run");
    let mut overrides = common.to_vec();
    overrides.push(format!("seed={seed}"));
    let extra = EXTRA.lock().map(|g| g.clone()).unwrap_or_default();
    let all = |arm: &Arm| {
        let mut o = overrides.clone();
        o.extend(arm.overrides.iter().cloned());
        o.extend(extra.iter().cloned());
        o
    };
    // resolve every arm and check that they share the prefix
    let mut resolved = Vec::new();
    for arm in arms {
        let recipe =
            Recipe::load(&arm.recipe, &all(arm)).with_context(|| format!("arm {}", arm.label))?;
        let rl = rl_index(&recipe)?;
        resolved.push((recipe, rl));
    }
    let (first, rl) = (&resolved[0].0, resolved[0].1);
    let shared = prefix(first, rl)?;
    for (arm, (recipe, r)) in arms.iter().zip(&resolved) {
        if *r != rl || prefix(recipe, *r)? != shared {
            bail!(
                "arm {} ({}) differs from arm {} ({}) before its rl stage (task, policy, seed, \
                 or the stages before rl): they cannot share a checkpoint",
                arm.label,
                arm.recipe.display(),
                arms[0].label,
                arms[0].recipe.display()
            );
        }
    }
    let prefix_steps: usize = first.stages[..rl].iter().map(|s| s.steps()).sum();
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    let base = dir.join("prefix");
    if prefix_steps > 0 {
        let t = Instant::now();
        let s = run(
            Some(&arms[0].recipe),
            &RunOptions {
                overrides: all(&arms[0]),
                run_dir: Some(base.clone()),
                stop_after: Some(prefix_steps),
                ..Default::default()
            },
        )
        .with_context(|| format!("seed {seed}: the shared stages before rl"))?;
        anyhow::ensure!(
            !s.finished,
            "seed {seed}: the shared prefix ran to the end of the recipe"
        );
        if progress {
            eprintln!(
                "  seed {seed}: shared prefix ({prefix_steps} steps) in {:.0} s",
                t.elapsed().as_secs_f64()
            );
        }
    }
    let mut out = Vec::new();
    for (arm, (recipe, _)) in arms.iter().zip(&resolved) {
        let t = Instant::now();
        let arm_dir = dir.join(file_name(&arm.label));
        let summary = if prefix_steps > 0 {
            copy_dir(&base, &arm_dir)?;
            std::fs::write(arm_dir.join("recipe.yaml"), recipe.to_yaml())?;
            run(
                None,
                &RunOptions {
                    resume: Some(arm_dir.clone()),
                    ..Default::default()
                },
            )
        } else {
            run(
                Some(&arm.recipe),
                &RunOptions {
                    overrides: all(arm),
                    run_dir: Some(arm_dir.clone()),
                    ..Default::default()
                },
            )
        }
        .with_context(|| format!("seed {seed}, arm {}", arm.label))?;
        anyhow::ensure!(
            summary.finished,
            "seed {seed}, arm {} stopped early",
            arm.label
        );
        if progress {
            eprintln!(
                "  seed {seed}: {} in {:.0} s",
                arm.label,
                t.elapsed().as_secs_f64()
            );
        }
        out.push(ArmRun {
            label: arm.label.clone(),
            seed,
            dir: arm_dir,
            evals: summary.evals,
        });
    }
    Ok(out)
}

/// A label as a directory name: lower case, non-alphanumerics as `_`.
pub fn file_name(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}
