//! `d2o`: Distributional Dispreference Optimization (Duan et al. 2024, "Negating
//! Negatives: Alignment with Human Negative Samples via Distributional Dispreference
//! Optimization", arXiv 2403.03419, §3.2 Eq. 3; `../shared/docs/methods.md` §6): learn from
//! negatives only, contrasting each negative with the average implicit reward of K
//! self-samples of the same prompt.
//!
//! ```text
//! h(y)  = Σ_t m_t · (log π_θ(y_t | x, y_<t) − log π_ref(y_t | x, y_<t))   sequence log-ratio
//! z_l   = (β/K) · Σ_{i ∈ S(x)} h(y_i) − α · h(y_l)                          per negative y_l of x
//! L     = mean over the negatives of the batch of −log σ(z_l)
//! ∂L/∂h(y_l) = −σ(−z_l) · (−α + β/K·[y_l ∈ S])   (> 0 for α > β/K: the negative goes down)
//! ∂L/∂h(y_i) = −σ(−z_l) · β/K                    (< 0: the other self-samples go up)
//! ```
//!
//! Moving every `h` of a group by the same `c` moves `z_l` by `(β − α)·c`: with `α = β`
//! the loss only pushes each negative down relative to the group, and the mean over the
//! whole group (negatives included) stays put to first order.
//!
//! **Batch convention.** Groups come from [`PolicyBatch::group_ids`] (rows with the same
//! id answer the same prompt; the `rl` stage fills them). A row's sign is the sign of its
//! mean advantage over its response tokens: rows with `A < 0` are the negatives `y_l`
//! (e.g. `advantage: {type: w_reinforce, lambda: 1.0}`: −1 for what the verifier flags).
//! The self-samples `S(x)` are, with `self_samples: all` (the default), every row of the
//! group, negatives included, and with `self_samples: positive` only the rows with
//! `A > 0`. `K = |S(x)|` is the group's size, so the sampler's `n` sets it (the paper's
//! K = 11 [secondary]). Groups without negatives (or, with `positive`, without
//! positives) contribute nothing; a batch with no such group has loss 0. The `rl` stage
//! shuffles rows into `mini_batches` slices, which would split groups: recipes use
//! `mini_batches: 1`.
//!
//! **Which reading.** In the paper the self-samples are drawn from the reference model
//! `y_i ∼ π_r(·|x)` without any filtering, and only the negatives are labelled (harmful);
//! averaging over K samples is what makes an occasional harmful self-sample harmless
//! (Eq. 4) [secondary]. So `all` is the paper's reading: the self-samples are the whole
//! on-policy group, whatever the verifier says. A negative is then also a self-sample of
//! every negative of its group: with `N` negatives among the `K` samples (and equal
//! `σ(−z)`), its net push down is `σ(−z)·(α − N·β/K)`, positive while `N < K·α/β`; with
//! `α = β` a group whose samples are all negative gets no gradient at all. `positive` is the
//! variant that uses only verifier-approved samples as the distributional positive.
//! `π_ref` is the policy at the start of the stage (both of the paper's reference
//! models `π_{r−}`, `π_{r+}` are the original model in its experiments [secondary]).
//! Defaults `α = β = 0.1` [secondary].

use anyhow::{Context, ensure};
use burn::tensor::activation::log_sigmoid;
use burn::tensor::{Tensor, TensorData};
use foil_core::backend::B;
use foil_core::batch::{PolicyBatch, to_vec};
use foil_core::{Loss, Objective, PolicyOutput};
use serde::{Deserialize, Serialize};

use crate::aggregate::scalar;

/// Which rows of a group are the self-samples `S(x)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SelfSamples {
    /// Every sample of the group (the paper's reading: unfiltered samples of the policy).
    #[default]
    All,
    /// Only the samples with a positive advantage.
    Positive,
}

