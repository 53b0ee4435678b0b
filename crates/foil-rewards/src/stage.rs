//! `reward_model`: trains a learned reward model on data made from the run (or a JSONL
//! file), evaluates it on held-out data and saves it into the run directory.
//!
//! ```text
//! data     sampled: the policy's n completions per train problem + the reference solution,
//!                   (+ with `triplets: true` a synthesized negative per correct one, ARMAP)
//!                   judged by `verifier` (pairs: correct ≻ incorrect within a problem);
//!                   held-out: the same on `eval_prompts` test problems
//!          jsonl:   pairs / labelled samples (see `data.rs`); held-out: `jsonl_test`, else
//!                   the last `held_out` share of the file
//! loss     bradley_terry (pairs, `margin`, `center`) | pointwise (labels, BCE) |
//!          process (step labels, per-step BCE)                see the loss files
//! step     `batch` pairs / samples drawn without replacement (seeded by run seed, stage,
//!          step), one AdamW step on the scorer (the policy is not touched)
//! eval     held-out pairwise accuracy and AUC of the response score (process models:
//!          the minimum step probability, Lightman et al. 2023), and for process models
//!          step accuracy and step AUC; recorded as an evaluation column `label`
//! output   <run>/<out>/ (model, optimizer, reward_model.json), loadable by the
//!          `reward_model` verifier with `path: <run>/<out>`
//! ```
//!
//! Resume: when a checkpoint is due the scorer is saved to
//! `<run>/<out>/checkpoints/step{N}` and that path goes into the checkpoint's stage state;
//! a resumed run reloads it and regenerates the (seeded) data with the unchanged policy,
//! so it continues exactly. The stage has `steps + 1` steps: the last one evaluates and
//! writes the final model.

use std::path::PathBuf;

use anyhow::Context;
use burn::tensor::{Tensor, TensorData};
use rand::seq::index::sample;
use serde::{Deserialize, Serialize};

use foil_core::backend::B;
use foil_core::checkpoint::EvalRecord;
use foil_core::policy::OptimizerConfig;
use foil_core::run::RunContext;
use foil_core::{Problem, Sampler, ScoredGroup, Stage, Verifier, register_part, rng};
use foil_models::TinyGpt;

use crate::bradley_terry::BradleyTerry;
use crate::data::Dataset;
use crate::metrics::{auc, pairwise_accuracy};
use crate::pointwise::pointwise_loss;
use crate::process::process_loss;
use crate::scorer::{Encoded, RewardModelMeta, RmKind, ScoreBatch, TrainableScorer, score_encoded};
use crate::verifier::combine_steps;

/// Which loss trains the model (and so which kind of model it is).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum RmLossKind {
    /// Bradley–Terry on pairs (outcome model).
    #[default]
    BradleyTerry,
    /// BCE on labelled samples (outcome model).
    Pointwise,
    /// Per-step BCE on step labels (process model).
    Process,
}

/// Where the scorer's backbone starts.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum RmInit {
    /// From the run's policy as it is when the stage starts (the SFT model; Ouyang et al.
    /// 2022). Needs a `tiny_gpt` policy; the backbone takes its shape (`model` is unused).
    #[default]
    Policy,
    /// Fresh weights of shape `model`.
    Scratch,
}

