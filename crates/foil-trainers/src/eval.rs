//! `eval`: sample `n` completions per test problem and report unbiased pass@k (Chen et
//! al. 2021), maj@k, mean reward, accuracy and mean response length; with
//! `by_difficulty: true` also pass@k per difficulty label (`pass@1_d4`: problems of
//! difficulty 4, e.g. four operands) and the number of problems of each (`problems_d4`).
//! With a second verifier `process` (e.g. the exact step checker `steps`) it also reports,
//! on the same samples, `process_accuracy` (fraction of samples `process` accepts) and
//! `process_correct` (fraction of the samples `verifier` accepts that `process` accepts
//! too: correct answers whose steps are all correct, PROF's process-correctness; 0 when
//! no sample is correct).
//!
//! ```text
//! pass@k = E_x[ 1 − C(n − c, k) / C(n, k) ]      c = correct samples of x among n
//! maj@k  = E_x[ 1{ majority answer of the first k samples is correct } ]
//! ```

use foil_core::checkpoint::EvalRecord;
use foil_core::run::RunContext;
use foil_core::{Sampler, Stage, Verifier, register_part, rng};
use serde::{Deserialize, Serialize};

/// Recipe part: `{type: eval, label: after, k: [1, 8], sampler: {type: local, n: 8}}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Eval {
    /// Column name in the final table.
    pub label: String,
    /// Which problems: `test` or `train`.
    pub split: String,
    /// Evaluate only the first this many problems (0 = all).
    pub limit: usize,
    /// k values for pass@k and maj@k (each ≤ the sampler's n).
    pub k: Vec<usize>,
    pub sampler: Box<dyn Sampler>,
    pub verifier: Box<dyn Verifier>,
    /// Problems per sampling call.
    pub chunk: usize,
    /// Also report pass@k for each difficulty label (`pass@{k}_d{difficulty}`) and the
    /// number of problems with that label (`problems_d{difficulty}`).
    pub by_difficulty: bool,
    /// A second verifier judged on the same samples (`process_accuracy`, `process_correct`).
    pub process: Option<Box<dyn Verifier>>,
}

impl Default for Eval {
    fn default() -> Self {
        Self {
            label: "eval".into(),
            split: "test".into(),
            limit: 0,
            k: vec![1, 8],
            sampler: Box::new(foil_samplers::Local::default()),
            verifier: Box::new(foil_verifiers::Numeric::default()),
            chunk: 64,
            by_difficulty: false,
            process: None,
        }
    }
}

register_part!(
    Stage,
    "eval",
    Eval,
    "pass@k (unbiased, Chen et al. 2021), maj@k, mean reward and length on held-out problems"
);

#[typetag::serde(name = "eval")]
impl Stage for Eval {
    fn steps(&self) -> usize {
        1
    }

    fn run(&self, ctx: &mut RunContext, _start_step: usize) -> anyhow::Result<()> {
        self.verifier.prepare()?;
        if let Some(p) = &self.process {
            p.prepare()?;
        }
        let n = self.sampler.n();
        for &k in &self.k {
            anyhow::ensure!(
                (1..=n).contains(&k),
                "eval `{}`: k = {k} needs 1 ≤ k ≤ n = {n} samples per problem",
                self.label
            );
        }
        let problems = match self.split.as_str() {
            "test" => &ctx.task.test,
            "train" => &ctx.task.train,
            other => anyhow::bail!(
                "eval `{}`: split must be `test` or `train`, got `{other}`",
                self.label
            ),
        };
        let take = if self.limit == 0 {
            problems.len()
        } else {
            self.limit.min(problems.len())
        };
        let problems = problems[..take].to_vec();
        anyhow::ensure!(
            !problems.is_empty(),
            "eval `{}`: no problems to evaluate",
            self.label
        );
        let model = ctx.policy.inference();
        let tok = ctx.task.tokenizer.clone();
        let bar = ctx.bar(problems.len(), &format!("eval {}", self.label));
        let (mut pass, mut maj) = (vec![0.0; self.k.len()], vec![0.0; self.k.len()]);
        let (mut reward, mut correct, mut length, mut samples) = (0.0, 0.0, 0.0, 0.0);
        let (mut process_ok, mut both_ok) = (0.0, 0.0);
        // difficulty → (problems, pass@k sums)
        let mut by_difficulty: std::collections::BTreeMap<u32, (f64, Vec<f64>)> =
            Default::default();
        for (c, chunk) in problems.chunks(self.chunk.max(1)).enumerate() {
            let seed = rng::derive(ctx.seed, &[ctx.stage as u64, 0xE7A1, c as u64]);
            let groups = self
                .sampler
                .sample(model.as_ref(), tok.as_ref(), chunk, seed)?;
            for g in &groups {
                let verdicts: Vec<_> = g
                    .completions
                    .iter()
                    .map(|c| self.verifier.verify(&g.problem, &c.text))
                    .collect();
                let answers: Vec<Option<String>> = g
                    .completions
                    .iter()
                    .map(|c| self.verifier.extract(&c.text))
                    .collect();
                let answers: Vec<Option<&str>> = answers.iter().map(|a| a.as_deref()).collect();
                let nc = verdicts.iter().filter(|v| v.correct).count();
                let d = by_difficulty
                    .entry(g.problem.difficulty)
                    .or_insert_with(|| (0.0, vec![0.0; self.k.len()]));
                d.0 += 1.0;
                for (i, &k) in self.k.iter().enumerate() {
                    let p = foil_eval::pass_at_k(n, nc, k).unwrap_or(0.0);
                    pass[i] += p;
                    d.1[i] += p;
                    maj[i] += foil_eval::maj_at_k(&answers, &g.problem.answer, k).unwrap_or(0.0);
                }
                for (v, c) in verdicts.iter().zip(&g.completions) {
                    reward += v.reward as f64;
                    correct += v.correct as u8 as f64;
                    length += c.tokens.len() as f64;
                    samples += 1.0;
                    if let Some(p) = &self.process
                        && p.verify(&g.problem, &c.text).correct
                    {
                        process_ok += 1.0;
                        both_ok += v.correct as u8 as f64;
                    }
                }
            }
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
        let np = problems.len() as f64;
        let mut metrics = Vec::new();
        for (i, &k) in self.k.iter().enumerate() {
            metrics.push((format!("pass@{k}"), pass[i] / np));
        }
        for (i, &k) in self.k.iter().enumerate() {
            if k > 1 {
                metrics.push((format!("maj@{k}"), maj[i] / np));
            }
        }
        metrics.push(("accuracy".into(), correct / samples));
        metrics.push(("mean_reward".into(), reward / samples));
        metrics.push(("mean_length".into(), length / samples));
        metrics.push(("problems".into(), np));
        if self.process.is_some() {
            metrics.push(("process_accuracy".into(), process_ok / samples));
            let pc = if correct > 0.0 {
                both_ok / correct
            } else {
                0.0
            };
            metrics.push(("process_correct".into(), pc));
        }
        if self.by_difficulty {
            for (d, (count, sums)) in &by_difficulty {
                for (i, &k) in self.k.iter().enumerate() {
                    metrics.push((format!("pass@{k}_d{d}"), sums[i] / count));
                }
                metrics.push((format!("problems_d{d}"), *count));
            }
        }
        ctx.log(0, &metrics)?;
        if ctx.progress {
            let summary: Vec<String> = metrics.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
            eprintln!("eval {}: {}", self.label, summary.join(", "));
        }
        ctx.evals.push(EvalRecord {
            label: self.label.clone(),
            metrics,
        });
        ctx.end_step(0)?;
        Ok(())
    }
}
