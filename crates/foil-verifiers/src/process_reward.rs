//! `process_reward`: an outcome verifier plus a (noisy) process reward model, for PROF
//! (Ye et al. 2025, "Beyond Correctness: Harmonizing Process and Outcome Rewards through
//! RL Training", arXiv 2509.03403; methods.md §11) and its "Blend" baseline.
//!
//! The verdict's outcome comes from `outcome` alone (an answer-only check such as
//! `numeric`, so a "lucky" answer after wrong steps counts as correct); the per-step values
//! `v_j ∈ [0, 1]` come from `process` (a verifier that fills `step_rewards`, such as the
//! exact checker `steps`), made imperfect on purpose:
//!
//! ```text
//! L        = number of written steps: pieces of the response split on `separator`
//!            before the first piece that starts with `marker`            [recon]
//! u_j      = process.step_rewards[j] for j < len(process.step_rewards), else 0
//!            (j = 0..L−1: a PRM scores the steps that are written;
//!            an extra step the checker does not know scores 0)            [recon]
//! flip_j   = hash(seed, prompt, response, j) < noise     (deterministic)  [recon]
//! u'_j     = 1 − u_j if flip_j else u_j                    (flip noise, methods.md §0.2)
//! v_j      = clamp(u'_j + length_bias · (L − 1), 0, 1)     (a PRM that likes long
//!                                                           answers, so it can be hacked)
//! reward   = outcome.reward + blend · mean_j v_j          (mean = 0 when L = 0)
//! correct  = outcome.correct,   step_rewards = [v_0 … v_{L−1}]
//! ```
//!
//! `blend: 0` (the default) is PROF's input: outcome reward, PRM values on the side for the
//! `prof` advantage estimator. `blend: 0.8` is the paper's Blend baseline: the released
//! code adds `β · ave_prm_values` (the mean step value) to the outcome reward before GRPO
//! (`prof_ray_trainer.py` `compute_advantage`, `run_blend_grpo.sh` `beta=0.8`) [code].
//! The paper's PRM is Qwen2.5-Math-PRM-7B; foil has no learned PRM yet, so the PRM here is
//! an exact checker with flip noise and an optional length bias (methods.md §0.2, T0).

use foil_core::{Problem, Verdict, Verifier, register_part, rng};
use serde::{Deserialize, Serialize};

use crate::{Numeric, Steps};

/// Recipe part: `verifier: {type: process_reward, outcome: {type: numeric}, process:
/// {type: steps, modulus: 10}, noise: 0.1, seed: 0, length_bias: 0.0, blend: 0.0}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessReward {
    /// Gives `reward` and `correct` (an answer-only check).
    pub outcome: Box<dyn Verifier>,
    /// Gives the step values (must fill `step_rewards`).
    pub process: Box<dyn Verifier>,
    /// Probability that a step value is flipped (`v ↦ 1 − v`).
    pub noise: f64,
    /// Seed of the flips; each flip is a hash of (seed, prompt, response, step).
    pub seed: u64,
    /// Added to every step value per written step beyond the first, then clamped to [0, 1].
    pub length_bias: f64,
    /// `β`: reward = outcome reward + β · mean step value (0 = outcome only; 0.8 = Blend).
    pub blend: f64,
    /// Separates the written steps.
    pub separator: String,
    /// The piece that starts with this ends the steps (the answer).
    pub marker: String,
}

impl Default for ProcessReward {
    fn default() -> Self {
        Self {
            outcome: Box::new(Numeric::default()),
            process: Box::new(Steps::default()),
            noise: 0.0,
            seed: 0,
            length_bias: 0.0,
            blend: 0.0,
            separator: "|".into(),
            marker: "A:".into(),
        }
    }
}

register_part!(
    Verifier,
    "process_reward",
    ProcessReward,
    "outcome verdict + per-step values from a noisy, optionally length-biased process checker; blend: β adds β·mean step value to the reward (PROF / Blend, Ye et al. 2025)"
);

/// FNV-1a, 64 bit: a hash of a text that is the same on every platform and build.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A uniform number in `[0, 1)` from a 64-bit hash (its top 53 bits).
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