/// Recipe part: `objective: {type: d2o, alpha: 0.1, beta: 0.1}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct D2o {
    /// Weight α of the negative's log-ratio (> 0).
    pub alpha: f32,
    /// Weight β of the self-samples' mean log-ratio (> 0).
    pub beta: f32,
    /// `all` (default) or `positive`.
    pub self_samples: SelfSamples,
    /// Weight of the term.
    pub coef: f32,
}

impl Default for D2o {
    fn default() -> Self {
        Self {
            alpha: 0.1,
            beta: 0.1,
            self_samples: SelfSamples::All,
            coef: 1.0,
        }
    }
}

/// Mean advantage of each row over its response tokens (its sign says positive/negative;
/// with a rank-giving estimator its value is the rank level).
pub(crate) fn row_levels(batch: &PolicyBatch) -> Vec<f32> {
    let n = batch.n;
    let w = batch.width;
    let adv = to_vec(batch.advantages.clone().detach());
    let mask = to_vec(batch.mask.clone().detach());
    (0..n)
        .map(|i| {
            let (mut s, mut c) = (0.0f32, 0.0f32);
            for j in 0..w {
                s += adv[i * w + j] * mask[i * w + j];
                c += mask[i * w + j];
            }
            if c > 0.0 { s / c } else { 0.0 }
        })
        .collect()
}

/// The rows of each group, in order of first appearance; a clear error without group ids.
pub(crate) fn groups(batch: &PolicyBatch, who: &str) -> anyhow::Result<Vec<Vec<usize>>> {
    ensure!(
        !batch.group_ids.is_empty(),
        "{who}: the batch has no group ids (PolicyBatch::group_ids): this objective compares \
         the responses to one prompt and needs a stage that records groups (rl)"
    );
    ensure!(
        batch.group_ids.len() == batch.n,
        "{who}: {} group ids for {} rows",
        batch.group_ids.len(),
        batch.n
    );
    let mut ids: Vec<usize> = Vec::new();
    let mut rows: Vec<Vec<usize>> = Vec::new();
    for (i, &g) in batch.group_ids.iter().enumerate() {
        match ids.iter().position(|&x| x == g) {
            Some(k) => rows[k].push(i),
            None => {
                ids.push(g);
                rows.push(vec![i]);
            }
        }
    }
    Ok(rows)
}

/// Sequence log-ratios `h(y) = Σ_t m_t (log π_θ − log π_ref)` as a `[n, 1]` tensor.
pub(crate) fn log_ratios(
    batch: &PolicyBatch,
    out: &PolicyOutput,
    who: &str,
) -> anyhow::Result<Tensor<B, 2>> {
    let reference = batch
        .ref_logprobs
        .clone()
        .with_context(|| format!("{who}: the batch has no reference log-probs (ref_logprobs)"))?;
    ensure!(
        reference.dims() == out.logprobs.dims(),
        "{who}: reference log-probs are {:?}, policy log-probs {:?}",
        reference.dims(),
        out.logprobs.dims()
    );
    Ok(((out.logprobs.clone() - reference) * batch.mask.clone()).sum_dim(1))
}

