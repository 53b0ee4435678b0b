//! `relmf`: one whole Rel-MF experiment as a recipe stage (Saito et al. 2020, "Unbiased
//! Recommender Learning from Missing-Not-At-Random Implicit Feedback", WSDM, DOI
//! 10.1145/3336191.3371783, arXiv 1909.03601 as recalled in `../shared/docs/methods.md` §19).
//!
//! 1. draw the MNAR click log ([`crate::data`]) from the run seed;
//! 2. estimate item propensities from its clicks, `θ̂_i = (n_i⁺ / max_j n_j⁺)^η`, and clip
//!    them, `s = clip(θ̂, M, 1)` ([`crate::propensity`]);
//! 3. train `ŷ = σ(u·v)` ([`crate::model`]) with Adam on the run's device (its autodiff
//!    wrapper) under the loss of [`crate::loss`], on minibatches of which half are clicked
//!    pairs and half unclicked ("unlabeled") pairs, drawn uniformly with replacement
//!    [code];
//! 4. evaluate DCG@K against the true relevance γ ([`crate::dcg`]) over all items and over
//!    rare items (at most `rare_clicks` training clicks), as an [`EvalRecord`] labelled
//!    `label` (a column of the run's eval table) and in `metrics.jsonl`.
//!
//! The log, the initial factors and the minibatch sequence depend only on the run seed
//! (and `data.seed`), not on the estimator or the stage's position, so `naive`, `ips` and
//! `clipped_ips` stages in one recipe are paired: they differ only in the loss weights.
//!
//! It does not use the run's language-model policy or task: the runner builds them (a
//! recipe needs both) and this stage ignores them. The stage is one step: an interrupted
//! run resumes by redoing the whole stage, which reproduces it exactly (all randomness is
//! seeded). Defaults [code] where the code has one (η = 0.5, Adam lr 0.005, λ = 1e-4,
//! K = 1, 3, 5), else ours [recon]: `dim` 32 (the code's 200 suits Yahoo! R3's size),
//! batch 1024, 2000 iterations, `M` = 0.1 (from the grid {0.01, 0.05, 0.1} of methods.md),
//! and λ = 1e-6: the penalty is on the whole factor matrices while a minibatch touches
//! each user's row about once, so the code's λ = 1e-4 at our batch size holds every
//! factor at zero (measured: every model stayed at a random ranking, loss 0.25).
//!
//! Besides DCG@K it reports `rare_share@K` (largest K): the mean fraction of a user's
//! top-K over all items that are rare items, where popularity bias shows directly.

use burn::module::AutodiffModule;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::{Int, Tensor, TensorData};
use foil_core::backend::{B as FB, train_device};
use foil_core::checkpoint::EvalRecord;
use foil_core::run::RunContext;
use foil_core::{Stage, register_part, rng};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::data::{ClickLog, Mnar};
use crate::dcg::mean_dcg;
use crate::loss::{Estimator, l2_penalty, pointwise, weights};
use crate::model::Mf;
use crate::propensity;

/// Random-stream purposes (under the run seed).
const DATA: u64 = 0x5EC5_DA7A;
const INIT: u64 = 0x5EC5_1417;
const BATCH: u64 = 0x5EC5_BA7C;

/// Recipe part: `{type: relmf, label: clipped_ips, estimator: clipped_ips, clip: 0.1}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RelMf {
    /// Column name in the eval table.
    pub label: String,
    /// `naive`, `ips` (M = 0) or `clipped_ips`.
    pub estimator: Estimator,
    /// The propensity floor `M` of `clipped_ips`.
    pub clip: f64,
    /// `η` in `θ̂ = (n / max n)^η`.
    pub propensity_power: f64,
    /// The synthetic click log.
    pub data: Mnar,
    /// Factor dimension of the model.
    pub dim: usize,
    /// Standard deviation of the initial factors.
    pub init_std: f64,
    /// Adam learning rate.
    pub lr: f64,
    /// `λ` of the L2 penalty.
    pub lambda: f64,
    /// Pairs per minibatch (half clicked, half unclicked).
    pub batch: usize,
    pub iterations: usize,
    /// Cut-offs of DCG@K.
    pub k: Vec<usize>,
    /// Items with at most this many training clicks are "rare".
    pub rare_clicks: usize,
    /// Log the training loss every this many iterations (0: never).
    pub log_every: usize,
}

