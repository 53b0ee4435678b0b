//! `dialogue_evaluator`: trains and evaluates one SIMAMR-style dialogue evaluator (Yang
//! et al., SIMAMR, arXiv 2404.01129; `../shared/docs/methods.md` §2, "tiny experiment").
//!
//! ```text
//! data     foil_data::dialogue_facts (context facts; gold / adversarial / random
//!          responses; exact triple graphs), drawn from the run seed
//! train    label 1: every training dialogue's gold response
//!          label 0: its random negative, and with `negatives: random_adversarial` also
//!                   its adversarial negative (swapped roles or negated relation)
//!          `batch` examples per step, half positives and half negatives, each drawn
//!          uniformly with replacement,
//!          CE loss (simamr.rs), AdamW
//! model    `graph: false`: text only, logits = W_c h_s;  `graph: true`: gated text+graph
//! eval     on the test dialogues, score = logit₁ − logit₀:
//!          auroc_random       gold vs random negatives
//!          auroc_adversarial  gold vs adversarial negatives (auroc_swap, auroc_negate:
//!                             gold vs each kind)
//!          acc_gold / acc_random / acc_adversarial  share classified right (score > 0)
//!          gate_mean          mean of g over the test examples (gated models)
//!          recorded as eval column `label` and in metrics.jsonl
//! ```
//!
//! Arms of the tiny experiment: (a) text, random negatives; (b) text, random +
//! adversarial; (c) gated text+graph, random + adversarial. The data, the text encoder's
//! initial weights and the test set depend only on the run seed (and `data.seed`), so the
//! arms of one seed are paired. The stage ignores the run's task and policy (a recipe
//! still names them, as `recipes/relmf.yaml` does); it is one step, and an interrupted run
//! redoes it exactly. Defaults [recon]: the released config (batch 32, lr 1e-4, d 512,
//! 4 layers, up to 300 epochs) suits BERT on DailyDialog++; here a d = 48 encoder trained
//! from scratch, batch 64, lr 1e-3.

use foil_core::backend::{B as FB, Device, inner_device, train_device};
use foil_core::checkpoint::EvalRecord;
use foil_core::policy::OptimizerConfig;
use foil_core::run::RunContext;
use foil_core::{Stage, Tokenizer, register_part, rng};
use foil_data::dialogue_facts::{
    Dialogue, DialogueFacts, DialogueTokenizer, Response, ResponseKind, SEP, linearize,
};
use foil_models::TinyGpt;
use foil_models::trainable::{self, Adam};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::metrics::auc;
use crate::simamr::{Example, SimAmrBatch, SimAmrModel, cross_entropy, scores};

const BATCH: u64 = 0x51A3_BA7C;

/// Which negatives train the model.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Negatives {
    /// Responses of other dialogues only.
    Random,
    /// Random and adversarial negatives (SIMAMR).
    #[default]
    RandomAdversarial,
}

/// Recipe part: `{type: dialogue_evaluator, label: gated, negatives: random_adversarial,
/// graph: true}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DialogueEvaluator {
    /// Column name in the eval table.
    pub label: String,
    pub negatives: Negatives,
    /// Gated text+graph model (else text only).
    pub graph: bool,
    pub data: DialogueFacts,
    /// Text encoder shape.
    pub encoder: TinyGpt,
    /// Graph encoder shape (`d_model` = the text encoder's).
    pub graph_encoder: TinyGpt,
    pub steps: usize,
    pub batch: usize,
    pub optimizer: OptimizerConfig,
    /// Log the training loss every this many steps (0: never).
    pub log_every: usize,
}

impl Default for DialogueEvaluator {
    fn default() -> Self {
        let encoder = TinyGpt {
            d_model: 32,
            layers: 2,
            heads: 2,
            context: 48,
            mlp_ratio: 2,
            init_seed: 0,
            precision: Default::default(),
        };
        Self {
            label: "evaluator".into(),
            negatives: Negatives::RandomAdversarial,
            graph: false,
            data: DialogueFacts::default(),
            graph_encoder: TinyGpt {
                context: 32,
                ..encoder.clone()
            },
            encoder,
            steps: 400,
            batch: 32,
            optimizer: OptimizerConfig::adamw(3e-3),
            log_every: 100,
        }
    }
}

register_part!(
    Stage,
    "dialogue_evaluator",
    DialogueEvaluator,
    "SIMAMR-style dialogue evaluator (arXiv 2404.01129): text-only or gated text+graph appropriateness classifier trained with random (+ adversarial) negatives on synthetic fact dialogues, AUROC per negative type"
);