/// Recipe part: `{type: reward_model, steps: 300, batch: 32, loss: bradley_terry,
/// prompts: 256, sampler: {type: local, n: 4}, verifier: {type: numeric}}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RewardModelStage {
    /// Optimizer steps.
    pub steps: usize,
    /// Pairs (bradley_terry) or samples (pointwise, process) per step.
    pub batch: usize,
    pub loss: RmLossKind,
    /// Bradley–Terry margin.
    pub margin: f32,
    /// Bradley–Terry centring coefficient (ARMAP: 1e-3).
    pub center: f32,
    /// Where the backbone's weights start (the policy's copy is trained, not shared).
    pub init: RmInit,
    /// The backbone's shape under `init: scratch`.
    pub model: TinyGpt,
    pub optimizer: OptimizerConfig,
    /// Train problems to sample (sampled data).
    pub prompts: usize,
    /// Test problems for the held-out evaluation (sampled data).
    pub eval_prompts: usize,
    /// Draws the responses to judge (sampled data).
    pub sampler: Box<dyn Sampler>,
    /// Labels them (`steps` or `process_reward` for step labels).
    pub verifier: Box<dyn Verifier>,
    /// Add each problem's reference solution as a response.
    pub include_reference: bool,
    /// Cap on pairs per prompt (0 = all).
    pub max_pairs_per_prompt: usize,
    /// ARMAP triplets: add to each problem one synthesized negative per correct
    /// trajectory (its answer perturbed, see `triplets.rs`), train and held-out data.
    pub triplets: bool,
    /// VerifyRM input (Cooper, `verify_rm.rs`): score `(problem, reference answer,
    /// response)`, the prompt written as `reference_template` (sampled data only).
    pub reference: bool,
    /// `{prompt}` and `{reference}` are filled in.
    pub reference_template: String,
    /// Train from this JSONL file instead of sampling.
    pub jsonl: Option<PathBuf>,
    /// Held-out JSONL file (else the last `held_out` share of `jsonl`).
    pub jsonl_test: Option<PathBuf>,
    pub held_out: f64,
    /// Separates steps (process models).
    pub separator: String,
    /// Starts the answer piece (not a step).
    pub marker: String,
    /// Output directory inside the run directory.
    pub out: String,
    /// Column label of the evaluation.
    pub label: String,
    pub log_every: usize,
}

impl Default for RewardModelStage {
    fn default() -> Self {
        Self {
            steps: 300,
            batch: 32,
            loss: RmLossKind::BradleyTerry,
            margin: 0.0,
            center: 0.0,
            init: RmInit::Policy,
            model: TinyGpt {
                d_model: 64,
                layers: 2,
                heads: 4,
                context: 64,
                mlp_ratio: 4,
                init_seed: 0,
                precision: Default::default(),
            },
            optimizer: OptimizerConfig::adamw(1e-3),
            prompts: 256,
            eval_prompts: 64,
            sampler: Box::new(foil_samplers::Local {
                n: 4,
                max_tokens: 32,
                ..Default::default()
            }),
            verifier: Box::new(foil_verifiers::Numeric::default()),
            include_reference: true,
            max_pairs_per_prompt: 8,
            triplets: false,
            reference: false,
            reference_template: crate::verify_rm::DEFAULT_TEMPLATE.into(),
            jsonl: None,
            jsonl_test: None,
            held_out: 0.2,
            separator: "|".into(),
            marker: "A:".into(),
            out: "reward_model".into(),
            label: "reward_model".into(),
            log_every: 10,
        }
    }
}

register_part!(
    Stage,
    "reward_model",
    RewardModelStage,
    "trains a learned reward model (Bradley–Terry / pointwise / process) on the run's judged samples or JSONL, evaluates held-out pairwise accuracy and AUC, saves <run>/reward_model"
);

/// A loss with the scalars logged about it.
type LossAndMetrics = (Tensor<B, 1>, Vec<(String, f64)>);

/// Encoded data of one split.
struct Split {
    data: Dataset,
    encoded: Vec<Encoded>,
}

impl RewardModelStage {
    fn kind(&self) -> RmKind {
        match self.loss {
            RmLossKind::Process => RmKind::Process,
            _ => RmKind::Outcome,
        }
    }

    /// Samples `problems` with the policy and judges them.
    fn judged(
        &self,
        ctx: &RunContext,
        problems: &[Problem],
        purpose: u64,
    ) -> anyhow::Result<Vec<(ScoredGroup, Option<foil_core::Verdict>)>> {
        let model = ctx.policy.inference();
        let tok = ctx.task.tokenizer.clone();
        let mut out = Vec::with_capacity(problems.len());
        for (c, chunk) in problems.chunks(64).enumerate() {
            let seed = rng::derive(ctx.seed, &[ctx.stage as u64, purpose, c as u64]);
            let groups = self
                .sampler
                .sample(model.as_ref(), tok.as_ref(), chunk, seed)?;
            for g in groups {
                let verdicts = g
                    .completions
                    .iter()
                    .map(|c| self.verifier.verify(&g.problem, &c.text))
                    .collect();
                let reference = self
                    .include_reference
                    .then(|| self.verifier.verify(&g.problem, &g.problem.solution));
                out.push((
                    ScoredGroup {
                        group: g,
                        verdicts,
                        baseline: None,
                    },
                    reference,
                ));
            }
        }
        Ok(out)
    }