impl Default for RelMf {
    fn default() -> Self {
        Self {
            label: "relmf".into(),
            estimator: Estimator::ClippedIps,
            clip: 0.1,
            propensity_power: 0.5,
            data: Mnar::default(),
            dim: 32,
            init_std: 0.1,
            lr: 0.005,
            lambda: 1e-6,
            batch: 1024,
            iterations: 2000,
            k: vec![1, 3, 5],
            rare_clicks: 100,
            log_every: 100,
        }
    }
}

register_part!(
    Stage,
    "relmf",
    RelMf,
    "example plugin: Rel-MF (Saito et al. 2020), matrix factorisation from MNAR clicks with a naive / IPS / clipped-IPS loss, DCG@K on all and rare items"
);

/// What one experiment measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Metric name → value, as recorded in the eval table.
    pub metrics: Vec<(String, f64)>,
    /// `(iteration, loss)` every `log_every` iterations and at the end.
    pub losses: Vec<(usize, f64)>,
}

impl RelMf {
    fn validate(&self) -> anyhow::Result<()> {
        self.data.validate()?;
        anyhow::ensure!(
            self.batch >= 2 && self.iterations >= 1,
            "relmf `{}`: need batch ≥ 2 and iterations ≥ 1, got {} and {}",
            self.label,
            self.batch,
            self.iterations
        );
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.clip),
            "relmf `{}`: clip M must be in [0, 1], got {}",
            self.label,
            self.clip
        );
        anyhow::ensure!(
            self.propensity_power.is_finite() && self.propensity_power > 0.0,
            "relmf `{}`: propensity_power must be > 0, got {}",
            self.label,
            self.propensity_power
        );
        anyhow::ensure!(
            self.lr > 0.0 && self.lambda >= 0.0,
            "relmf `{}`: need lr > 0 and lambda ≥ 0, got {} and {}",
            self.label,
            self.lr,
            self.lambda
        );
        anyhow::ensure!(
            !self.k.is_empty() && self.k.iter().all(|&k| k >= 1),
            "relmf `{}`: k must list cut-offs ≥ 1, got {:?}",
            self.label,
            self.k
        );
        Ok(())
    }

    /// The click log of run seed `seed`.
    pub fn log(&self, seed: u64) -> anyhow::Result<ClickLog> {
        self.data
            .generate(&mut rng::rng(seed, &[DATA, self.data.seed]))
    }

    /// Runs the experiment on `device` (its autodiff wrapper trains) from run seed `seed`.
    pub fn experiment(
        &self,
        seed: u64,
        device: &foil_core::backend::Device,
        mut on_loss: impl FnMut(usize, f64) -> anyhow::Result<()>,
    ) -> anyhow::Result<Outcome> {
        self.validate()?;
        let log = self.log(seed)?;
        let (n_u, n_i) = (log.users, log.items);
        let clicks = log.item_clicks();
        let s = match self.estimator.floor(self.clip) {
            None => vec![1.0; n_i],
            Some(m) => propensity::clip(&propensity::estimate(&clicks, self.propensity_power), m),
        };
        let (pos, unl) = log.split_pairs();
        anyhow::ensure!(
            !pos.is_empty() && !unl.is_empty(),
            "relmf `{}`: the log needs clicked and unclicked pairs (got {} and {})",
            self.label,
            pos.len(),
            unl.len()
        );
        let train = train_device(device);
        let mut model = Mf::<FB>::init(
            n_u,
            n_i,
            self.dim,
            self.init_std,
            &mut rng::rng(seed, &[INIT]),
            &train,
        )?;
        let mut optim = AdamConfig::new().init::<FB, Mf<FB>>();
        let mut batches = rng::rng(seed, &[BATCH]);
        let half = self.batch / 2;
        let mut losses = Vec::new();
        for it in 0..self.iterations {
            let mut us = Vec::with_capacity(self.batch);
            let mut is = Vec::with_capacity(self.batch);
            let mut clicked = Vec::with_capacity(self.batch);
            let mut ss = Vec::with_capacity(self.batch);
            for b in 0..self.batch {
                let (from, y) = if b < half {
                    (&pos, true)
                } else {
                    (&unl, false)
                };
                let (u, i) = from[batches.random_range(0..from.len())];
                us.push(u as i64);
                is.push(i as i64);
                clicked.push(y);
                ss.push(s[i]);
            }
            let n = self.batch;
            let idx =
                |v: Vec<i64>| Tensor::<FB, 1, Int>::from_data(TensorData::new(v, [n]), &train);
            let w =
                Tensor::<FB, 1>::from_data(TensorData::new(weights(&clicked, &ss), [n]), &train);
            let pred = model.predict(idx(us), idx(is));
            let loss = pointwise(pred, w) + l2_penalty(model.squared_norm(), self.lambda);
            let last = it + 1 == self.iterations;
            if last || (self.log_every > 0 && it % self.log_every == 0) {
                let v = loss.clone().into_data().to_vec::<f32>()?[0] as f64;
                anyhow::ensure!(
                    v.is_finite(),
                    "relmf `{}`: non-finite loss {v} at iteration {it}",
                    self.label
                );
                losses.push((it, v));
                on_loss(it, v)?;
            }
            let grads = GradientsParams::from_grads::<FB, _>(loss.backward(), &model);
            model = optim.step(self.lr, model, grads);
        }
        let scores: Vec<f32> = model.valid().scores().into_data().to_vec()?;
        let all: Vec<usize> = (0..n_i).collect();
        let rare: Vec<usize> = (0..n_i)
            .filter(|&i| clicks[i] <= self.rare_clicks)
            .collect();
        let mut metrics = Vec::new();
        for (k, v) in self
            .k
            .iter()
            .zip(mean_dcg(&scores, &log.relevance, n_i, &all, &self.k))
        {
            metrics.push((format!("dcg@{k}"), v));
        }
        if !rare.is_empty() {
            for (k, v) in self
                .k
                .iter()
                .zip(mean_dcg(&scores, &log.relevance, n_i, &rare, &self.k))
            {
                metrics.push((format!("rare_dcg@{k}"), v));
            }
        }
        // how many of each user's top-K over all items are rare (popularity bias shows here)
        let top = *self.k.iter().max().expect("validated: k is not empty");
        let is_rare: Vec<bool> = (0..n_i).map(|i| clicks[i] <= self.rare_clicks).collect();
        metrics.push((
            format!("rare_share@{top}"),
            rare_share(&scores, n_i, &is_rare, top),
        ));
        metrics.push(("rare_items".into(), rare.len() as f64));
        metrics.push(("clicks".into(), pos.len() as f64));
        Ok(Outcome { metrics, losses })
    }
}