/// What one experiment measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub metrics: Vec<(String, f64)>,
    /// `(step, loss)` every `log_every` steps and at the end.
    pub losses: Vec<(usize, f64)>,
}

/// Encodes one (dialogue, response) example.
pub fn encode(tok: &DialogueTokenizer, d: &Dialogue, r: &Response) -> anyhow::Result<Example> {
    let mut text = tok.encode(&d.context_text)?;
    text.extend(tok.encode(SEP)?);
    text.extend(tok.encode(&r.text)?);
    text.push(tok.eos_id());
    let (graph, context_nodes) = linearize(&d.context, &r.triple);
    Ok(Example {
        text,
        graph: tok.encode(&graph.join(" "))?,
        context_nodes,
        label: r.kind.appropriate(),
    })
}

impl DialogueEvaluator {
    fn validate(&self) -> anyhow::Result<()> {
        self.data.validate()?;
        anyhow::ensure!(
            self.batch >= 2 && self.steps >= 1,
            "dialogue_evaluator `{}`: need batch ≥ 2 and steps ≥ 1, got {} and {}",
            self.label,
            self.batch,
            self.steps
        );
        Ok(())
    }

    /// Runs the experiment on `device` (its autodiff wrapper trains) from run seed `seed`.
    pub fn experiment(
        &self,
        seed: u64,
        device: &Device,
        mut on_loss: impl FnMut(usize, f64) -> anyhow::Result<()>,
    ) -> anyhow::Result<Outcome> {
        self.validate()?;
        let set = self.data.generate(seed)?;
        let tok = DialogueTokenizer::default();
        let mut pool = Vec::new();
        for d in &set.train {
            pool.push(encode(&tok, d, &d.gold)?);
            pool.push(encode(&tok, d, &d.random)?);
            if self.negatives == Negatives::RandomAdversarial {
                pool.push(encode(&tok, d, &d.adversarial)?);
            }
        }
        for (what, c, longest) in [
            (
                "encoder",
                &self.encoder,
                pool.iter().map(|e| e.text.len()).max(),
            ),
            (
                "graph_encoder",
                &self.graph_encoder,
                pool.iter().map(|e| e.graph.len()).max(),
            ),
        ] {
            let longest = longest.unwrap_or(0);
            anyhow::ensure!(
                c.context >= longest || (what == "graph_encoder" && !self.graph),
                "dialogue_evaluator `{}`: {what}.context {} is shorter than the longest input ({longest} tokens)",
                self.label,
                c.context
            );
        }
        let (pos, neg): (Vec<&Example>, Vec<&Example>) = pool.iter().partition(|e| e.label);
        let train = train_device(device);
        let graph_cfg = self.graph.then_some(&self.graph_encoder);
        let mut model =
            SimAmrModel::init(&self.encoder, graph_cfg, tok.vocab_size(), &train, seed)?;
        let mut optim: Adam<SimAmrModel<FB>> = trainable::adamw(&self.optimizer);
        let mut draws = rng::rng(seed, &[BATCH]);
        let mut losses = Vec::new();
        for step in 0..self.steps {
            // half positives, half negatives (the pool has one positive per one or two
            // negatives), each drawn uniformly with replacement
            let rows: Vec<&Example> = (0..self.batch)
                .map(|k| {
                    let from = if k < self.batch / 2 { &pos } else { &neg };
                    from[draws.random_range(0..from.len())]
                })
                .collect();
            let labels: Vec<bool> = rows.iter().map(|r| r.label).collect();
            let batch = SimAmrBatch::new(&rows, tok.pad_id(), self.graph);
            let (logits, _) = model.forward(&batch, &train)?;
            let loss = cross_entropy(logits, &labels, &train);
            let last = step + 1 == self.steps;
            if last || (self.log_every > 0 && step % self.log_every == 0) {
                let v =
                    loss.clone().into_data().to_vec::<f32>().map_err(|e| {
                        anyhow::anyhow!("dialogue_evaluator: reading the loss: {e:?}")
                    })?[0] as f64;
                anyhow::ensure!(
                    v.is_finite(),
                    "dialogue_evaluator `{}`: non-finite loss {v} at step {step}",
                    self.label
                );
                losses.push((step, v));
                on_loss(step, v)?;
            }
            model = trainable::step(model, &mut optim, loss, self.optimizer.lr_at(step));
        }
        use burn::module::AutodiffModule;
        let metrics = evaluate(&model.valid(), &set.test, &tok, &inner_device(device))?;
        Ok(Outcome { metrics, losses })
    }
}

