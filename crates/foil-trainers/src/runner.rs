//! Runs a recipe: builds the task and policy, runs the stages in order, logs metrics,
//! checkpoints between stages (and every `checkpoint_every` steps), resumes, and prints
//! the evaluation table.
//!
//! A run directory `runs/<name>-<time>/` holds `recipe.yaml` (the resolved recipe),
//! `metrics.jsonl`, `checkpoints/` and `eval.md` / `eval.json`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use foil_core::backend::open_device;
use foil_core::checkpoint::{self, EvalRecord};
use foil_core::error::FoilError;
use foil_core::metrics::MetricsLog;
use foil_core::recipe::Recipe;
use foil_core::run::RunContext;
use foil_core::{PolicyConfig, Stage};

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `dotted.path=value` recipe overrides.
    pub overrides: Vec<String>,
    /// Parent of new run directories (default `runs`).
    pub runs_dir: Option<PathBuf>,
    /// Exact run directory to create (instead of `<runs_dir>/<name>-<time>`).
    pub run_dir: Option<PathBuf>,
    /// Continue this stopped run instead of starting one.
    pub resume: Option<PathBuf>,
    /// Stop after this many steps (as an interruption would), leaving a checkpoint.
    pub stop_after: Option<usize>,
    /// Progress bars and summaries on stderr.
    pub progress: bool,
    /// Print the evaluation table on stdout at the end.
    pub print_table: bool,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub dir: PathBuf,
    pub evals: Vec<EvalRecord>,
    /// False when the run stopped early (`stop_after`).
    pub finished: bool,
}

/// The random stream of recipe transforms: `derive(seed, [TRANSFORM_STREAM, index])`.
const TRANSFORM_STREAM: u64 = 0x7472_616e_7366; // "transf"

fn stage_type(stage: &dyn Stage) -> String {
    serde_json::to_value(stage)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(String::from))
        .unwrap_or_else(|| "stage".into())
}

fn new_run_dir(parent: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
    let mut dir = parent.join(format!("{name}-{stamp}"));
    let mut i = 2;
    while dir.exists() {
        dir = parent.join(format!("{name}-{stamp}-{i}"));
        i += 1;
    }
    Ok(dir)
}

