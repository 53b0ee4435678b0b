//! The scorer that planning samplers (`best_of_n`, `reflexion`) rank candidates with:
//! exactly one of a learned [`RewardModel`] (its raw score) or a [`Verifier`] (its reward).

use foil_core::{Problem, RewardModel, Verifier};

/// Errors unless exactly one scorer is set, then loads it (`prepare`), so a bad path is an
/// error naming it before any sampling.
pub fn prepare(
    who: &str,
    reward_model: &Option<Box<dyn RewardModel>>,
    verifier: &Option<Box<dyn Verifier>>,
) -> anyhow::Result<()> {
    match (reward_model, verifier) {
        (Some(rm), None) => rm.prepare(),
        (None, Some(v)) => v.prepare(),
        _ => anyhow::bail!("{who}: set exactly one scorer, `reward_model` or `verifier`"),
    }
}

/// One score per response: the reward model's score or the verifier's reward.
pub fn scores(
    who: &str,
    reward_model: &Option<Box<dyn RewardModel>>,
    verifier: &Option<Box<dyn Verifier>>,
    problem: &Problem,
    responses: &[&str],
) -> anyhow::Result<Vec<f32>> {
    match (reward_model, verifier) {
        (Some(rm), None) => {
            let s = rm.score(problem, responses)?;
            anyhow::ensure!(
                s.len() == responses.len(),
                "{who}: the reward model gave {} scores for {} responses",
                s.len(),
                responses.len()
            );
            Ok(s.into_iter().map(|s| s.score).collect())
        }
        (None, Some(v)) => Ok(responses
            .iter()
            .map(|r| v.verify(problem, r).reward)
            .collect()),
        _ => anyhow::bail!("{who}: set exactly one scorer, `reward_model` or `verifier`"),
    }
}
