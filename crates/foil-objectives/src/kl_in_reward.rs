//! `kl_in_reward`: the KL penalty folded into the reward, as in PPO-RLHF (Ziegler et al.
//! 2019, "Fine-Tuning Language Models from Human Preferences"; Stiennon et al. 2020;
//! Ouyang et al. 2022) and verl's `algorithm.use_kl_in_reward` (`apply_kl_penalty`), instead
//! of added to the loss (`kl`, GRPO's choice).
//!
//! KL in reward shapes the per-token reward of each completion with the behaviour-policy
//! KL, `r_t = R·[t = L] − β k_t`, where `R` is the outcome reward on the last token and
//!
//! ```text
//! k_t = estimator(log π_ref − log π_old)      per response token, detached (k1 by default:
//!                                             log π_old − log π_ref, verl's `kl_penalty: kl`)
//! ```
//!
//! Advantage estimators here see one scalar reward per completion, so this part applies the
//! penalty on the objective side, to the advantages, and hands the shaped batch to `inner`:
//!
//! ```text
//! K_t  = Σ_{t' ≥ t} k_t'                      (penalty to go, γ = 1)
//! A'_t = A_t − β · K_t
//! loss = inner(batch with A')
//! ```
//!
//! **Equivalence.** With an outcome reward and no value function, REINFORCE on the shaped
//! rewards uses the return `G_t = Σ_{t'≥t} r_t' = R − β K_t`; with a baseline `b` that does
//! not involve the penalty (REINFORCE `b = 0`, RLOO, ReMax, Dr. GRPO's group mean of the
//! outcome rewards) its advantage is `G_t − b = (R − b) − β K_t = A_t − β K_t` — exactly
//! `A'_t`. So for those estimators this part *is* KL in reward, token for token. It is not
//! the same for estimators that normalise (GRPO's std, `reinforce_pp`'s whitening) or
//! whose baseline would average the shaped returns: here the penalty is neither normalised
//! nor part of any baseline.
//!
//! With `adaptive: {target, horizon}` β follows Ziegler et al.'s controller (see
//! `adaptive_kl`), measured on the token mean of `k`; like there, β lives behind a `Mutex`
//! and is checkpointed with the inner objective's state (`{"coef": β, "inner": …}`).

use anyhow::{Context, ensure};
use burn::tensor::{Tensor, TensorData};
use foil_core::backend::B;
use foil_core::batch::{PolicyBatch, to_vec};
use foil_core::{Loss, Objective, PolicyOutput};
use serde::{Deserialize, Serialize};

use crate::adaptive_kl::{CoefState, KlTarget, adapt, rows};
use crate::aggregate::masked_mean;
use crate::kl::KlEstimator;

/// KL in the reward, applied as a penalty to go on the advantages of `inner`'s batch.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KlInReward {
    /// The policy-gradient objective that sees the shaped advantages.
    pub inner: Box<dyn Objective>,
    /// β (the initial β when `adaptive` is set).
    pub coef: f32,
    /// Per-token estimator of the behaviour policy's KL to the reference.
    pub estimator: KlEstimator,
    /// Adapt β towards a target KL (Ziegler et al. 2019); `null` keeps it fixed.
    pub adaptive: Option<KlTarget>,
    /// The current β (not part of the recipe; checkpointed through `Objective::state`).
    #[serde(skip)]
    pub state: CoefState,
}

impl Default for KlInReward {
    fn default() -> Self {
        Self {
            inner: Box::new(crate::PpoClip::default()),
            coef: 0.001,
            estimator: KlEstimator::K1,
            adaptive: None,
            state: CoefState::default(),
        }
    }
}

impl KlInReward {
    /// The β the next call will use.
    pub fn current_coef(&self) -> f32 {
        self.state.get(self.coef)
    }
}

/// `K_t = Σ_{t' ≥ t} k_t'` along each row (host-side: `k` is a constant).
fn penalty_to_go(k: Tensor<B, 2>) -> Tensor<B, 2> {
    let [n, w] = k.dims();
    let device = k.device();
    let mut v = to_vec(k.detach());
    for row in v.chunks_mut(w.max(1)) {
        let mut acc = 0.0;
        for x in row.iter_mut().rev() {
            acc += *x;
            *x = acc;
        }
    }
    Tensor::from_data(TensorData::new(v, [n, w]), &device)
}

