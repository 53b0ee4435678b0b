//! `per_step_vs_rft`: per-step negatives vs rejection-sampling fine-tuning.
//!
//! **Claim** (Setlur et al. 2024, "RL on Incorrect Synthetic Data Scales the Efficiency of
//! LLM Math Reasoning by Eight-Fold", arXiv 2406.14532; `../shared/docs/methods.md` §1):
//! per-step negatives (first-pit DPO pairs, equivalently advantage-weighted RL with step
//! advantages from Monte Carlo rollouts) beat RFT on the same number of synthetic problems,
//! and match RFT trained on several times more (the paper reports eight).
//!
//! **Setting.** T0 as in `recipes/quickstart.yaml` (chain arithmetic mod 10, 2–3 operands,
//! 106k-parameter GPT, SFT 300 steps on demonstrations half of which take a shortcut). From
//! one SFT checkpoint per seed, four arms: RFT on N = 250 problems (`recipes/rft.yaml`: 4
//! samples per problem from π_sft, correct ones kept, 100 SFT steps of 64), RFT on 8N = 2000
//! problems (`--set stages.2.problems=2000`, same steps), per-step DPO on the same N
//! problems (`recipes/per_step_dpo.yaml`: 40 steps of 8 problems × 8 samples, M = 4
//! continuations per step prefix, Best-of-5 values, first-pit pairs, β = 0.1) and per-step
//! AWR on N (`recipes/per_step_awr.yaml`: the same rollouts, token credit = step advantage,
//! PPO-clip). Evaluation: 200 held-out problems × 8 samples at T = 1, pass@1 (unbiased)
//! after each arm. Seeds 1–3.
//!
//! **Acceptance rule** (fixed before any run; differences paired by seed, [`crate::rules`]):
//! 1. per-step DPO beats RFT at N: `raises` on pass@1(DPO) − pass@1(RFT N);
//! 2. per-step DPO matches RFT at 8N: `at_least` (mean ≥ −0.02) on pass@1(DPO) − pass@1(RFT 8N).
//!
//! The same two comparisons for per-step AWR are reported without gating (the claim is
//! the DPO form's; AWR is the equivalent form the paper's theory names).
//!
//! **`--quick`** (mechanism, one seed, SFT cut to 150 steps so that samples are partly
//! correct): on real samples of the SFT policy, (a) step values from one batched call of the
//! rollout machinery equal a brute-force recomputation that rolls out every prefix on its
//! own (greedy continuations, K = 1, so exact), and the first-pit pairs built from them cut
//! each negative where a direct scan of the values says; (b) one DPO step on the first-pit
//! pairs of real samples (M = 4, Best-of-5) raises the mean DPO margin `β(h⁺ − h⁻)` above 0
//! (it is 0 at the reference). Reported, not gating: the step advantage of a spurious
//! `v+0=v|` step inserted into reference solutions (expected ≈ 0) next to that of an
//! injected wrong step (expected < 0), from 16 sampled continuations per prefix.
//!
//! **Measured**: see `docs/reproductions.md`.

use anyhow::Context;
use foil_core::backend::parse_device;
use foil_core::batch::{HostPolicyBatch, to_vec, token_logprobs};
use foil_core::policy::Policy;
use foil_core::recipe::Recipe;
use foil_core::{Objective, PolicyOutput, Problem, Sampler, Verifier, checkpoint, rng};
use foil_trainers::per_step_pairs::{Scored, first_pit_pairs};
use foil_trainers::per_step_values::{Response, mc_step_values, split_steps};
use foil_trainers::{RunOptions, run as run_recipe};
use serde_json::json;

use crate::Options;
use crate::arms::{Arm, ArmRun, run_arms};
use crate::report::{Report, md_table};
use crate::rules::{Check, TOL, all_positive, at_least, raises};
use crate::stats::{Summary, diff};

