//! `steps`: exact per-step checker for chain-arithmetic (T0) responses.
//!
//! A T0 prompt is `Q:x0∘1x1∘2x2…=` with operators `+ - *`, evaluated left to right, every
//! result reduced with the Euclidean remainder into `0..modulus`. The expected steps are
//!
//! ```text
//! v0 = x0,   v_k = (v_{k-1} ∘_k x_k) mod m   (k = 1..K, Euclidean remainder)
//! step_k = "{v_{k-1}}{∘_k}{x_k}={v_k}"
//! ```
//!
//! and a correct response is `step_1|…|step_K|A:v_K`. The response is split on `|`; the
//! steps are the pieces before the first piece that starts with the marker. Then
//!
//! ```text
//! step_rewards[k] = 1 if piece k == step_k exactly else 0       (k = 1..K; missing → 0)
//! correct         = numeric answer correct ∧ all steps correct ∧ #pieces == K
//! reward          = 1 if correct else 0
//! ```
//!
//! The per-step rewards are the dense process supervision of Lightman et al. (2023, "Let's
//! Verify Step by Step") and Uesato et al. (2022, "Solving math word problems with process-
//! and outcome-based feedback"), computed here by an exact checker instead of a learned
//! reward model. A prompt that does not parse (or `modulus <= 0`) yields an incorrect
//! verdict with no step rewards; nothing here panics on hostile input.

use foil_core::{Problem, Verdict, Verifier};
use serde::{Deserialize, Serialize};

use crate::numeric::Numeric;

/// One chain operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Sub,
    Mul,
}

impl Op {
    /// The operator's character in prompts and steps.
    pub fn symbol(self) -> char {
        match self {
            Op::Add => '+',
            Op::Sub => '-',
            Op::Mul => '*',
        }
    }

    fn from_byte(b: u8) -> Option<Op> {
        match b {
            b'+' => Some(Op::Add),
            b'-' => Some(Op::Sub),
            b'*' => Some(Op::Mul),
            _ => None,
        }
    }

    /// `(a ∘ b) mod modulus` with the Euclidean remainder, in `0..modulus`. `None` when
    /// `modulus <= 0`. Computed in `i128`, so it cannot overflow.
    pub fn apply(self, a: i64, b: i64, modulus: i64) -> Option<i64> {
        if modulus <= 0 {
            return None;
        }
        let (a, b) = (i128::from(a), i128::from(b));
        let raw = match self {
            Op::Add => a + b,
            Op::Sub => a - b,
            Op::Mul => a * b,
        };
        // The remainder lies in 0..modulus, so it fits i64.
        i64::try_from(raw.rem_euclid(i128::from(modulus))).ok()
    }
}

/// A parsed chain: the first operand, then each operator with its operand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub first: i64,
    pub ops: Vec<(Op, i64)>,
}

/// Reads an operand (optional `-`, then digits) from the front of `s`; returns it and the
/// rest of `s`.
fn take_operand(s: &str) -> Option<(i64, &str)> {
    let bytes = s.as_bytes();
    let sign = usize::from(bytes.first() == Some(&b'-'));
    let digits = bytes[sign..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 {
        return None;
    }
    let end = sign + digits; // ASCII prefix: a char boundary
    Some((s[..end].parse().ok()?, &s[end..]))
}

impl Chain {
    /// Parses a prompt `Q:17+5-3=` (the `Q:` prefix and `=` suffix are optional,
    /// surrounding whitespace is ignored). `None` unless the whole expression parses.
    pub fn parse(prompt: &str) -> Option<Chain> {
        let s = prompt.trim();
        let s = s.strip_prefix("Q:").unwrap_or(s);
        let s = s.strip_suffix('=').unwrap_or(s);
        let (first, mut rest) = take_operand(s)?;
        let mut ops = Vec::new();
        while let Some(&b) = rest.as_bytes().first() {
            let op = Op::from_byte(b)?;
            let (x, r) = take_operand(&rest[1..])?;
            ops.push((op, x));
            rest = r;
        }
        Some(Chain { first, ops })
    }

    /// The result after each operator, `[v_1, …, v_K]`. `None` when `modulus <= 0`.
    pub fn values(&self, modulus: i64) -> Option<Vec<i64>> {
        let mut acc = self.first;
        self.ops
            .iter()
            .map(|&(op, x)| {
                acc = op.apply(acc, x, modulus)?;
                Some(acc)
            })
            .collect()
    }

    /// The expected step texts `"{v_{k-1}}{∘_k}{x_k}={v_k}"`. `None` when `modulus <= 0`.
    pub fn step_texts(&self, modulus: i64) -> Option<Vec<String>> {
        let values = self.values(modulus)?;
        let prev = std::iter::once(self.first).chain(values.iter().copied());
        Some(
            self.ops
                .iter()
                .zip(prev)
                .zip(&values)
                .map(|((&(op, x), a), c)| format!("{a}{}{x}={c}", op.symbol()))
                .collect(),
        )
    }
}

/// Exact per-step checker for chain arithmetic.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Steps {
    /// Every result is reduced into `0..modulus` (Euclidean remainder).
    pub modulus: i64,
    /// The text that introduces the final answer.
    pub marker: String,
}