/// AUROC per negative type, accuracies and the mean gate on `test`.
pub fn evaluate(
    model: &SimAmrModel<FB>,
    test: &[Dialogue],
    tok: &DialogueTokenizer,
    device: &Device,
) -> anyhow::Result<Vec<(String, f64)>> {
    let mut examples = Vec::new();
    let mut kinds = Vec::new();
    for d in test {
        for r in [&d.gold, &d.random, &d.adversarial] {
            examples.push(encode(tok, d, r)?);
            kinds.push(r.kind);
        }
    }
    let mut s = Vec::with_capacity(examples.len());
    let (mut gate_sum, mut gate_n) = (0.0f64, 0usize);
    for chunk in examples.chunks(128) {
        let rows: Vec<&Example> = chunk.iter().collect();
        let batch = SimAmrBatch::new(&rows, tok.pad_id(), model.has_graph());
        let (logits, g) = model.forward(&batch, device)?;
        s.extend(scores(logits)?);
        if let Some(g) = g {
            let v = g
                .into_data()
                .to_vec::<f32>()
                .map_err(|e| anyhow::anyhow!("dialogue_evaluator: reading the gate: {e:?}"))?;
            gate_sum += v.iter().map(|&x| x as f64).sum::<f64>();
            gate_n += v.len();
        }
    }
    let auc_of = |neg: &dyn Fn(ResponseKind) -> bool| -> Option<f64> {
        let (sc, lab): (Vec<f32>, Vec<bool>) = s
            .iter()
            .zip(&kinds)
            .filter(|(_, k)| k.appropriate() || neg(**k))
            .map(|(x, k)| (*x, k.appropriate()))
            .unzip();
        auc(&sc, &lab)
    };
    let acc_of = |want: &dyn Fn(ResponseKind) -> bool| -> f64 {
        let (mut right, mut n) = (0usize, 0usize);
        for (x, k) in s.iter().zip(&kinds) {
            if want(*k) {
                n += 1;
                right += usize::from((*x > 0.0) == k.appropriate());
            }
        }
        right as f64 / n.max(1) as f64
    };
    let mut m = Vec::new();
    let named: [(&str, &dyn Fn(ResponseKind) -> bool); 4] = [
        ("auroc_random", &|k| k == ResponseKind::Random),
        ("auroc_adversarial", &|k: ResponseKind| k.adversarial()),
        ("auroc_swap", &|k| k == ResponseKind::Swap),
        ("auroc_negate", &|k| k == ResponseKind::Negate),
    ];
    for (name, f) in named {
        if let Some(v) = auc_of(f) {
            m.push((name.to_string(), v));
        }
    }
    m.push(("acc_gold".into(), acc_of(&|k| k == ResponseKind::Gold)));
    m.push(("acc_random".into(), acc_of(&|k| k == ResponseKind::Random)));
    m.push((
        "acc_adversarial".into(),
        acc_of(&|k: ResponseKind| k.adversarial()),
    ));
    if gate_n > 0 {
        m.push(("gate_mean".into(), gate_sum / gate_n as f64));
    }
    Ok(m)
}

#[typetag::serde(name = "dialogue_evaluator")]
impl Stage for DialogueEvaluator {
    fn steps(&self) -> usize {
        1
    }