pub const NAME: &str = "per_step_vs_rft";
pub const ABOUT: &str = "per-step negatives (first-pit DPO) beat RFT on the same N synthetic \
     problems and match RFT on 8N (Setlur et al. 2024)";

/// The problem budget N.
pub const N: usize = 250;

/// The arms of the full run.
pub fn arms(opts: &Options) -> Vec<Arm> {
    let mut rft8 = Arm::new("RFT 8N", opts.recipe("rft.yaml"));
    rft8.overrides.push(format!("stages.2.problems={}", 8 * N));
    vec![
        Arm::new("RFT N", opts.recipe("rft.yaml")),
        rft8,
        Arm::new("per-step DPO N", opts.recipe("per_step_dpo.yaml")),
        Arm::new("per-step AWR N", opts.recipe("per_step_awr.yaml")),
    ]
}

fn values(runs: &[ArmRun], label: &str) -> anyhow::Result<Vec<f64>> {
    runs.iter()
        .filter(|r| r.label == label)
        .map(|r| r.metric("after", "pass@1"))
        .collect()
}

/// The acceptance rule on finished runs (see the module docs).
pub fn checks(runs: &[ArmRun]) -> anyhow::Result<Vec<Check>> {
    let (rn, r8) = (values(runs, "RFT N")?, values(runs, "RFT 8N")?);
    let mut c = Vec::new();
    for (arm, gating) in [("per-step DPO N", true), ("per-step AWR N", false)] {
        let v = values(runs, arm)?;
        let beat = raises(
            &format!("{arm} beats RFT N at pass@1 (paired by seed)"),
            &diff(&v, &rn),
        );
        let matched = at_least(
            &format!("{arm} matches RFT 8N at pass@1 (paired by seed)"),
            &diff(&v, &r8),
            TOL,
        );
        if gating {
            c.extend([beat, matched]);
        } else {
            c.extend([beat.reported(), matched.reported()]);
        }
    }
    Ok(c)
}

fn table(runs: &[ArmRun], labels: &[String], seeds: &[u64]) -> anyhow::Result<String> {
    let before: Vec<f64> = runs
        .iter()
        .filter(|r| r.label == labels[0])
        .map(|r| r.metric("before", "pass@1"))
        .collect::<anyhow::Result<_>>()?;
    let mut rows = vec![vec![
        "SFT (before)".to_string(),
        Summary::of(&before).mean_std(),
        before
            .iter()
            .map(|v| format!("{v:.4}"))
            .collect::<Vec<_>>()
            .join(", "),
    ]];
    for l in labels {
        let v = values(runs, l)?;
        rows.push(vec![
            l.clone(),
            Summary::of(&v).mean_std(),
            v.iter()
                .map(|v| format!("{v:.4}"))
                .collect::<Vec<_>>()
                .join(", "),
        ]);
    }
    let s: Vec<String> = seeds.iter().map(|s| s.to_string()).collect();
    let h = format!("pass@1 per seed ({})", s.join(", "));
    Ok(format!(
        "## Held-out pass@1 after each arm (mean ± std over seeds)\n\n{}\n",
        md_table(&["arm", "pass@1", &h], &rows)
    ))
}

/// What the quick mechanism check measured.
struct Mechanism {
    sections: Vec<String>,
    checks: Vec<Check>,
}