impl ProcessReward {
    /// The number of written steps `L` of `response`.
    pub fn written_steps(&self, response: &str) -> usize {
        if self.separator.is_empty() {
            return 0;
        }
        response
            .split(self.separator.as_str())
            .take_while(|p| !p.starts_with(self.marker.as_str()))
            .filter(|p| !p.is_empty())
            .count()
    }

    /// Whether the value of step `j` of `response` to `prompt` is flipped.
    pub fn flipped(&self, prompt: &str, response: &str, j: usize) -> bool {
        self.noise > 0.0
            && unit(rng::derive(
                self.seed,
                &[fnv1a(prompt), fnv1a(response), j as u64],
            )) < self.noise
    }

    /// The step values `v_0 … v_{L−1}` given the process checker's step rewards.
    pub fn step_values(&self, prompt: &str, response: &str, checked: &[f32]) -> Vec<f32> {
        let l = self.written_steps(response);
        let bias = self.length_bias * l.saturating_sub(1) as f64;
        (0..l)
            .map(|j| {
                let u = f64::from(checked.get(j).copied().unwrap_or(0.0)).clamp(0.0, 1.0);
                let u = if self.flipped(prompt, response, j) {
                    1.0 - u
                } else {
                    u
                };
                (u + bias).clamp(0.0, 1.0) as f32
            })
            .collect()
    }
}

#[foil_core::typetag::serde(name = "process_reward")]
impl Verifier for ProcessReward {
    fn prepare(&self) -> foil_core::anyhow::Result<()> {
        self.outcome.prepare()?;
        self.process.prepare()
    }

    fn verify(&self, problem: &Problem, response: &str) -> Verdict {
        let out = self.outcome.verify(problem, response);
        let checked = self.process.verify(problem, response).step_rewards;
        let v = self.step_values(&problem.prompt, response, &checked);
        let mean = if v.is_empty() {
            0.0
        } else {
            v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64
        };
        Verdict {
            reward: (f64::from(out.reward) + self.blend * mean) as f32,
            correct: out.correct,
            step_rewards: v,
        }
    }