    /// Train and held-out data.
    fn datasets(&self, ctx: &RunContext) -> anyhow::Result<(Dataset, Dataset)> {
        let mut r = rng::rng(ctx.seed, &[ctx.stage as u64, 0x9a15]);
        if let Some(path) = &self.jsonl {
            anyhow::ensure!(
                !self.reference,
                "reward_model: reference: true needs sampled data (JSONL records carry no reference answer)"
            );
            let all = Dataset::from_jsonl(path, self.max_pairs_per_prompt, &mut r)?;
            return Ok(match &self.jsonl_test {
                Some(test) => (
                    all,
                    Dataset::from_jsonl(test, self.max_pairs_per_prompt, &mut r)?,
                ),
                None => all.split(self.held_out),
            });
        }
        let mut r2 = rng::rng(ctx.seed, &[ctx.stage as u64, 0x9a16]);
        let train_problems = pick(&ctx.task.train, self.prompts, &mut r2);
        let test_problems = pick(&ctx.task.test, self.eval_prompts, &mut r2);
        anyhow::ensure!(
            !train_problems.is_empty(),
            "reward_model: the task has no training problems"
        );
        let mut train_groups = self.judged(ctx, &train_problems, 0x51)?;
        let mut test_groups = self.judged(ctx, &test_problems, 0x52)?;
        if self.triplets {
            let mut r3 = rng::rng(ctx.seed, &[ctx.stage as u64, 0x9a17]);
            crate::triplets::add_negatives(&mut train_groups, &self.marker, &mut r3);
            crate::triplets::add_negatives(&mut test_groups, &self.marker, &mut r3);
        }
        if self.reference {
            for (g, _) in train_groups.iter_mut().chain(test_groups.iter_mut()) {
                g.group.problem.prompt =
                    crate::verify_rm::input_prompt(&self.reference_template, &g.group.problem);
            }
        }
        let train = Dataset::from_groups(&train_groups, self.max_pairs_per_prompt, &mut r);
        let test = Dataset::from_groups(&test_groups, self.max_pairs_per_prompt, &mut r);
        Ok((train, test))
    }

    fn meta(&self, ctx: &RunContext) -> anyhow::Result<RewardModelMeta> {
        let recipe = ctx.dir.join("recipe.yaml");
        let text = std::fs::read_to_string(&recipe).with_context(|| {
            format!(
                "reward_model: reading {} (the task section is saved with the model)",
                recipe.display()
            )
        })?;
        let value: serde_json::Value = serde_saphyr::from_str(&text)
            .with_context(|| format!("reward_model: parsing {}", recipe.display()))?;
        let backbone = match self.init {
            RmInit::Scratch => {
                self.model.ensure_f32("reward_model model")?;
                self.model.clone()
            }
            RmInit::Policy => {
                let mut v = serde_json::to_value(&*ctx.policy_config)?;
                let ty = v
                    .get("type")
                    .and_then(|t| t.as_str())
                    .unwrap_or("?")
                    .to_string();
                anyhow::ensure!(
                    ty == "tiny_gpt",
                    "reward_model: init: policy needs a tiny_gpt policy (this run's is `{ty}`); use init: scratch"
                );
                if let Some(m) = v.as_object_mut() {
                    m.remove("type");
                }
                let shape: TinyGpt =
                    serde_json::from_value(v).context("reading the tiny_gpt policy's shape")?;
                // the policy's shape, trained in f32 whatever the policy's precision
                TinyGpt {
                    precision: Default::default(),
                    ..shape
                }
            }
        };
        Ok(RewardModelMeta {
            kind: self.kind(),
            backbone,
            vocab_size: ctx.task.tokenizer.vocab_size(),
            separator: self.separator.clone(),
            marker: self.marker.clone(),
            task: value.get("task").cloned().unwrap_or_default(),
            policy: serde_json::to_value(&*ctx.policy_config)?,
            seed: ctx.seed,
            trained_steps: 0,
            reference: self.reference.then(|| self.reference_template.clone()),
        })
    }