/// The quick version (see the module docs).
fn mechanism(opts: &Options, seed: u64) -> anyhow::Result<Mechanism> {
    const SFT_STEPS: usize = 150;
    let dir = opts.dir(NAME).join("runs").join(format!("seed{seed}"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    let recipe_path = opts.recipe("per_step_dpo.yaml");
    let set = vec![
        format!("seed={seed}"),
        format!("stages.0.steps={SFT_STEPS}"),
    ];
    run_recipe(
        Some(&recipe_path),
        &RunOptions {
            overrides: set.clone(),
            run_dir: Some(dir.clone()),
            stop_after: Some(SFT_STEPS),
            ..Default::default()
        },
    )
    .context("quick: the SFT warm-up")?;
    let recipe = Recipe::load(&recipe_path, &set)?;
    let stage = serde_json::to_value(&recipe.stages[2])?;
    let sampler: Box<dyn Sampler> = serde_json::from_value(stage["sampler"].clone())?;
    let rollout: Box<dyn Sampler> = serde_json::from_value(stage["rollout_sampler"].clone())?;
    let verifier: Box<dyn Verifier> = serde_json::from_value(stage["verifier"].clone())?;
    let dpo: Box<dyn Objective> = serde_json::from_value(stage["objective"].clone())?;
    let beta = stage["objective"]["beta"].as_f64().unwrap_or(0.1);
    let sep = stage["separator"].as_str().unwrap_or("|").to_string();
    let task = recipe.task.build(seed)?;
    let tok = task.tokenizer.clone();
    let device = parse_device("cpu")?;
    let mut policy: Box<dyn Policy> = recipe.policy.build(tok.vocab_size(), &device, seed)?;
    let (ckpt, _) = checkpoint::latest(&dir)?.context("quick: no SFT checkpoint")?;
    policy.load(&ckpt)?;
    let model = policy.inference();
    let problems: Vec<Problem> = task.train[..8].to_vec();
    let groups = sampler.sample(
        model.as_ref(),
        tok.as_ref(),
        &problems,
        rng::derive(seed, &[1]),
    )?;

    // (a) batched values vs brute force, greedy continuations, K = 1
    let greedy: Box<dyn Sampler> = serde_json::from_value(
        json!({"type": "local", "n": 1, "temperature": 0.0, "max_tokens": 32}),
    )?;
    let mut responses = Vec::new();
    let mut verdicts = Vec::new();
    for g in &groups {
        let v: Vec<bool> = g
            .completions
            .iter()
            .map(|c| verifier.verify(&g.problem, &c.text).correct)
            .collect();
        for (c, &ok) in g.completions.iter().zip(&v) {
            if !ok {
                responses.push(Response {
                    problem: &g.problem,
                    text: &c.text,
                    correct: false,
                });
            }
        }
        verdicts.push(v);
    }
    let (vals, count) = mc_step_values(
        model.as_ref(),
        tok.as_ref(),
        greedy.as_ref(),
        verifier.as_ref(),
        &responses,
        &sep,
        1,
        7,
    )?;
    let mut mismatches = 0usize;
    let mut compared = 0usize;
    for (r, v) in responses.iter().zip(&vals) {
        let steps = split_steps(r.text, &sep);
        for i in 0..steps.len() {
            let prefix: String = steps[..i].concat();
            let p = Problem {
                prompt: format!("{}{prefix}", r.problem.prompt),
                ..r.problem.clone()
            };
            let g = greedy.sample(model.as_ref(), tok.as_ref(), &[p], 99)?;
            let text = format!("{prefix}{}", g[0].completions[0].text);
            let q = verifier.verify(r.problem, &text).correct as u8 as f64;
            compared += 1;
            mismatches += (q != v.q[i]) as usize;
        }
        // the finished incorrect response has value 0
        if !steps.is_empty() {
            compared += 1;
            mismatches += (v.q[steps.len()] != 0.0) as usize;
        }
    }
    // first-pit pairs vs a direct scan of the values
    let mut pit_mismatch = 0usize;
    let mut pairs_checked = 0usize;
    let mut vi = 0;
    for (gi, g) in groups.iter().enumerate() {
        let mut scored = Vec::new();
        let mut own = Vec::new();
        for (c, &ok) in g.completions.iter().zip(&verdicts[gi]) {
            let v = if ok {
                None
            } else {
                vi += 1;
                Some(&vals[vi - 1])
            };
            if let Some(v) = v {
                own.push((c, v));
            }
            scored.push(Scored {
                completion: c,
                correct: ok,
                values: v,
            });
        }
        let pairs = first_pit_pairs(gi, &g.problem, &scored, tok.as_ref(), 8, false)?;
        for (p, (c, v)) in pairs.iter().zip(&own) {
            let lowest = v.q[1..].iter().cloned().fold(f64::INFINITY, f64::min);
            let pit = (1..v.q.len()).find(|&i| v.q[i] == lowest).unwrap_or(0);
            let want = if pit == v.len() {
                c.tokens.clone()
            } else {
                tok.encode(&v.steps[..pit].concat())?
            };
            pairs_checked += 1;
            pit_mismatch += (p.pit != pit || p.rejected != want) as usize;
        }
    }
    let mut checks = vec![
        crate::rules::all_zero(
            &format!(
                "batched step values (one call, {} shared prefixes) equal per-prefix \
                 brute force ({compared} values): mismatches",
                count.prefixes
            ),
            &[mismatches as f64],
        ),
        crate::rules::all_zero(
            &format!("first-pit cuts equal a direct scan ({pairs_checked} pairs): mismatches"),
            &[pit_mismatch as f64 + if pairs_checked == 0 { 1.0 } else { 0.0 }],
        ),
    ];

    // (b) one DPO step on real first-pit pairs raises the margin
    let (vals, _) = mc_step_values(
        model.as_ref(),
        tok.as_ref(),
        rollout.as_ref(),
        verifier.as_ref(),
        &responses,
        &sep,
        5,
        11,
    )?;
    let mut rows: Vec<(Vec<u32>, Vec<u32>)> = Vec::new();
    let mut vi = 0;
    for (gi, g) in groups.iter().enumerate() {
        let scored: Vec<Scored> = g
            .completions
            .iter()
            .zip(&verdicts[gi])
            .map(|(c, &ok)| Scored {
                completion: c,
                correct: ok,
                values: if ok {
                    None
                } else {
                    vi += 1;
                    Some(&vals[vi - 1])
                },
            })
            .collect();
        let prompt = tok.encode_prompt(&g.problem.prompt)?;
        for p in first_pit_pairs(gi, &g.problem, &scored, tok.as_ref(), 8, false)? {
            rows.push((prompt.clone(), p.chosen));
            rows.push((prompt.clone(), p.rejected));
        }
    }
    anyhow::ensure!(
        !rows.is_empty(),
        "quick: no first-pit pair among the samples"
    );
    let packed: Vec<(&[u32], &[u32], Vec<f32>)> = rows
        .iter()
        .map(|(p, y)| (p.as_slice(), y.as_slice(), vec![0.0; y.len()]))
        .collect();
    let host = HostPolicyBatch::new(&packed, tok.pad_id());
    let mut batch = host.to_device(&policy.device(), 32);
    let reference = policy.inference();
    let lp = |m: &dyn foil_core::policy::InferenceModel| -> Vec<f32> {
        let input = host.seqs.to_input(&m.device());
        let targets = input.tokens.clone().slice([0..host.seqs.n, 1..host.seqs.t]);
        to_vec(m.token_logprobs(&input, targets))
    };
    let ref_lp = lp(reference.as_ref());
    batch.ref_logprobs = Some(burn::tensor::Tensor::from_data(
        burn::tensor::TensorData::new(ref_lp.clone(), [batch.n, batch.width]),
        &batch.mask.device(),
    ));
    let margin = |new: &[f32]| -> f64 {
        let w = batch.width;
        let h: Vec<f64> = (0..batch.n)
            .map(|i| {
                (0..w)
                    .map(|t| ((new[i * w + t] - ref_lp[i * w + t]) * host.mask[i * w + t]) as f64)
                    .sum()
            })
            .collect();
        h.chunks(2).map(|p| beta * (p[0] - p[1])).sum::<f64>() / (h.len() / 2) as f64
    };
    let before = margin(&ref_lp);
    let opt = foil_core::policy::OptimizerConfig::adamw(1e-3);
    policy.reset_optimizer(&opt);
    let logits = policy.forward(&batch.input);
    let logprobs = token_logprobs(logits, batch.targets.clone());
    let loss = dpo.loss(
        &batch,
        &PolicyOutput {
            logprobs,
            entropy: None,
        },
    )?;
    policy.step(loss.value, 1e-3)?;
    let after = margin(&lp(policy.inference().as_ref()));
    checks.push(all_positive(
        &format!(
            "one DPO step (lr 1e-3) on {} real first-pit pairs raises the mean margin \
             β(h⁺ − h⁻) from {before:.4}",
            rows.len() / 2
        ),
        &[after - before],
    ));

    // reported: a spurious `v+0=v|` step vs an injected wrong step
    let wide: Box<dyn Sampler> = serde_json::from_value(
        json!({"type": "local", "n": 16, "temperature": 1.0, "max_tokens": 32}),
    )?;
    let mut spurious = Vec::new();
    let mut wrong = Vec::new();
    let cases: Vec<&Problem> = task
        .test
        .iter()
        .filter(|p| split_steps(&p.solution, &sep).len() >= 3)
        .take(16)
        .collect();
    let mut texts: Vec<(usize, String)> = Vec::new();
    for (i, p) in cases.iter().enumerate() {
        let steps = split_steps(&p.solution, &sep);
        let v = steps[0]
            .trim_end_matches(sep.as_str())
            .rsplit('=')
            .next()
            .unwrap_or("0")
            .to_string();
        let w = ((v.parse::<i64>().unwrap_or(0) + 3) % 10).to_string();
        // responses: s1 ∘ spurious ∘ rest, s1 ∘ wrong ∘ (nothing): values at i = 1, 2
        texts.push((
            i,
            format!("{}{v}+0={v}{sep}{}", steps[0], steps[1..].concat()),
        ));
        texts.push((
            i,
            format!("{}{v}+0={w}{sep}{}", steps[0], steps[1..].concat()),
        ));
    }
    let resp: Vec<Response> = texts
        .iter()
        .map(|(i, t)| Response {
            problem: cases[*i],
            text: t,
            correct: false,
        })
        .collect();
    let (vals, _) = mc_step_values(
        policy.inference().as_ref(),
        tok.as_ref(),
        wide.as_ref(),
        verifier.as_ref(),
        &resp,
        &sep,
        1,
        13,
    )?;
    for (k, v) in vals.iter().enumerate() {
        let a = v.q[2] - v.q[1];
        if k % 2 == 0 {
            spurious.push(a);
        } else {
            wrong.push(a);
        }
    }
    let ms = Summary::of(&spurious);
    let mw = Summary::of(&wrong);
    checks.push(
        crate::rules::keeps_or_raises(
            "a spurious `v+0=v` step has ≈ 0 advantage (not below −0.02 on average)",
            &spurious,
            TOL,
        )
        .reported(),
    );
    checks.push(
        crate::rules::all_negative(
            "an injected wrong `v+0=w` step has negative advantage (mean)",
            &[mw.mean],
        )
        .reported(),
    );
    let sections = vec![format!(
        "## Mechanism (seed {seed}, SFT {SFT_STEPS} steps, 8 problems × {} samples)\n\n{}\n",
        sampler.n(),
        md_table(
            &["measure", "value"],
            &[
                vec![
                    "step values compared with brute force (greedy, K = 1)".into(),
                    format!("{compared}, {mismatches} mismatches"),
                ],
                vec![
                    "first-pit pairs compared with a direct scan".into(),
                    format!("{pairs_checked}, {pit_mismatch} mismatches"),
                ],
                vec![
                    "DPO margin β(h⁺ − h⁻) before → after one step".into(),
                    format!("{before:.4} → {after:.4} ({} pairs)", rows.len() / 2),
                ],
                vec![
                    "advantage of a spurious `v+0=v` step (16 problems, M = 16, K = 1)".into(),
                    ms.mean_std(),
                ],
                vec![
                    "advantage of an injected wrong `v+0=w` step".into(),
                    mw.mean_std(),
                ],
            ]
        )
    )];
    Ok(Mechanism { sections, checks })
}

/// Runs the reproduction (see the module docs).
pub fn run(opts: &Options) -> anyhow::Result<Report> {
    let dir = opts.dir(NAME);
    if opts.quick {
        let seeds = opts.seed_list(1, 1);
        let m = mechanism(opts, seeds[0])?;
        return Ok(Report {
            name: NAME.into(),
            claim: ABOUT.into(),
            command: opts.command(NAME),
            quick: true,
            seeds,
            sections: m.sections,
            checks: m.checks,
            plot: None,
            wall_s: 0.0,
            data: json!({}),
        });
    }
    let seeds = opts.seed_list(3, 1);
    let arms = arms(opts);
    let labels: Vec<String> = arms.iter().map(|a| a.label.clone()).collect();
    let mut runs = Vec::new();
    for &seed in &seeds {
        runs.extend(
            run_arms(
                &arms,
                &[],
                seed,
                &dir.join("runs").join(format!("seed{seed}")),
                opts.progress,
            )
            .with_context(|| format!("{NAME}, seed {seed}"))?,
        );
    }
    let checks = checks(&runs)?;
    Ok(Report {
        name: NAME.into(),
        claim: ABOUT.into(),
        command: opts.command(NAME),
        quick: false,
        seeds: seeds.clone(),
        sections: vec![table(&runs, &labels, &seeds)?],
        checks,
        plot: None,
        wall_s: 0.0,
        data: json!({
            "n": N,
            "runs": crate::arms::runs_json(&runs),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use foil_core::checkpoint::EvalRecord;

    fn arm(label: &str, seed: u64, after: f64) -> ArmRun {
        let rec = |l: &str, v: f64| EvalRecord {
            label: l.into(),
            metrics: vec![("pass@1".into(), v)],
        };
        ArmRun {
            label: label.into(),
            seed,
            dir: "x".into(),
            evals: vec![rec("before", 0.25), rec("after", after)],
        }
    }

    fn runs(dpo: [f64; 3]) -> Vec<ArmRun> {
        let mut r = Vec::new();
        for s in 1..=3u64 {
            let i = (s - 1) as usize;
            r.push(arm("RFT N", s, 0.30));
            r.push(arm("RFT 8N", s, 0.36));
            r.push(arm("per-step DPO N", s, dpo[i]));
            r.push(arm("per-step AWR N", s, 0.31));
        }
        r
    }

    #[test]
    fn dpo_above_rft_n_and_near_rft_8n_holds() {
        // DPO − RFT N = 0.06, 0.05, 0.07 (raises); DPO − RFT 8N = 0, −0.01, +0.01 (≥ −0.02)
        let c = checks(&runs([0.36, 0.35, 0.37])).unwrap();
        assert_eq!(c.len(), 4);
        assert!(c[0].holds && c[1].holds, "{c:#?}");
        // AWR: 0.31 − 0.30 = +0.01 every seed (raises), 0.31 − 0.36 = −0.05 (does not match)
        assert!(c[2].holds && !c[3].holds && !c[2].gating && !c[3].gating);
    }

    #[test]
    fn dpo_below_rft_8n_fails() {
        // DPO − RFT 8N = −0.04 on every seed: mean −0.04 < −0.02
        let c = checks(&runs([0.32, 0.32, 0.32])).unwrap();
        assert!(c[0].holds && !c[1].holds && c[1].gating);
        let t = table(
            &runs([0.32, 0.32, 0.32]),
            &["RFT N".into(), "per-step DPO N".into()],
            &[1, 2, 3],
        )
        .unwrap();
        assert!(
            t.contains("| per-step DPO N | 0.3200 ± 0.0000 | 0.3200, 0.3200, 0.3200 |"),
            "{t}"
        );
    }
}
