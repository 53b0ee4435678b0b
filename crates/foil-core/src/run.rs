//! The context every stage runs in: the policy, the task, the run directory, metrics,
//! checkpoints and progress bars.

use std::path::PathBuf;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value};

use crate::backend::Device;
use crate::checkpoint::{self, EvalRecord, RunState};
use crate::error::FoilError;
use crate::metrics::MetricsLog;
use crate::parts::{PolicyConfig, TaskData};
use crate::policy::Policy;
use crate::policy::{InferenceModel, OptimizerConfig};

/// Shared state of a run.
pub struct RunContext {
    /// Recipe name.
    pub name: String,
    /// Run seed; every random stream derives from it (see [`crate::rng`]).
    pub seed: u64,
    /// Inference device (training happens on its autodiff wrapper).
    pub device: Device,
    /// `runs/<name>-<time>/`.
    pub dir: PathBuf,
    pub task: TaskData,
    pub policy: Box<dyn Policy>,
    /// Index of the running stage.
    pub stage: usize,
    /// Its `type:` name.
    pub stage_type: String,
    /// Checkpoint every this many steps inside a stage (0: only between stages).
    pub checkpoint_every: usize,
    pub metrics: MetricsLog,
    /// Evaluations finished so far.
    pub evals: Vec<EvalRecord>,
    /// The newest checkpoint written or resumed from.
    pub last_checkpoint: Option<PathBuf>,
    /// Stop (as if interrupted) after this many steps in this process; for tests of resume.
    pub stop_after: Option<usize>,
    /// Steps run in this process.
    pub steps_run: usize,
    /// Show progress bars.
    pub progress: bool,
    /// Set when [`RunContext::stop_after`] was reached: stages return early.
    pub stopped: bool,
    /// The checkpoint this process resumed from (optimizer state is reloaded from it once
    /// the resumed stage has set its optimizer up).
    pub resume_dir: Option<PathBuf>,
    /// How the policy was built (to rebuild frozen copies from checkpoints).
    pub policy_config: Arc<dyn PolicyConfig>,
    /// What the running stage wants saved with its next checkpoint (its objective's
    /// [`crate::Objective::state`]); the runner clears it when a stage starts.
    pub stage_state: Option<Value>,
    /// The stage state of the checkpoint this process resumed from, for the resumed
    /// stage to [`crate::Objective::restore`].
    pub resumed_stage_state: Option<Value>,
}

impl RunContext {
    /// Appends a metrics record for `step` of the current stage.
    pub fn log(&mut self, step: usize, values: &[(String, f64)]) -> anyhow::Result<()> {
        let mut m = Map::new();
        m.insert("stage".into(), Value::from(self.stage));
        m.insert("stage_type".into(), Value::from(self.stage_type.clone()));
        m.insert("step".into(), Value::from(step));
        for (k, v) in values {
            let v = if v.is_finite() {
                Value::from(*v)
            } else {
                Value::from(v.to_string())
            };
            m.insert(k.clone(), v);
        }
        self.metrics.write(m)
    }

    /// Call after finishing `step` (0-based) of the current stage: checkpoints when due and
    /// returns `true` when the run must stop here (see [`RunContext::stop_after`]).
    pub fn end_step(&mut self, step: usize) -> anyhow::Result<bool> {
        self.steps_run += 1;
        let stopping = self.stop_after.is_some_and(|s| self.steps_run >= s);
        self.stopped = stopping;
        if (self.checkpoint_every > 0 && (step + 1).is_multiple_of(self.checkpoint_every))
            || stopping
        {
            self.checkpoint(self.stage, step + 1)?;
        }
        Ok(stopping)
    }

    /// Starts a stage's optimizer: fresh at `start_step == 0`, otherwise with the state
    /// saved in the checkpoint being resumed.
    pub fn prepare_optimizer(
        &mut self,
        config: &OptimizerConfig,
        start_step: usize,
    ) -> anyhow::Result<()> {
        self.policy.reset_optimizer(config);
        if start_step > 0
            && let Some(dir) = self.resume_dir.take()
        {
            self.policy.load(&dir)?;
        }
        Ok(())
    }

    /// The frozen reference of a stage: the policy's own (the base under LoRA adapters),
    /// else a copy of the policy as it was when the current stage started: the live
    /// weights at step 0, or the stage's first checkpoint when resuming mid-stage.
    pub fn stage_start_snapshot(
        &self,
        start_step: usize,
    ) -> anyhow::Result<Box<dyn InferenceModel>> {
        self.stage_start_snapshot_on(self.policy.as_ref(), &self.device, start_step)
    }

    /// [`RunContext::stage_start_snapshot`] for `policy`, a copy of the run's policy with
    /// the same weights (a data-parallel replica) built on `device` (its inner device):
    /// its adapter-free base, its own weights at step 0, else the stage-start checkpoint
    /// loaded on `device`.
    pub fn stage_start_snapshot_on(
        &self,
        policy: &dyn Policy,
        device: &Device,
        start_step: usize,
    ) -> anyhow::Result<Box<dyn InferenceModel>> {
        // a policy with adapters offers its base model, which costs no extra weights
        if let Some(reference) = policy.reference() {
            return Ok(reference);
        }
        if start_step == 0 {
            return Ok(policy.inference());
        }
        let dir = checkpoint::stage_start(&self.dir, self.stage);
        let mut p =
            self.policy_config
                .build(self.task.tokenizer.vocab_size(), device, self.seed)?;
        p.load(&dir).map_err(|e| {
            e.context(format!(
                "rebuilding the stage-start reference from {}",
                dir.display()
            ))
        })?;
        Ok(p.inference())
    }

    /// Writes a checkpoint that resumes at `step` of `stage`.
    pub fn checkpoint(&mut self, stage: usize, step: usize) -> anyhow::Result<()> {
        let state = RunState {
            stage,
            step,
            evals: self.evals.clone(),
            metrics_lines: self.metrics.lines(),
            stage_state: self.stage_state.clone(),
        };
        let policy = &self.policy;
        let dir = checkpoint::write(&self.dir, &state, |d| policy.save(d))?;
        self.last_checkpoint = Some(dir);
        Ok(())
    }

    /// The error for a NaN / infinite loss at `step`.
    pub fn non_finite(&self, step: usize, value: f32, detail: String) -> anyhow::Error {
        FoilError::NonFiniteLoss {
            value,
            stage: self.stage,
            stage_type: self.stage_type.clone(),
            step,
            detail,
            last_checkpoint: self
                .last_checkpoint
                .as_ref()
                .map(|p| {
                    format!(
                        "{} (resume with --resume {})",
                        p.display(),
                        self.dir.display()
                    )
                })
                .unwrap_or_else(|| "none (the run had not written one yet)".into()),
        }
        .into()
    }

    /// A progress bar of `len` steps (hidden when progress is off).
    pub fn bar(&self, len: usize, message: &str) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:>14} [{bar:30.cyan/blue}] {pos:>4}/{len:4} {elapsed_precise} eta {eta} {prefix}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_message(message.to_string());
        bar
    }
}