    /// One loss on a drawn batch: `(loss, [(metric, value)])`.
    fn loss(
        &self,
        scorer: &TrainableScorer,
        split: &Split,
        step: usize,
        ctx: &RunContext,
    ) -> anyhow::Result<LossAndMetrics> {
        let mut r = rng::rng(ctx.seed, &[ctx.stage as u64, step as u64]);
        let pad = ctx.task.tokenizer.pad_id();
        let dev = &scorer.device;
        let floats = |v: Vec<f32>, shape: [usize; 2]| {
            Tensor::<B, 2>::from_data(TensorData::new(v, shape), dev)
        };
        match self.loss {
            RmLossKind::BradleyTerry => {
                let pairs = &split.data.pairs;
                anyhow::ensure!(
                    !pairs.is_empty(),
                    "reward_model: no correct ≻ incorrect pairs to train on (every response of every prompt was judged alike; sample more, or use a warmer sampler)"
                );
                let k = self.batch.min(pairs.len());
                let drawn: Vec<(usize, usize)> = sample(&mut r, pairs.len(), k)
                    .into_iter()
                    .map(|i| pairs[i])
                    .collect();
                let rows: Vec<&Encoded> = drawn
                    .iter()
                    .map(|p| &split.encoded[p.0])
                    .chain(drawn.iter().map(|p| &split.encoded[p.1]))
                    .collect();
                let s = scorer
                    .scores(&ScoreBatch::new(&rows, pad))
                    .slice([0..2 * k, 0..1])
                    .reshape([2 * k]);
                let chosen = s.clone().slice(0..k);
                let rejected = s.slice(k..2 * k);
                let c = foil_core::batch::to_vec(chosen.clone().detach());
                let j = foil_core::batch::to_vec(rejected.clone().detach());
                let acc = c.iter().zip(&j).filter(|(a, b)| a > b).count() as f64 / k as f64;
                let bt = BradleyTerry {
                    margin: self.margin,
                    center: self.center,
                };
                Ok((bt.loss(chosen, rejected), vec![("pair_acc".into(), acc)]))
            }
            RmLossKind::Pointwise => {
                let n = split.data.items.len();
                let k = self.batch.min(n);
                let idx: Vec<usize> = sample(&mut r, n, k).into_vec();
                let rows: Vec<&Encoded> = idx.iter().map(|&i| &split.encoded[i]).collect();
                let s = scorer
                    .scores(&ScoreBatch::new(&rows, pad))
                    .slice([0..k, 0..1])
                    .reshape([k]);
                let labels: Vec<f32> = idx.iter().map(|&i| split.data.items[i].label).collect();
                let host = foil_core::batch::to_vec(s.clone().detach());
                let acc = host
                    .iter()
                    .zip(&labels)
                    .filter(|(s, l)| (**s > 0.0) == (**l >= 0.5))
                    .count() as f64
                    / k as f64;
                let l = Tensor::<B, 1>::from_data(TensorData::new(labels, [k]), dev);
                Ok((pointwise_loss(s, l), vec![("acc".into(), acc)]))
            }
            RmLossKind::Process => {
                let usable: Vec<usize> = (0..split.data.items.len())
                    .filter(|&i| {
                        !split.data.items[i].steps.is_empty()
                            && !split.encoded[i].readout.is_empty()
                    })
                    .collect();
                anyhow::ensure!(
                    !usable.is_empty(),
                    "reward_model: loss `process` needs step labels, but the verifier gave none (use `steps` or `process_reward`, or JSONL records with \"steps\")"
                );
                let k = self.batch.min(usable.len());
                let idx: Vec<usize> = sample(&mut r, usable.len(), k)
                    .into_iter()
                    .map(|i| usable[i])
                    .collect();
                let rows: Vec<&Encoded> = idx.iter().map(|&i| &split.encoded[i]).collect();
                let batch = ScoreBatch::new(&rows, pad);
                let mut labels = vec![0.0; k * batch.s];
                let mut mask = vec![0.0; k * batch.s];
                for (row, &i) in idx.iter().enumerate() {
                    let steps = &split.data.items[i].steps;
                    for j in 0..steps.len().min(split.encoded[i].readout.len()) {
                        labels[row * batch.s + j] = steps[j];
                        mask[row * batch.s + j] = 1.0;
                    }
                }
                let s = scorer.scores(&batch);
                let host = foil_core::batch::to_vec(s.clone().detach());
                let (mut right, mut total) = (0.0, 0.0);
                for x in 0..labels.len() {
                    if mask[x] > 0.0 {
                        total += 1.0;
                        if (host[x] > 0.0) == (labels[x] >= 0.5) {
                            right += 1.0;
                        }
                    }
                }
                let l = process_loss(s, floats(labels, [k, batch.s]), floats(mask, [k, batch.s]));
                Ok((l, vec![("step_acc".into(), right / f64::max(total, 1.0))]))
            }
        }
    }