#[typetag::serde(name = "d2o")]
impl Objective for D2o {
    fn loss(&self, batch: &PolicyBatch, out: &PolicyOutput) -> anyhow::Result<Loss> {
        ensure!(
            self.alpha > 0.0 && self.alpha.is_finite() && self.beta > 0.0 && self.beta.is_finite(),
            "d2o: alpha and beta must be > 0, got alpha {} and beta {}",
            self.alpha,
            self.beta
        );
        let groups = groups(batch, "d2o")?;
        let h = log_ratios(batch, out, "d2o")?; // [n, 1]
        let levels = row_levels(batch);
        let n = batch.n;
        // one row of M per negative: z = M h
        let mut m: Vec<f32> = Vec::new();
        let (mut negatives, mut k_sum, mut groups_used) = (0usize, 0usize, 0usize);
        let mut neg_rows = Vec::new();
        let mut self_rows = Vec::new();
        for g in &groups {
            let neg: Vec<usize> = g.iter().copied().filter(|&i| levels[i] < 0.0).collect();
            let selfs: Vec<usize> = match self.self_samples {
                SelfSamples::All => g.clone(),
                SelfSamples::Positive => g.iter().copied().filter(|&i| levels[i] > 0.0).collect(),
            };
            if neg.is_empty() || selfs.is_empty() {
                continue;
            }
            groups_used += 1;
            let k = selfs.len();
            for &l in &neg {
                let mut row = vec![0.0f32; n];
                for &i in &selfs {
                    row[i] += self.beta / k as f32;
                }
                row[l] -= self.alpha;
                m.extend(row);
                negatives += 1;
                k_sum += k;
            }
            neg_rows.extend(neg);
            self_rows.extend(selfs);
        }
        let device = out.logprobs.device();
        if negatives == 0 {
            let value = (out.logprobs.clone() * batch.mask.zeros_like()).sum();
            return Ok(Loss {
                value,
                metrics: vec![
                    ("d2o/loss".into(), 0.0),
                    ("d2o/negatives".into(), 0.0),
                    ("d2o/groups".into(), 0.0),
                ],
            });
        }
        let mt: Tensor<B, 2> = Tensor::from_data(TensorData::new(m, [negatives, n]), &device);
        let z = mt.matmul(h.clone()).reshape([negatives]);
        let value = log_sigmoid(z.clone()).neg().mean().mul_scalar(self.coef);
        let hv = to_vec(h.detach());
        let mean_of =
            |rows: &[usize]| rows.iter().map(|&i| hv[i]).sum::<f32>() / rows.len().max(1) as f32;
        let zs = to_vec(z.detach());
        let metrics = vec![
            ("d2o/loss".to_string(), scalar(value.clone())),
            (
                "d2o/margin".to_string(),
                zs.iter().sum::<f32>() / negatives as f32,
            ),
            ("d2o/negative_logratio".to_string(), mean_of(&neg_rows)),
            ("d2o/self_logratio".to_string(), mean_of(&self_rows)),
            ("d2o/negatives".to_string(), negatives as f32),
            ("d2o/groups".to_string(), groups_used as f32),
            ("d2o/k".to_string(), k_sum as f32 / negatives as f32),
        ];
        Ok(Loss { value, metrics })
    }

    fn needs_reference(&self) -> bool {
        true
    }
}