#[typetag::serde(name = "kl_in_reward")]
impl Objective for KlInReward {
    fn loss(&self, batch: &PolicyBatch, out: &PolicyOutput) -> anyhow::Result<Loss> {
        if let Some(a) = &self.adaptive {
            a.check("kl_in_reward")?;
        }
        let reference = batch
            .ref_logprobs
            .clone()
            .context("kl_in_reward: the batch has no reference log-probs (ref_logprobs)")?;
        let old = match &batch.old_logprobs {
            Some(old) => old.clone(),
            None => out.logprobs.clone().detach(),
        };
        ensure!(
            reference.dims() == old.dims() && old.dims() == batch.mask.dims(),
            "kl_in_reward: reference log-probs are {:?}, behaviour log-probs {:?}, mask {:?}",
            reference.dims(),
            old.dims(),
            batch.mask.dims()
        );
        let mask = batch.mask.clone();
        let k = self.estimator.estimate((reference - old) * mask.clone()) * mask.clone();
        let kl = masked_mean(k.clone(), &mask);
        let beta = self.current_coef();
        let mut shaped = batch.clone();
        shaped.advantages =
            (batch.advantages.clone() - penalty_to_go(k).mul_scalar(beta)) * mask.clone();
        let mut loss = self
            .inner
            .loss(&shaped, out)
            .context("kl_in_reward: inner objective")?;
        if let Some(a) = &self.adaptive {
            self.state
                .set(adapt(beta, kl, rows(batch), a.target, a.horizon));
        }
        loss.metrics.push(("kl_in_reward/mean".to_string(), kl));
        loss.metrics.push(("kl_in_reward/coef".to_string(), beta));
        Ok(loss)
    }

    fn state(&self) -> Option<serde_json::Value> {
        let coef = self.state.save();
        let inner = self.inner.state();
        (coef.is_some() || inner.is_some())
            .then(|| serde_json::json!({ "coef": coef, "inner": inner }))
    }

    fn restore(&self, state: &serde_json::Value) -> anyhow::Result<()> {
        self.state.load(&state["coef"], "kl_in_reward")?;
        if !state["inner"].is_null() {
            self.inner.restore(&state["inner"])?;
        }
        Ok(())
    }

    fn needs_reference(&self) -> bool {
        true
    }

    fn needs_entropy(&self) -> bool {
        self.inner.needs_entropy()
    }

    fn needs_old_logprobs(&self) -> bool {
        true
    }
}