    /// Held-out metrics of the current weights.
    fn evaluate(
        &self,
        scorer: &TrainableScorer,
        test: &Split,
        ctx: &RunContext,
    ) -> anyhow::Result<Vec<(String, f64)>> {
        let model = scorer.inference();
        let device = foil_core::backend::inner_device(&scorer.device);
        let scores = score_encoded(&model, &test.encoded, ctx.task.tokenizer.pad_id(), &device)?;
        let kind = self.kind();
        let response: Vec<f32> = scores
            .iter()
            .map(|s| match kind {
                RmKind::Outcome => s[0],
                RmKind::Process => {
                    crate::verifier::logit(combine_steps(s, crate::verifier::Combine::Min))
                }
            })
            .collect();
        let labels: Vec<bool> = test.data.items.iter().map(|i| i.label >= 0.5).collect();
        let mut m = vec![
            (
                "pairwise_acc".to_string(),
                pairwise_accuracy(&response, &test.data.pairs).unwrap_or(f64::NAN),
            ),
            (
                "auc".to_string(),
                auc(&response, &labels).unwrap_or(f64::NAN),
            ),
            ("pairs".to_string(), test.data.pairs.len() as f64),
            ("responses".to_string(), test.data.items.len() as f64),
        ];
        if kind == RmKind::Process {
            let (mut step_scores, mut step_labels) = (Vec::new(), Vec::new());
            for (item, s) in test.data.items.iter().zip(&scores) {
                for (j, &l) in item.steps.iter().enumerate().take(s.len()) {
                    step_scores.push(s[j]);
                    step_labels.push(l >= 0.5);
                }
            }
            let right = step_scores
                .iter()
                .zip(&step_labels)
                .filter(|(s, l)| (**s > 0.0) == **l)
                .count();
            m.push((
                "step_acc".into(),
                right as f64 / step_scores.len().max(1) as f64,
            ));
            m.push((
                "step_auc".into(),
                auc(&step_scores, &step_labels).unwrap_or(f64::NAN),
            ));
        }
        Ok(m)
    }

    fn encode(
        &self,
        meta: &RewardModelMeta,
        ctx: &RunContext,
        data: Dataset,
    ) -> anyhow::Result<Split> {
        let tok = ctx.task.tokenizer.clone();
        let encoded = data
            .items
            .iter()
            .map(|i| meta.encode(tok.as_ref(), &i.prompt, &i.response))
            .collect::<anyhow::Result<_>>()?;
        Ok(Split { data, encoded })
    }
}

/// `k` problems of `set` drawn without replacement.
fn pick(set: &[Problem], k: usize, r: &mut impl rand::Rng) -> Vec<Problem> {
    let k = k.min(set.len());
    sample(r, set.len(), k)
        .into_iter()
        .map(|i| set[i].clone())
        .collect()
}

#[typetag::serde(name = "reward_model")]
impl Stage for RewardModelStage {
    fn steps(&self) -> usize {
        self.steps + 1
    }