    fn extract(&self, response: &str) -> Option<String> {
        self.outcome.extract(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(prompt: &str, answer: &str) -> Problem {
        Problem {
            id: "t".into(),
            prompt: prompt.into(),
            solution: String::new(),
            answer: answer.into(),
            difficulty: 0,
        }
    }

    fn prm() -> ProcessReward {
        ProcessReward {
            process: Box::new(Steps {
                modulus: 10,
                ..Steps::default()
            }),
            ..ProcessReward::default()
        }
    }

    #[test]
    fn outcome_from_the_answer_steps_from_the_checker() {
        // Q:7+5-3= mod 10: 7+5 = 12 → 2; 2-3 = −1 → 9.
        let p = problem("Q:7+5-3=", "9");
        // Right steps, right answer: outcome 1, v = [1, 1].
        let v = prm().verify(&p, "7+5=2|2-3=9|A:9");
        assert_eq!(
            (v.reward, v.correct, v.step_rewards),
            (1.0, true, vec![1.0, 1.0])
        );
        // Lucky: step 2 written wrong (2-3=8), answer right → correct, v = [1, 0].
        let v = prm().verify(&p, "7+5=2|2-3=8|A:9");
        assert_eq!(
            (v.reward, v.correct, v.step_rewards),
            (1.0, true, vec![1.0, 0.0])
        );
        // Right steps, wrong answer: outcome 0, v = [1, 1].
        let v = prm().verify(&p, "7+5=2|2-3=9|A:4");
        assert_eq!(
            (v.reward, v.correct, v.step_rewards),
            (0.0, false, vec![1.0, 1.0])
        );
        // Written steps only: one step written → one value; an extra third step → 0.
        assert_eq!(prm().verify(&p, "7+5=2|A:9").step_rewards, [1.0]);
        assert_eq!(
            prm().verify(&p, "7+5=2|2-3=9|9+0=9|A:9").step_rewards,
            [1.0, 1.0, 0.0]
        );
        assert!(prm().verify(&p, "A:9").step_rewards.is_empty());
    }

    #[test]
    fn blend_adds_beta_times_the_mean_step_value() {
        let p = problem("Q:7+5-3=", "9");
        let b = ProcessReward {
            blend: 0.8,
            ..prm()
        };
        // Lucky: 1 + 0.8·(1 + 0)/2 = 1.4.
        let v = b.verify(&p, "7+5=2|2-3=8|A:9");
        assert!((v.reward - 1.4).abs() < 1e-6, "{v:?}");
        assert!(v.correct);
        // Wrong answer, right steps: 0 + 0.8·1 = 0.8.
        assert!((b.verify(&p, "7+5=2|2-3=9|A:4").reward - 0.8).abs() < 1e-6);
        // No steps: mean taken as 0 → reward = outcome = 1.
        assert_eq!(b.verify(&p, "A:9").reward, 1.0);
    }

    #[test]
    fn length_bias_raises_values_of_long_answers() {
        let p = problem("Q:7+5-3=", "9");
        let b = ProcessReward {
            length_bias: 0.25,
            ..prm()
        };
        // L = 2: bias 0.25·1; v = [min(1, 1 + .25), 0 + .25] = [1, 0.25].
        assert_eq!(b.verify(&p, "7+5=2|2-3=8|A:9").step_rewards, [1.0, 0.25]);
        // L = 4 (two extra wrong steps): bias 0.75; v = [1, 0.75, 0.75, 0.75].
        assert_eq!(
            b.verify(&p, "7+5=2|2-3=8|8+0=8|8+0=8|A:9").step_rewards,
            [1.0, 0.75, 0.75, 0.75]
        );
    }

    #[test]
    fn noise_flips_deterministically_at_the_rate() {
        let p = problem("Q:7+5-3=", "9");
        let n = ProcessReward {
            noise: 0.3,
            seed: 7,
            ..prm()
        };
        // Same input, same flips; a flipped value is 1 − the exact one.
        let r = "7+5=2|2-3=9|A:9";
        assert_eq!(n.verify(&p, r), n.verify(&p, r));
        for (j, v) in n.verify(&p, r).step_rewards.iter().enumerate() {
            assert_eq!(*v, if n.flipped(&p.prompt, r, j) { 0.0 } else { 1.0 });
        }
        // Over 2000 distinct responses × 2 steps the flip rate is near 0.3
        // (Binomial(4000, 0.3): sd = sqrt(4000·0.21) ≈ 29, i.e. 0.007; allow ±0.03).
        let mut flips = 0;
        for i in 0..2000 {
            let r = format!("7+5=2|2-3=9|A:9{i}");
            flips += (0..2).filter(|&j| n.flipped(&p.prompt, &r, j)).count();
        }
        let rate = flips as f64 / 4000.0;
        assert!((rate - 0.3).abs() < 0.03, "{rate}");
        // Another seed flips other steps; noise 0 never flips.
        let other = ProcessReward {
            noise: 0.3,
            seed: 8,
            ..prm()
        };
        let responses: Vec<String> = (0..200).map(|i| format!("x{i}")).collect();
        let differ = responses
            .iter()
            .filter(|r| other.flipped("q", r, 0) != n.flipped("q", r, 0))
            .count();
        // each differs with probability 2·0.3·0.7 = 0.42: about 84 of 200
        assert!((40..=130).contains(&differ), "{differ}");
        assert!(responses.iter().all(|r| !prm().flipped("q", r, 0)));
    }

    #[test]
    fn deserializes_by_name_and_rejects_unknown_fields() {
        let v: Box<dyn Verifier> = serde_json::from_str(
            r#"{"type":"process_reward","outcome":{"type":"numeric"},"process":{"type":"steps","modulus":10},"blend":0.8}"#,
        )
        .unwrap();
        // 1 + 0.8·1 = 1.8
        let out = v.verify(&problem("Q:7+5=", "2"), "7+5=2|A:2");
        assert!((out.reward - 1.8).abs() < 1e-6);
        assert_eq!(v.extract("7+5=2|A:2").as_deref(), Some("2"));
        assert!(
            serde_json::from_str::<Box<dyn Verifier>>(r#"{"type":"process_reward","nosie":0.1}"#)
                .is_err()
        );
        assert!(foil_core::registry::names_of("Verifier").contains(&"process_reward"));
    }
}
