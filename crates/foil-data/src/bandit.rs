//! `bandit`: the didactic bandit of Tajwar et al. 2024 ("Preference Fine-Tuning of LLMs
//! Should Leverage Suboptimal, On-Policy Data", arXiv 2404.14367, `methods.md` §15).
//!
//! One state, `actions` arms. The prompt is the fixed one-token string `S`; a response is
//! ONE action token `a0 … a{actions−1}` followed by end-of-sequence. The reward lives in
//! the verifier (`bandit_reward` in foil-verifiers: `r(a) = exp(−((a − peak)/width)²)`).
//!
//! The SFT demonstrations (the task's `solution`s) are actions drawn from a discretised
//! Gaussian around `sft_center`, so that `sft` gives the reference policy π_ref of the
//! paper ("pre-trained on samples around 20"):
//!
//! ```text
//! p_demo(a) ∝ exp(−(a − sft_center)² / (2 · sft_std²)),   a = 0 … actions−1
//! ```
//!
//! drawn by inverse CDF from one seeded stream. Test problems are copies of the prompt
//! (so `eval`'s `mean_reward` over `test × n` samples estimates `E_{a∼π}[r(a)]`).
//! [code] for the reward and the 100 actions (`bandit_experiment/reward_functions.py`);
//! the Gaussian demonstrations and `sft_std` are [recon] (the paper's π_ref is a
//! pre-trained policy peaked near 20).
//!
//! Tokenizer ([`BanditTokenizer`]): id 0 padding, 1 end-of-sequence, 2 the prompt `S`,
//! `3 + a` the action `a`, whose text is `a{a}` (`a17`). Texts are sequences of these
//! words without separators (`Sa17`).

use std::sync::Arc;

use anyhow::{bail, ensure};
use foil_core::{Problem, Task, TaskData, Tokenizer, register_part, rng};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// The prompt text.
pub const PROMPT: &str = "S";

/// Recipe part: `task: {type: bandit, actions: 100, sft_center: 20, sft_std: 5}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Bandit {
    /// Number of actions (≥ 2).
    pub actions: usize,
    /// Centre of the demonstrations' action distribution.
    pub sft_center: f64,
    /// Standard deviation of the demonstrations' action distribution (> 0).
    pub sft_std: f64,
    /// Training problems (each one demonstration).
    pub train: usize,
    /// Test problems (copies of the prompt).
    pub test: usize,
}

impl Default for Bandit {
    fn default() -> Self {
        Self {
            actions: 100,
            sft_center: 20.0,
            sft_std: 5.0,
            train: 1000,
            test: 8,
        }
    }
}

register_part!(
    Task,
    "bandit",
    Bandit,
    "didactic bandit (Tajwar et al. 2024): one prompt, one action token out of `actions`; demos around sft_center"
);

impl Bandit {
    /// `p_demo(a)` for every action (sums to 1).
    pub fn demo_probs(&self) -> Vec<f64> {
        let w: Vec<f64> = (0..self.actions)
            .map(|a| {
                let d = (a as f64 - self.sft_center) / self.sft_std;
                (-0.5 * d * d).exp()
            })
            .collect();
        let z: f64 = w.iter().sum();
        w.into_iter().map(|x| x / z).collect()
    }
}

#[typetag::serde(name = "bandit")]
impl Task for Bandit {
    fn build(&self, seed: u64) -> anyhow::Result<TaskData> {
        ensure!(self.actions >= 2, "bandit: actions must be at least 2");
        ensure!(
            self.sft_std > 0.0 && self.sft_std.is_finite() && self.sft_center.is_finite(),
            "bandit: sft_std must be > 0 and sft_center finite"
        );
        let probs = self.demo_probs();
        ensure!(
            probs.iter().all(|p| p.is_finite()),
            "bandit: sft_center {} is too far from every action for sft_std {}",
            self.sft_center,
            self.sft_std
        );
        let mut r = rng::rng(seed, &[0xBA4D]);
        let mut draw = || {
            let u: f64 = r.random();
            let mut acc = 0.0;
            for (a, p) in probs.iter().enumerate() {
                acc += p;
                if u < acc {
                    return a;
                }
            }
            probs.len() - 1
        };
        let problem = |id: String, a: usize| Problem {
            id,
            prompt: PROMPT.into(),
            solution: action_text(a),
            answer: a.to_string(),
            difficulty: 1,
        };
        let train = (0..self.train)
            .map(|i| problem(format!("train-{i:05}"), draw()))
            .collect();
        let centre = self
            .sft_center
            .round()
            .clamp(0.0, (self.actions - 1) as f64) as usize;
        let test = (0..self.test)
            .map(|i| problem(format!("test-{i:05}"), centre))
            .collect();
        Ok(TaskData {
            train,
            test,
            tokenizer: Arc::new(BanditTokenizer::new(self.actions)),
        })
    }
}