/// Mean over users of the fraction of their top-`k` items (by score, all items) that are
/// rare.
pub fn rare_share(scores: &[f32], items: usize, is_rare: &[bool], k: usize) -> f64 {
    let users = scores.len() / items.max(1);
    let all: Vec<usize> = (0..items).collect();
    let k = k.min(items).max(1);
    let mut sum = 0.0;
    for u in 0..users {
        let s = &scores[u * items..(u + 1) * items];
        let mut order = all.clone();
        order.sort_by(|&a, &b| s[b].total_cmp(&s[a]));
        sum += order[..k].iter().filter(|&&i| is_rare[i]).count() as f64 / k as f64;
    }
    sum / users.max(1) as f64
}

#[typetag::serde(name = "relmf")]
impl Stage for RelMf {
    fn steps(&self) -> usize {
        1
    }

    fn run(&self, ctx: &mut RunContext, _start_step: usize) -> anyhow::Result<()> {
        let device = ctx.device.clone();
        let bar = ctx.bar(self.iterations, &format!("relmf {}", self.label));
        let mut logged = Vec::new();
        let out = self.experiment(ctx.seed, &device, |it, loss| {
            bar.set_position(it as u64);
            logged.push((it, loss));
            Ok(())
        })?;
        bar.finish_and_clear();
        for (it, loss) in logged {
            ctx.log(0, &[("iteration".into(), it as f64), ("loss".into(), loss)])?;
        }
        ctx.log(0, &out.metrics)?;
        if ctx.progress {
            eprintln!(
                "relmf {}: {}",
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

    fn small(estimator: Estimator) -> RelMf {
        RelMf {
            estimator,
            data: Mnar {
                users: 200,
                items: 60,
                ..Mnar::default()
            },
            dim: 8,
            batch: 256,
            iterations: 150,
            rare_clicks: 10,
            log_every: 50,
            ..RelMf::default()
        }
    }

    fn metric(o: &Outcome, name: &str) -> f64 {
        o.metrics.iter().find(|(k, _)| k == name).unwrap().1
    }

    #[test]
    fn rare_share_by_hand() {
        // 2 users × 3 items, item 2 rare; top-2 of user 0 = {2, 0} → 1/2; user 1 = {0, 1} → 0
        let scores = [0.5, 0.1, 0.9, 0.8, 0.7, 0.2];
        let r = rare_share(&scores, 3, &[false, false, true], 2);
        assert!((r - 0.25).abs() < 1e-12);
    }

    #[test]
    fn registered_by_linking_with_clear_errors() {
        let s: Box<dyn Stage> = serde_saphyr::from_str(
            "type: relmf\nlabel: naive\nestimator: naive\ndata: {users: 10, items: 5}\n",
        )
        .unwrap();
        assert_eq!(s.steps(), 1);
        assert!(foil_core::registry::names_of("Stage").contains(&"relmf"));
        let bad: Result<Box<dyn Stage>, _> = serde_saphyr::from_str("type: relmf\nclipp: 0.1\n");
        assert!(bad.unwrap_err().to_string().contains("clipp"));
        let bad: Result<Box<dyn Stage>, _> =
            serde_saphyr::from_str("type: relmf\nestimator: snips\n");
        assert!(bad.is_err());
        // a clip floor outside [0, 1] is refused before anything is drawn
        let e = RelMf {
            clip: 1.5,
            ..small(Estimator::ClippedIps)
        }
        .experiment(1, &parse_device("cpu").unwrap(), |_, _| Ok(()))
        .unwrap_err();
        assert!(e.to_string().contains("clip M must be in [0, 1]"), "{e}");
    }

    #[test]
    fn seeded_runs_repeat_exactly_and_beat_a_random_ranking() {
        let d = parse_device("cpu").unwrap();
        let cfg = small(Estimator::ClippedIps);
        let a = cfg.experiment(4, &d, |_, _| Ok(())).unwrap();
        let b = cfg.experiment(4, &d, |_, _| Ok(())).unwrap();
        assert_eq!(a, b);
        // a random ranking's expected DCG@5 is mean(γ) · Σ_{r=1..5} 1/log2(r + 1)
        let log = cfg.log(4).unwrap();
        let mean_gamma = log.relevance.iter().sum::<f64>() / log.relevance.len() as f64;
        let random5 = mean_gamma * (1..=5).map(|r| 1.0 / ((r + 1) as f64).log2()).sum::<f64>();
        assert!(
            metric(&a, "dcg@5") > random5 + 0.1,
            "{} vs random {random5}",
            metric(&a, "dcg@5")
        );
        // the loss was logged at iterations 0, 50, 100 and the last one (149)
        let its: Vec<usize> = a.losses.iter().map(|l| l.0).collect();
        assert_eq!(its, vec![0, 50, 100, 149]);
        // the three estimators share the data: same clicks and rare items, different models
        let n = small(Estimator::Naive)
            .experiment(4, &d, |_, _| Ok(()))
            .unwrap();
        assert_eq!(metric(&n, "clicks"), metric(&a, "clicks"));
        assert_eq!(metric(&n, "rare_items"), metric(&a, "rare_items"));
        assert_ne!(metric(&n, "dcg@5"), metric(&a, "dcg@5"));
    }

    /// Timing and outcome at the default size: `cargo test -p foil-plugin-recsys --
    /// --ignored --nocapture default_size`.
    #[test]
    #[ignore]
    fn default_size() {
        let d = parse_device("cpu").unwrap();
        for e in [Estimator::Naive, Estimator::Ips, Estimator::ClippedIps] {
            let t = std::time::Instant::now();
            let env = |k: &str, d: f64| {
                std::env::var(k)
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(d)
            };
            let o = RelMf {
                estimator: e,
                iterations: env("RELMF_ITERS", 2000.0) as usize,
                lr: env("RELMF_LR", 0.005),
                dim: env("RELMF_DIM", 32.0) as usize,
                batch: env("RELMF_BATCH", 1024.0) as usize,
                lambda: env("RELMF_LAMBDA", 1e-6),
                ..RelMf::default()
            }
            .experiment(1, &d, |_, _| Ok(()))
            .unwrap();
            eprintln!(
                "{e:?} {:.1}s {:?} {:?}",
                t.elapsed().as_secs_f64(),
                o.metrics,
                o.losses.last()
            );
        }
    }
}