foil_core::register_part!(
    Objective,
    "kl_in_reward",
    KlInReward,
    "KL in the reward (PPO-RLHF, verl use_kl_in_reward): A_t − β Σ_{t'≥t} KL_t' of π_old vs π_ref, then inner; optional adaptive β"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::scalar;
    use crate::ppo_clip::PpoClip;
    use crate::testutil::{batch, check_grad, close, dev, t2};

    const OLD: [[f32; 4]; 2] = [[0.0, -1.0, -0.5, -2.0], [0.0, -0.3, -0.7, 0.0]];
    const REF: [[f32; 4]; 2] = [[0.0, -1.5, -0.5, -1.0], [0.0, -0.1, -1.0, 0.0]];
    const MASK: [[f32; 4]; 2] = [[0., 1., 1., 1.], [0., 1., 1., 0.]];

    fn kir(coef: f32) -> KlInReward {
        KlInReward {
            coef,
            ..KlInReward::default()
        }
    }

    #[test]
    fn penalty_to_go_by_hand() {
        // row 0: k1 = old − ref = [·, 0.5, 0.0, −1.0]; to go: t1 0.5 + 0 − 1 = −0.5,
        //        t2 0 − 1 = −1, t3 −1. With A = 1, β = 0.1: A' = [1.05, 1.1, 1.1]
        // row 1: k1 = [·, −0.2, 0.3, ·]; to go: t1 0.1, t2 0.3. A = −1: A' = [−1.01, −1.03]
        // inner ppo_clip at ratio 1 (logp = old), token mean:
        // loss = −(1.05 + 1.1 + 1.1 − 1.01 − 1.03)/5 = −1.21/5 = −0.242
        let b = batch(
            &MASK,
            &[[0., 1., 1., 1.], [0., -1., -1., 0.]],
            Some(&OLD),
            Some(&REF),
            3,
        );
        let out = PolicyOutput {
            logprobs: t2(&OLD, &dev()),
            entropy: None,
        };
        let l = kir(0.1).loss(&b, &out).unwrap();
        close(scalar(l.value), -0.242);
        // logged KL: token mean of k1 = (0.5 + 0 − 1 − 0.2 + 0.3)/5 = −0.08
        let get = |n: &str| l.metrics.iter().find(|(k, _)| k == n).unwrap().1;
        close(get("kl_in_reward/mean"), -0.08);
        close(get("kl_in_reward/coef"), 0.1);
        // the gradient of the token-mean surrogate at ratio 1 is −A'/5 on each token
        let g = check_grad(&OLD, |x| {
            kir(0.1)
                .loss(
                    &b,
                    &PolicyOutput {
                        logprobs: x,
                        entropy: None,
                    },
                )
                .unwrap()
                .value
        });
        for (i, want) in [(1, -0.21), (2, -0.22), (3, -0.22), (5, 0.202), (6, 0.206)] {
            close(g[i], want);
        }
        close(g[0], 0.0);
        close(g[7], 0.0);
    }

    #[test]
    fn equals_reinforce_on_shaped_per_token_rewards() {
        // KL in the reward, done the PPO-RLHF way: per-token rewards r_t = R·[t = L] − β k_t,
        // returns G_t = Σ_{t'≥t} r_t', advantage G_t − b with b the RLOO baseline of the
        // outcome rewards. R = [1, 0] → b = [0, 1] (each one's baseline is the other).
        let beta = 0.3f32;
        let outcome = [1.0f32, 0.0];
        let baseline = [0.0f32, 1.0];
        let mut shaped_adv = [[0.0f32; 4]; 2];
        for i in 0..2 {
            let last = (0..4).rev().find(|&t| MASK[i][t] > 0.0).unwrap();
            let mut g = 0.0;
            for t in (0..4).rev() {
                if MASK[i][t] == 0.0 {
                    continue;
                }
                let r_t =
                    (if t == last { outcome[i] } else { 0.0 }) - beta * (OLD[i][t] - REF[i][t]);
                g += r_t;
                shaped_adv[i][t] = g - baseline[i];
            }
        }
        // this part on the outcome advantages A = R − b = [1, −1] with the same β
        let seq_adv = [[0., 1., 1., 1.], [0., -1., -1., 0.]];
        let ours = batch(&MASK, &seq_adv, Some(&OLD), Some(&REF), 3);
        let theirs = batch(&MASK, &shaped_adv, Some(&OLD), Some(&REF), 3);
        // compare at a policy away from π_old, so clipping and ratios matter
        let logp = [[0.0, -0.9, -0.6, -1.8], [0.0, -0.35, -0.6, 0.0]];
        let p = PpoClip::default();
        let mut ours_grad = Vec::new();
        let loss_ours = {
            let x = t2(&logp, &dev()).require_grad();
            let l = kir(beta)
                .loss(
                    &ours,
                    &PolicyOutput {
                        logprobs: x.clone(),
                        entropy: None,
                    },
                )
                .unwrap()
                .value;
            ours_grad.extend(to_vec(x.grad(&l.backward()).unwrap()));
            scalar(l)
        };
        let x = t2(&logp, &dev()).require_grad();
        let l = p
            .loss(
                &theirs,
                &PolicyOutput {
                    logprobs: x.clone(),
                    entropy: None,
                },
            )
            .unwrap()
            .value;
        let theirs_grad = to_vec(x.grad(&l.backward()).unwrap());
        close(loss_ours, scalar(l));
        for (a, b) in ours_grad.iter().zip(&theirs_grad) {
            close(*a, *b);
        }
    }

    #[test]
    fn adaptive_beta_and_flags() {
        // KL token mean −0.08 (first test) < target 0.1 → e = clip(−0.8 − 1) = −0.2,
        // n = 2 rows, horizon 10 → β = 0.1·(1 − 0.2·2/10) = 0.096
        let b = batch(
            &MASK,
            &[[0., 1., 1., 1.], [0., -1., -1., 0.]],
            Some(&OLD),
            Some(&REF),
            3,
        );
        let out = PolicyOutput {
            logprobs: t2(&OLD, &dev()),
            entropy: None,
        };
        let p: Box<dyn Objective> = serde_saphyr::from_str(
            "type: kl_in_reward\ncoef: 0.1\nadaptive: {target: 0.1, horizon: 10}\ninner: {type: ppo_clip}\n",
        )
        .unwrap();
        assert!(p.needs_reference() && p.needs_old_logprobs() && !p.needs_entropy());
        p.loss(&b, &out).unwrap();
        let l = p.loss(&b, &out).unwrap();
        close(
            l.metrics
                .iter()
                .find(|(k, _)| k == "kl_in_reward/coef")
                .unwrap()
                .1,
            0.096,
        );
        // without a reference the part says what is missing
        let no_ref = batch(&MASK, &[[0.; 4]; 2], Some(&OLD), None, 3);
        let err = kir(0.1).loss(&no_ref, &out).unwrap_err().to_string();
        assert!(err.contains("ref_logprobs"), "{err}");
    }
}