impl Default for Steps {
    fn default() -> Self {
        Self {
            modulus: 100,
            marker: "A:".to_string(),
        }
    }
}

impl Steps {
    /// The expected intermediate results `[v_1, …, v_K]` of `problem`'s chain (the last is
    /// the final answer). `None` when the prompt does not parse or `modulus <= 0`.
    pub fn step_values(&self, problem: &Problem) -> Option<Vec<i64>> {
        Chain::parse(&problem.prompt)?.values(self.modulus)
    }

    /// The expected step texts of `problem`'s chain.
    pub fn expected_steps(&self, problem: &Problem) -> Option<Vec<String>> {
        Chain::parse(&problem.prompt)?.step_texts(self.modulus)
    }
}

#[foil_core::typetag::serde(name = "steps")]
impl Verifier for Steps {
    fn verify(&self, problem: &Problem, response: &str) -> Verdict {
        let Some(expected) = self.expected_steps(problem) else {
            return Verdict::outcome(false);
        };
        let marker = self.marker.as_str();
        let mut step_rewards = vec![0.0; expected.len()];
        let mut count = 0usize;
        for (k, piece) in response
            .split('|')
            .take_while(|p| !p.starts_with(marker))
            .enumerate()
        {
            if expected.get(k).is_some_and(|e| e == piece) {
                step_rewards[k] = 1.0;
            }
            count = k + 1;
        }
        let steps_ok = count == expected.len() && step_rewards.iter().all(|&r| r == 1.0);
        let answer_ok = Numeric {
            marker: self.marker.clone(),
            last_number: false,
        }
        .is_correct(problem, response);
        let correct = steps_ok && answer_ok;
        Verdict {
            reward: if correct { 1.0 } else { 0.0 },
            correct,
            step_rewards,
        }
    }
}

