//! `rft`: rejection-sampling fine-tuning (Yuan et al. 2023, arXiv 2308.01825; the RFT
//! baseline of Setlur et al. 2024, arXiv 2406.14532, `methods.md` §1 step 2).
//!
//! ```text
//! at the stage start (π_0 = the policy then, e.g. π_sft):
//!     P  ← the first `problems` training problems (0 = all): the synthetic problem budget N
//!     D  ← { (x, y) : x ∈ P, y ~ π_0(·|x) one of k = sampler.n samples, verifier(x, y) correct }
//!          duplicates (same x, same response tokens) removed when `dedup`
//! for step in 0..steps:
//!     θ ← θ − lr ∇ objective(batch rows of D)        (default nll: −(1/|y|) Σ_t log π_θ(y_t | x, y_<t))
//! ```
//!
//! The data set is sampled once from the stage-start policy [paper: "sample from π_sft, keep
//! verifier-correct responses, fine-tune on them"]; the training loop is `sft`'s
//! (`sft::supervised_steps`). Responses are kept as sampled (their tokens, EOS included).
//! On resume the data set is sampled again, from the stage's first checkpoint, with the same
//! seeds, so it is the same set. Logged on every line: `rft_problems` (|P|), `rft_samples`,
//! `rft_kept` (|D|), `rft_solved` (problems with at least one kept response).

use std::collections::HashSet;

use foil_core::policy::{InferenceModel, OptimizerConfig};
use foil_core::run::RunContext;
use foil_core::{Objective, Sampler, Stage, Verifier, checkpoint, register_part, rng};
use serde::{Deserialize, Serialize};

use crate::per_step::budget;
use crate::sft::{SupervisedSchedule, supervised_steps};

/// Recipe part: the `rft` stage (see the module docs).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rft {
    /// Optimizer steps on the kept responses.
    pub steps: usize,
    /// Rows per step.
    pub batch: usize,
    /// Problem budget `N`: the first this many training problems (0 = all).
    pub problems: usize,
    /// Samples per problem (`k` = its `n`).
    pub sampler: Box<dyn Sampler>,
    pub verifier: Box<dyn Verifier>,
    /// Drop repeated responses to the same problem.
    pub dedup: bool,
    /// Problems per sampling call.
    pub chunk: usize,
    pub optimizer: OptimizerConfig,
    pub objective: Box<dyn Objective>,
    /// Log every this many steps (and the last).
    pub log_every: usize,
}

impl Default for Rft {
    fn default() -> Self {
        Self {
            steps: 100,
            batch: 64,
            problems: 0,
            sampler: Box::new(foil_samplers::Local {
                n: 4,
                ..Default::default()
            }),
            verifier: Box::new(foil_verifiers::Numeric::default()),
            dedup: true,
            chunk: 64,
            optimizer: OptimizerConfig::adamw(1e-3),
            objective: Box::new(foil_objectives::Nll::default()),
            log_every: 10,
        }
    }
}

register_part!(
    Stage,
    "rft",
    Rft,
    "rejection-sampling fine-tuning: sample k per problem (budget N), keep the correct ones, SFT on them"
);

/// The kept rows and counts of an RFT data set.
pub struct RftData {
    pub rows: Vec<(Vec<u32>, Vec<u32>)>,
    pub problems: usize,
    pub samples: usize,
    pub solved: usize,
}

impl Rft {
    /// Samples and filters the data set with `model` (see the module docs).
    pub fn collect(&self, ctx: &RunContext, model: &dyn InferenceModel) -> anyhow::Result<RftData> {
        let tok = ctx.task.tokenizer.clone();
        let pool = budget(&ctx.task.train, self.problems);
        let mut data = RftData {
            rows: Vec::new(),
            problems: pool.len(),
            samples: 0,
            solved: 0,
        };
        for (c, chunk) in pool.chunks(self.chunk.max(1)).enumerate() {
            let seed = rng::derive(ctx.seed, &[ctx.stage as u64, 0x2F7, c as u64]);
            for g in self.sampler.sample(model, tok.as_ref(), chunk, seed)? {
                let prompt = tok.encode_prompt(&g.problem.prompt)?;
                let mut seen: HashSet<Vec<u32>> = HashSet::new();
                let mut any = false;
                for comp in &g.completions {
                    data.samples += 1;
                    if comp.tokens.is_empty()
                        || !self.verifier.verify(&g.problem, &comp.text).correct
                        || (self.dedup && !seen.insert(comp.tokens.clone()))
                    {
                        continue;
                    }
                    any = true;
                    data.rows.push((prompt.clone(), comp.tokens.clone()));
                }
                data.solved += any as usize;
            }
        }
        Ok(data)
    }
}

#[typetag::serde(name = "rft")]
impl Stage for Rft {
    fn steps(&self) -> usize {
        self.steps
    }

    fn run(&self, ctx: &mut RunContext, start_step: usize) -> anyhow::Result<()> {
        self.verifier.prepare()?;
        anyhow::ensure!(self.batch > 0, "rft: batch must be at least 1");
        anyhow::ensure!(
            !ctx.task.train.is_empty(),
            "rft: the task has no training problems"
        );
        // the data comes from the policy as it was at the stage start
        let model: Box<dyn InferenceModel> = if start_step == 0 {
            ctx.policy.inference()
        } else {
            let dir = checkpoint::stage_start(&ctx.dir, ctx.stage);
            let mut p =
                ctx.policy_config
                    .build(ctx.task.tokenizer.vocab_size(), &ctx.device, ctx.seed)?;
            p.load(&dir).map_err(|e| {
                e.context(format!(
                    "rft: rebuilding the stage-start policy from {}",
                    dir.display()
                ))
            })?;
            p.inference()
        };
        let data = self.collect(ctx, model.as_ref())?;
        drop(model);
        anyhow::ensure!(
            !data.rows.is_empty(),
            "rft: none of the {} samples on {} problems is correct: nothing to fine-tune on",
            data.samples,
            data.problems
        );
        if ctx.progress {
            eprintln!(
                "rft: kept {} correct responses of {} samples ({} of {} problems solved)",
                data.rows.len(),
                data.samples,
                data.solved,
                data.problems
            );
        }
        let extra = vec![
            ("rft_problems".to_string(), data.problems as f64),
            ("rft_samples".into(), data.samples as f64),
            ("rft_kept".into(), data.rows.len() as f64),
            ("rft_solved".into(), data.solved as f64),
        ];
        ctx.prepare_optimizer(&self.optimizer, start_step)?;
        supervised_steps(
            ctx,
            "rft",
            &data.rows,
            &SupervisedSchedule {
                steps: self.steps,
                batch: self.batch,
                optimizer: &self.optimizer,
                objective: self.objective.as_ref(),
                log_every: self.log_every,
            },
            start_step,
            &extra,
        )
    }
}