/// The text of action `a`.
pub fn action_text(a: usize) -> String {
    format!("a{a}")
}

/// Padding id.
pub const PAD: u32 = 0;
/// End-of-sequence id.
pub const EOS: u32 = 1;
/// The prompt's id.
pub const PROMPT_ID: u32 = 2;
/// Id of action 0.
pub const FIRST_ACTION: u32 = 3;

/// The bandit's tokenizer (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct BanditTokenizer {
    actions: usize,
}

impl BanditTokenizer {
    pub fn new(actions: usize) -> Self {
        Self { actions }
    }
}

impl Tokenizer for BanditTokenizer {
    fn vocab_size(&self) -> usize {
        FIRST_ACTION as usize + self.actions
    }

    fn encode(&self, text: &str) -> anyhow::Result<Vec<u32>> {
        let b = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'S' => {
                    out.push(PROMPT_ID);
                    i += 1;
                }
                b'a' => {
                    let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
                    let a: usize = match text[i + 1..i + 1 + digits].parse() {
                        Ok(a) if a < self.actions => a,
                        _ => bail!(
                            "bandit tokenizer: {:?} at offset {i} of {text:?} is not an action \
                             a0 … a{}",
                            &text[i..i + 1 + digits],
                            self.actions - 1
                        ),
                    };
                    out.push(FIRST_ACTION + a as u32);
                    i += 1 + digits;
                }
                _ => bail!(
                    "bandit tokenizer: unexpected {:?} at offset {i} of {text:?} (words: S, a0 … a{})",
                    text[i..].chars().next().unwrap_or(' '),
                    self.actions - 1
                ),
            }
        }
        Ok(out)
    }

    fn decode(&self, ids: &[u32]) -> String {
        ids.iter()
            .filter_map(|&i| match i {
                PROMPT_ID => Some(PROMPT.to_string()),
                i if i >= FIRST_ACTION && ((i - FIRST_ACTION) as usize) < self.actions => {
                    Some(action_text((i - FIRST_ACTION) as usize))
                }
                _ => None,
            })
            .collect()
    }

    fn eos_id(&self) -> u32 {
        EOS
    }

    fn pad_id(&self) -> u32 {
        PAD
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_round_trips_and_locates_errors() {
        let t = BanditTokenizer::new(100);
        assert_eq!(t.vocab_size(), 103);
        // S → 2; a17 → 3 + 17 = 20; a0 → 3; a99 → 102
        assert_eq!(t.encode("Sa17a0a99").unwrap(), vec![2, 20, 3, 102]);
        assert_eq!(t.decode(&[2, 20, EOS, PAD, 102]), "Sa17a99");
        let e = t.encode("a100").unwrap_err().to_string();
        assert!(e.contains("\"a100\" at offset 0"), "{e}");
        let e = t.encode("Sx").unwrap_err().to_string();
        assert!(e.contains("'x' at offset 1"), "{e}");
    }

    #[test]
    fn demonstrations_follow_the_discretised_gaussian() {
        let b = Bandit {
            actions: 5,
            sft_center: 2.0,
            sft_std: 1.0,
            train: 4000,
            test: 2,
        };
        // weights exp(−d²/2) for d = −2…2: e^−2, e^−½, 1, e^−½, e^−2
        //   = 0.135335, 0.606531, 1, 0.606531, 0.135335; sum 2.483732
        // p(2) = 1 / 2.483732 = 0.402620; p(0) = 0.135335 / 2.483732 = 0.054489
        let p = b.demo_probs();
        assert!((p[2] - 0.402_620).abs() < 1e-5, "{p:?}");
        assert!((p[0] - 0.054_489).abs() < 1e-5, "{p:?}");
        let d = b.build(3).unwrap();
        let share = |a: usize| {
            d.train
                .iter()
                .filter(|x| x.solution == action_text(a))
                .count() as f64
                / 4000.0
        };
        // 4000 draws: std of a share ≈ √(0.4·0.6/4000) = 0.0077
        assert!((share(2) - 0.4026).abs() < 0.03, "{}", share(2));
        assert!((share(0) - 0.0545).abs() < 0.02, "{}", share(0));
        assert!(d.train.iter().all(|x| x.prompt == PROMPT));
        assert_eq!(d.test.len(), 2);
        assert_eq!(b.build(3).unwrap().train, d.train);
        assert_ne!(b.build(4).unwrap().train, d.train);
    }
}