foil_core::register_part!(
    Verifier,
    "steps",
    Steps,
    "exact per-step checker for chain arithmetic: 1/0 per step + outcome (process supervision, Lightman et al. 2023)"
);

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

    fn verify(p: &Problem, response: &str) -> Verdict {
        Steps::default().verify(p, response)
    }

    #[test]
    fn parses_prompt() {
        // "Q:17+5-3=" → first 17, then (+,5), (-,3).
        assert_eq!(
            Chain::parse("Q:17+5-3="),
            Some(Chain {
                first: 17,
                ops: vec![(Op::Add, 5), (Op::Sub, 3)]
            })
        );
        // An operand may carry its own sign: "4--2" is 4 − (−2).
        assert_eq!(
            Chain::parse("Q:4--2="),
            Some(Chain {
                first: 4,
                ops: vec![(Op::Sub, -2)]
            })
        );
        for bad in [
            "",
            "Q:=",
            "Q:17+=",
            "Q:17/2=",
            "Q:17+5x=",
            "Q:１７+5=",
            "Q:+5=",
        ] {
            assert_eq!(Chain::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn step_values_reduce_mod_100() {
        // 95+10 = 105 → 5; 5*3 = 15; 15-40 = -25 → -25 rem_euclid 100 = 75.
        let p = problem("Q:95+10*3-40=", "75");
        assert_eq!(Steps::default().step_values(&p), Some(vec![5, 15, 75]));
        assert_eq!(
            Steps::default().expected_steps(&p).unwrap(),
            ["95+10=5", "5*3=15", "15-40=75"]
        );
        // modulus 7: 95+10 = 105 = 15·7 → 0; 0*3 = 0; 0-40 = -40 = -6·7 + 2 → 2.
        let m7 = Steps {
            modulus: 7,
            ..Steps::default()
        };
        assert_eq!(m7.step_values(&p), Some(vec![0, 0, 2]));
        // A non-positive modulus cannot reduce: no values, and an incorrect verdict.
        let m0 = Steps {
            modulus: 0,
            ..Steps::default()
        };
        assert_eq!(m0.step_values(&p), None);
        assert_eq!(m0.verify(&p, "A:75"), Verdict::outcome(false));
    }

    #[test]
    fn correct_response_scores_every_step() {
        // 17+5 = 22, 22-3 = 19.
        let v = verify(&problem("Q:17+5-3=", "19"), "17+5=22|22-3=19|A:19");
        assert_eq!(
            v,
            Verdict {
                reward: 1.0,
                correct: true,
                step_rewards: vec![1.0, 1.0]
            }
        );
        // With wrap-around: 95+10=5, 5*3=15, 15-40=75.
        let v = verify(
            &problem("Q:95+10*3-40=", "75"),
            "95+10=5|5*3=15|15-40=75|A:75",
        );
        assert!(v.correct);
        assert_eq!(v.step_rewards, [1.0, 1.0, 1.0]);
    }

    #[test]
    fn wrong_step_with_right_answer_is_incorrect() {
        // Step 2 claims 22-3=18 (true value 19); the answer 19 alone is not enough.
        let v = verify(&problem("Q:17+5-3=", "19"), "17+5=22|22-3=18|A:19");
        assert_eq!(v.step_rewards, [1.0, 0.0]);
        assert!(!v.correct);
        assert_eq!(v.reward, 0.0);
    }

    #[test]
    fn unreduced_step_is_wrong() {
        // 95+10 must be written as 5 (105 mod 100), not 105.
        let v = verify(&problem("Q:95+10=", "5"), "95+10=105|A:5");
        assert_eq!(v.step_rewards, [0.0]);
        assert!(!v.correct);
    }

    #[test]
    fn missing_and_extra_steps() {
        let p = problem("Q:17+5-3=", "19");
        // Missing second step: it counts 0.
        let v = verify(&p, "17+5=22|A:19");
        assert_eq!(v.step_rewards, [1.0, 0.0]);
        assert!(!v.correct);
        // An extra step after two correct ones: steps score 1, 1 but 3 ≠ 2 steps.
        let v = verify(&p, "17+5=22|22-3=19|19+0=19|A:19");
        assert_eq!(v.step_rewards, [1.0, 1.0]);
        assert!(!v.correct);
        // Right steps, wrong answer.
        let v = verify(&p, "17+5=22|22-3=19|A:20");
        assert_eq!(v.step_rewards, [1.0, 1.0]);
        assert!(!v.correct);
        // No marker: the answer check fails.
        let v = verify(&p, "17+5=22|22-3=19");
        assert_eq!(v.step_rewards, [1.0, 1.0]);
        assert!(!v.correct);
        // Steps must match exactly: a space breaks step 1.
        let v = verify(&p, "17 +5=22|22-3=19|A:19");
        assert_eq!(v.step_rewards, [0.0, 1.0]);
        assert!(!v.correct);
    }

    #[test]
    fn hostile_input_never_panics() {
        let p = problem("Q:17+5-3=", "19");
        let long = "|".repeat(100_000);
        let digits = "9".repeat(100_000);
        for r in [
            "",
            "|",
            "A:",
            "é|ü|A:١٩",
            long.as_str(),
            digits.as_str(),
            "17+5=22|22-3=19|A:99999999999999999999999",
        ] {
            let v = verify(&p, r);
            assert!(!v.correct, "{r:?}");
            assert_eq!(v.step_rewards.len(), 2);
        }
        // Hostile prompts: no panic, incorrect, no step rewards.
        let huge = format!("Q:{}+1=", "9".repeat(1000));
        for prompt in [
            "",
            "Q:",
            "Q:ééé=",
            huge.as_str(),
            "Q:9223372036854775807*9223372036854775807=",
        ] {
            let v = verify(&problem(prompt, "1"), "A:1");
            assert!(!v.correct, "{prompt:?}");
        }
        // i64::MAX² does not overflow: (2^63−1)² mod 100 = 49 (…807² ends in …249).
        let p = problem("Q:9223372036854775807*9223372036854775807=", "49");
        assert_eq!(Steps::default().step_values(&p), Some(vec![49]));
    }

    #[test]
    fn deserializes_by_name_and_rejects_unknown_fields() {
        let v: Box<dyn Verifier> =
            serde_json::from_str(r#"{"type":"steps","modulus":10}"#).unwrap();
        // mod 10: 17+5 = 22 → 2; 2-3 = -1 → 9.
        let got = v.verify(&problem("Q:17+5-3=", "9"), "17+5=2|2-3=9|A:9");
        assert!(got.correct);
        assert!(serde_json::from_str::<Box<dyn Verifier>>(r#"{"type":"steps","mod":10}"#).is_err());
        assert!(foil_core::registry::names_of("Verifier").contains(&"steps"));
    }
}