foil_core::register_part!(
    Objective,
    "d2o",
    D2o,
    "D²O: −log σ(β·mean_i h(y_i) − α·h(y_l)) per negative y_l against the group's K self-samples (Duan et al. 2024)"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{batch, check_grad, close, dev, t2};

    fn out(lp: &[[f32; 2]]) -> PolicyOutput {
        PolicyOutput {
            logprobs: t2(lp, &dev()),
            entropy: None,
        }
    }

    // group 7: rows 0 (A = +1), 1 (A = −1), 2 (A = +1); group 3: row 3 (A = +1) alone
    const MASK: [[f32; 2]; 4] = [[1., 1.], [1., 0.], [1., 1.], [1., 1.]];
    const ADV: [[f32; 2]; 4] = [[1., 1.], [-1., 0.], [1., 1.], [1., 1.]];
    const REF: [[f32; 2]; 4] = [[-1., -1.], [-1., -1.], [-2., -2.], [-1., -1.]];
    // h = [0.5 + 0.5, 1.0 (second column masked), −1.0 + 0, 0]  = [1.0, 1.0, −1.0, 0.0]
    const LP: [[f32; 2]; 4] = [[-0.5, -0.5], [0.0, -9.0], [-3.0, -2.0], [-1.0, -1.0]];

    fn setup() -> PolicyBatch {
        let mut b = batch(&MASK, &ADV, None, Some(&REF), 2);
        b.group_ids = vec![7, 7, 7, 3];
        b
    }

    #[test]
    fn hand_worked_loss_all_self_samples() {
        let b = setup();
        // group 7: S = rows 0, 1, 2 (K = 3), one negative row 1
        // z = (β/3)(1 + 1 − 1) − α·1 with α = 0.5, β = 1.5:
        //   = 0.5·1 − 0.5 = 0.0 → L = log 2 = 0.6931472
        let d = D2o {
            alpha: 0.5,
            beta: 1.5,
            ..D2o::default()
        };
        let l = d.loss(&b, &out(&LP)).unwrap();
        close(scalar(l.value), std::f32::consts::LN_2);
        let m = |k: &str| l.metrics.iter().find(|(n, _)| n == k).unwrap().1;
        close(m("d2o/negatives"), 1.0);
        close(m("d2o/groups"), 1.0); // group 3 has no negative
        close(m("d2o/k"), 3.0);
        close(m("d2o/negative_logratio"), 1.0);
        close(m("d2o/self_logratio"), 1.0 / 3.0);
        // the defaults α = β = 0.1: z = 0.1/3 − 0.1 = −0.0666667
        // L = log(1 + e^{0.0666667}) = log(2.0689391) = 0.7270360
        close(
            scalar(D2o::default().loss(&b, &out(&LP)).unwrap().value),
            0.727_036,
        );
    }

    #[test]
    fn positive_self_samples_only() {
        let b = setup();
        // S = rows 0, 2 (K = 2): z = (1.5/2)(1 − 1) − 0.5·1 = −0.5
        // L = log(1 + e^{0.5}) = log(2.6487213) = 0.9740770
        let d = D2o {
            alpha: 0.5,
            beta: 1.5,
            self_samples: SelfSamples::Positive,
            ..D2o::default()
        };
        close(scalar(d.loss(&b, &out(&LP)).unwrap().value), 0.974_077);
    }

    #[test]
    fn gradient_lowers_the_negative_and_raises_the_self_sample_average() {
        let b = setup();
        let d = D2o::default();
        let g = check_grad(&LP, |x| {
            d.loss(
                &b,
                &PolicyOutput {
                    logprobs: x,
                    entropy: None,
                },
            )
            .unwrap()
            .value
        });
        // z = −0.0666667, σ(−z) = σ(0.0666667) = 0.5166605
        // self rows 0, 2: ∂L/∂lp = −σ(−z)·β/3 = −0.5166605·0.0333333 = −0.0172220
        // negative row 1: −σ(−z)·(β/3 − α) = −0.5166605·(−0.0666667) = +0.0344440
        // row 3 (no negative in its group) and masked columns: 0
        for k in [0, 1, 4, 5] {
            close(g[k], -0.017_222_0);
        }
        close(g[2], 0.034_444_0);
        close(g[3], 0.0);
        close(g[6], 0.0);
        close(g[7], 0.0);
        // descent: the negative's log-prob falls, the self-samples' average rises
        assert!(g[2] > 0.0 && g[0] + g[4] < 0.0);
    }

    #[test]
    fn no_negatives_is_zero_and_missing_groups_or_reference_are_errors() {
        let mut b = batch(&MASK, &[[1.; 2]; 4], None, Some(&REF), 2);
        b.group_ids = vec![0, 0, 1, 1];
        let l = D2o::default().loss(&b, &out(&LP)).unwrap();
        close(scalar(l.value), 0.0);
        let no_groups = batch(&MASK, &ADV, None, Some(&REF), 2);
        let e = D2o::default()
            .loss(&no_groups, &out(&LP))
            .unwrap_err()
            .to_string();
        assert!(e.contains("group ids"), "{e}");
        let mut no_ref = batch(&MASK, &ADV, None, None, 2);
        no_ref.group_ids = vec![0; 4];
        let e = D2o::default()
            .loss(&no_ref, &out(&LP))
            .unwrap_err()
            .to_string();
        assert!(e.contains("reference"), "{e}");
        let bad = D2o {
            alpha: 0.0,
            ..D2o::default()
        };
        assert!(bad.loss(&setup(), &out(&LP)).is_err());
    }
}