    fn run(&self, ctx: &mut RunContext, start_step: usize) -> anyhow::Result<()> {
        anyhow::ensure!(self.batch > 0, "reward_model: batch must be at least 1");
        anyhow::ensure!(
            (0.0..1.0).contains(&self.held_out),
            "reward_model: held_out must lie in [0, 1)"
        );
        self.verifier.prepare()?;
        let meta = self.meta(ctx)?;
        let out_dir = ctx.dir.join(&self.out);
        let (train, test) = self.datasets(ctx)?;
        let train = self.encode(&meta, ctx, train)?;
        let test = self.encode(&meta, ctx, test)?;
        let mut scorer = if start_step == 0 {
            let mut s = TrainableScorer::new(meta, &ctx.device, ctx.seed, &self.optimizer);
            if self.init == RmInit::Policy {
                let tmp = ctx.dir.join(&self.out).join(".policy-init");
                if tmp.exists() {
                    std::fs::remove_dir_all(&tmp)?;
                }
                std::fs::create_dir_all(&tmp)?;
                ctx.policy.save(&tmp)?;
                s.init_backbone_from(&tmp)?;
                std::fs::remove_dir_all(&tmp)?;
            }
            s
        } else {
            let saved = ctx
                .resumed_stage_state
                .take()
                .and_then(|s| {
                    s.get("reward_model")
                        .and_then(|p| p.as_str())
                        .map(PathBuf::from)
                })
                .map(|p| ctx.dir.join(p))
                .unwrap_or_else(|| {
                    out_dir
                        .join("checkpoints")
                        .join(format!("step{start_step}"))
                });
            let s = TrainableScorer::load(&saved, &ctx.device, &self.optimizer)
                .with_context(|| format!("reward_model: resuming at step {start_step}"))?;
            anyhow::ensure!(
                s.meta.trained_steps == start_step.min(self.steps),
                "reward_model: {} holds a model after {} steps, but the run resumes at step {start_step}",
                saved.display(),
                s.meta.trained_steps
            );
            s
        };
        if ctx.progress {
            eprintln!(
                "reward_model: {} train responses / {} pairs, {} held-out / {} pairs",
                train.data.items.len(),
                train.data.pairs.len(),
                test.data.items.len(),
                test.data.pairs.len()
            );
        }
        let bar = ctx.bar(self.steps, "reward_model");
        bar.set_position(start_step.min(self.steps) as u64);
        for step in start_step..self.steps {
            let (loss, extra) = self.loss(&scorer, &train, step, ctx)?;
            let value = foil_core::batch::to_vec(loss.clone().detach())[0];
            if !value.is_finite() {
                return Err(ctx.non_finite(step, value, "reward-model loss".into()));
            }
            let lr = self.optimizer.lr_at(step);
            scorer.step(loss, lr);
            bar.inc(1);
            if step % self.log_every.max(1) == 0 || step + 1 == self.steps {
                let mut m = vec![("rm_loss".to_string(), value as f64), ("lr".into(), lr)];
                m.extend(extra.into_iter().map(|(k, v)| (format!("rm_{k}"), v)));
                ctx.log(step, &m)?;
            }
            let due = (ctx.checkpoint_every > 0 && (step + 1).is_multiple_of(ctx.checkpoint_every))
                || ctx.stop_after.is_some_and(|s| ctx.steps_run + 1 >= s);
            if due {
                let rel = PathBuf::from(&self.out)
                    .join("checkpoints")
                    .join(format!("step{}", step + 1));
                scorer.save(&ctx.dir.join(&rel))?;
                ctx.stage_state = Some(serde_json::json!({ "reward_model": rel }));
            }
            if ctx.end_step(step)? {
                bar.finish();
                return Ok(());
            }
        }
        bar.finish();
        // the last step: evaluate and write the final model
        let metrics = self.evaluate(&scorer, &test, ctx)?;
        scorer.save(&out_dir)?;
        ctx.log(self.steps, &metrics)?;
        if ctx.progress {
            let summary: Vec<String> = metrics.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
            eprintln!(
                "reward_model {}: {} (saved to {})",
                self.label,
                summary.join(", "),
                out_dir.display()
            );
        }
        ctx.evals.push(EvalRecord {
            label: self.label.clone(),
            metrics,
        });
        ctx.end_step(self.steps)?;
        Ok(())
    }
}