/// Runs (or resumes) a recipe.
pub fn run(recipe_path: Option<&Path>, opts: &RunOptions) -> anyhow::Result<RunSummary> {
    let (recipe, dir, resume) = match &opts.resume {
        Some(dir) => {
            let saved = dir.join("recipe.yaml");
            if !saved.exists() {
                return Err(FoilError::Resume {
                    dir: dir.clone(),
                    why: "it has no recipe.yaml (is it a run directory?)".into(),
                }
                .into());
            }
            let recipe = Recipe::load(&saved, &opts.overrides)?;
            let latest = checkpoint::latest(dir)?.ok_or_else(|| FoilError::Resume {
                dir: dir.clone(),
                why: "it has no complete checkpoint yet; start it again instead".into(),
            })?;
            (recipe, dir.clone(), Some(latest))
        }
        None => {
            let path = recipe_path.context("a recipe path or --resume is needed")?;
            let recipe = Recipe::load(path, &opts.overrides)?;
            let dir = match &opts.run_dir {
                Some(d) => d.clone(),
                None => new_run_dir(
                    opts.runs_dir.as_deref().unwrap_or(Path::new("runs")),
                    &recipe.name,
                )?,
            };
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            std::fs::write(dir.join("recipe.yaml"), recipe.to_yaml())?;
            (recipe, dir, None)
        }
    };
    let Recipe {
        name,
        seed,
        device,
        task,
        transforms,
        policy,
        stages,
        checkpoint_every,
    } = recipe;
    let device = open_device(&device)?;
    let mut task = task.build(seed).context("building the task")?;
    // --- transforms (VPI, issue 6): applied in order to the built task, seeded per index ---
    let mut transform_counts: Vec<(String, f64)> = Vec::new();
    for (i, t) in transforms.iter().enumerate() {
        let kind = serde_json::to_value(t.as_ref())
            .ok()
            .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(String::from))
            .unwrap_or_else(|| "transform".into());
        let report = t
            .apply(
                &mut task,
                foil_core::rng::derive(seed, &[TRANSFORM_STREAM, i as u64]),
            )
            .with_context(|| format!("transform {i} (`{kind}`)"))?;
        for (k, v) in report.counts {
            transform_counts.push((format!("t{i}_{kind}_{k}"), v));
        }
    }
    // --- end transforms ---
    let policy_config: Arc<dyn PolicyConfig> = Arc::from(policy);
    if let Some(tokenizer) = policy_config
        .tokenizer()
        .context("loading the policy's tokenizer")?
    {
        task.tokenizer = tokenizer;
    }
    let mut policy = policy_config
        .build(task.tokenizer.vocab_size(), &device, seed)
        .context("building the policy")?;
    let (start_stage, start_step, evals, metrics_lines, resume_dir, stage_state) = match &resume {
        Some((ckpt, state)) => {
            policy.load(ckpt)?;
            (
                state.stage,
                state.step,
                state.evals.clone(),
                state.metrics_lines,
                Some(ckpt.clone()),
                state.stage_state.clone(),
            )
        }
        None => (0, 0, Vec::new(), 0, None, None),
    };
    if opts.progress {
        eprintln!(
            "run {} → {} ({} parameters, {} train / {} test problems)",
            name,
            dir.display(),
            policy.num_params(),
            task.train.len(),
            task.test.len()
        );
    }
    let mut ctx = RunContext {
        name,
        seed,
        device,
        metrics: MetricsLog::open(&dir.join("metrics.jsonl"), metrics_lines)?,
        dir: dir.clone(),
        task,
        policy,
        stage: start_stage,
        stage_type: String::new(),
        checkpoint_every,
        evals,
        last_checkpoint: resume_dir.clone(),
        stop_after: opts.stop_after,
        steps_run: 0,
        progress: opts.progress,
        stopped: false,
        resume_dir,
        policy_config,
        stage_state: None,
        resumed_stage_state: stage_state,
    };
    if resume.is_none() {
        if !transform_counts.is_empty() {
            // what the transforms did: one metrics line and a `transform` table column
            ctx.stage_type = "transforms".into();
            ctx.log(0, &transform_counts)?;
            ctx.evals.push(EvalRecord {
                label: "transform".into(),
                metrics: transform_counts,
            });
        }
        ctx.checkpoint(0, 0)?;
    }
    for (i, stage) in stages.iter().enumerate().skip(start_stage) {
        ctx.stage = i;
        ctx.stage_type = stage_type(stage.as_ref());
        let first = if i == start_stage { start_step } else { 0 };
        ctx.stage_state = None;
        if first == 0 {
            ctx.resumed_stage_state = None;
        }
        if first < stage.steps() {
            stage
                .run(&mut ctx, first)
                .with_context(|| format!("stage {i} (`{}`)", ctx.stage_type))?;
        }
        if ctx.stopped {
            return Ok(RunSummary {
                dir,
                evals: ctx.evals,
                finished: false,
            });
        }
        ctx.stage_state = None;
        ctx.checkpoint(i + 1, 0)?;
    }
    write_table(&dir, &ctx.evals)?;
    if opts.print_table {
        println!("{}", table(&ctx.evals));
    }
    Ok(RunSummary {
        dir,
        evals: ctx.evals,
        finished: true,
    })
}

/// The evaluation table: one row per metric, one column per eval label.
pub fn table(evals: &[EvalRecord]) -> String {
    if evals.is_empty() {
        return "(no eval stages)".into();
    }
    let mut names: Vec<&str> = Vec::new();
    for e in evals {
        for (k, _) in &e.metrics {
            if !names.contains(&k.as_str()) {
                names.push(k);
            }
        }
    }
    let mut out = format!("| {:<12} |", "metric");
    for e in evals {
        out.push_str(&format!(" {:>10} |", e.label));
    }
    out.push_str(&format!("\n|{}|", "-".repeat(14)));
    for _ in evals {
        out.push_str(&format!("{}|", "-".repeat(12)));
    }
    for n in names {
        out.push_str(&format!("\n| {n:<12} |"));
        for e in evals {
            match e.metrics.iter().find(|(k, _)| k == n) {
                Some((_, v)) => out.push_str(&format!(" {v:>10.4} |")),
                None => out.push_str(&format!(" {:>10} |", "")),
            }
        }
    }
    out
}

fn write_table(dir: &Path, evals: &[EvalRecord]) -> anyhow::Result<()> {
    std::fs::write(dir.join("eval.md"), table(evals) + "\n")?;
    std::fs::write(dir.join("eval.json"), serde_json::to_vec_pretty(evals)?)?;
    Ok(())
}