    fn run(&self, ctx: &mut RunContext, _start_step: usize) -> anyhow::Result<()> {
        let device = ctx.device.clone();
        let bar = ctx.bar(self.steps, &format!("dialogue_evaluator {}", self.label));
        let mut logged = Vec::new();
        let out = self.experiment(ctx.seed, &device, |step, loss| {
            bar.set_position(step as u64);
            logged.push((step, loss));
            Ok(())
        })?;
        bar.finish_and_clear();
        for (step, loss) in logged {
            ctx.log(
                0,
                &[("train_step".into(), step as f64), ("loss".into(), loss)],
            )?;
        }
        ctx.log(0, &out.metrics)?;
        if ctx.progress {
            eprintln!(
                "dialogue_evaluator {}: {}",
                self.label,
                out.metrics
                    .iter()
                    .map(|(k, v)| format!("{k} {v:.4}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        ctx.evals.push(EvalRecord {
            label: self.label.clone(),
            metrics: out.metrics,
        });
        ctx.end_step(0)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use foil_core::backend::parse_device;

    fn small(negatives: Negatives, graph: bool) -> DialogueEvaluator {
        DialogueEvaluator {
            negatives,
            graph,
            data: DialogueFacts {
                train: 200,
                test: 40,
                ..DialogueFacts::default()
            },
            steps: 30,
            batch: 16,
            log_every: 10,
            ..DialogueEvaluator::default()
        }
    }

    fn metric(o: &Outcome, name: &str) -> f64 {
        o.metrics.iter().find(|(k, _)| k == name).unwrap().1
    }

    #[test]
    fn registered_with_clear_errors() {
        let s: Box<dyn Stage> = serde_saphyr::from_str(
            "type: dialogue_evaluator\nlabel: a\nnegatives: random\ngraph: false\n",
        )
        .unwrap();
        assert_eq!(s.steps(), 1);
        let bad: Result<Box<dyn Stage>, _> =
            serde_saphyr::from_str("type: dialogue_evaluator\nnegative: random\n");
        assert!(bad.unwrap_err().to_string().contains("negative"));
        let bad: Result<Box<dyn Stage>, _> =
            serde_saphyr::from_str("type: dialogue_evaluator\nnegatives: hard\n");
        assert!(bad.is_err());
        let d = parse_device("cpu").unwrap();
        let short = DialogueEvaluator {
            encoder: TinyGpt {
                context: 10,
                ..DialogueEvaluator::default().encoder
            },
            ..small(Negatives::Random, false)
        };
        let e = short
            .experiment(1, &d, |_, _| Ok(()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("encoder.context 10 is shorter"), "{e}");
    }

    #[test]
    fn encoding_puts_the_response_after_the_separator() {
        let tok = DialogueTokenizer::default();
        let set = DialogueFacts::default().generate(2).unwrap();
        let d = &set.test[0];
        let e = encode(&tok, d, &d.adversarial).unwrap();
        assert_eq!(
            tok.decode(&e.text),
            format!("{} | {}", d.context_text, d.adversarial.text)
        );
        assert_eq!(*e.text.last().unwrap(), tok.eos_id());
        assert!(!e.label && encode(&tok, d, &d.gold).unwrap().label);
        // 3 context facts × 5 symbols, then the marker
        assert_eq!(e.context_nodes, 15);
        assert_eq!(tok.decode(&e.graph[15..16]), "<response>");
    }

    #[test]
    fn seeded_runs_repeat_and_report_every_metric() {
        let d = parse_device("cpu").unwrap();
        let cfg = small(Negatives::RandomAdversarial, true);
        let a = cfg.experiment(5, &d, |_, _| Ok(())).unwrap();
        let b = cfg.experiment(5, &d, |_, _| Ok(())).unwrap();
        assert_eq!(a, b);
        for k in [
            "auroc_random",
            "auroc_adversarial",
            "auroc_swap",
            "auroc_negate",
            "acc_gold",
            "acc_random",
            "acc_adversarial",
            "gate_mean",
        ] {
            let v = metric(&a, k);
            assert!((0.0..=1.0).contains(&v), "{k} = {v}");
        }
        assert_eq!(
            a.losses.iter().map(|l| l.0).collect::<Vec<_>>(),
            vec![0, 10, 20, 29]
        );
        let t = small(Negatives::Random, false)
            .experiment(5, &d, |_, _| Ok(()))
            .unwrap();
        assert!(t.metrics.iter().all(|(k, _)| k != "gate_mean"));
    }

    /// Outcome and timing at the default size: `cargo test -p foil-rewards --
    /// --ignored --nocapture simamr_default_size` (env SIMAMR_STEPS, SIMAMR_SEED).
    #[test]
    #[ignore]
    fn simamr_default_size() {
        let d = parse_device("cpu").unwrap();
        let env = |k: &str, v: usize| {
            std::env::var(k)
                .ok()
                .and_then(|x| x.parse().ok())
                .unwrap_or(v)
        };
        for (neg, graph) in [
            (Negatives::Random, false),
            (Negatives::RandomAdversarial, false),
            (Negatives::RandomAdversarial, true),
        ] {
            let t = std::time::Instant::now();
            let cfg = DialogueEvaluator {
                negatives: neg,
                graph,
                steps: env("SIMAMR_STEPS", 600),
                ..DialogueEvaluator::default()
            };
            let o = cfg
                .experiment(env("SIMAMR_SEED", 1) as u64, &d, |_, _| Ok(()))
                .unwrap();
            eprintln!(
                "{neg:?} graph={graph} {:.1}s {:?} last loss {:?}",
                t.elapsed().as_secs_f64(),
                o.metrics
                    .iter()
                    .map(|(k, v)| format!("{k} {v:.3}"))
                    .collect::<Vec<_>>(),
                o.losses.last()
            );
        }
    }
}
