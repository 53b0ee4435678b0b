//! Packing groups of completions into the tensors a policy and an objective consume.
//!
//! Layout of one row (prompt left-padded to the longest prompt `P`, response right-padded
//! to the longest response `R`, `T = P + R`):
//!
//! ```text
//! [pad pad Q : 1 7 + 5 =][1 7 + 5 = 2 2 | A : 2 2 <eos> pad pad]
//!  <------ P ----------> <------------- R ------------------->
//! ```
//!
//! Positions count only real tokens (`0, 1, 2, …` from the first prompt token), pads are
//! masked out as attention keys, so a row's logits do not depend on how much padding the
//! batch needed. Logits at column `j` predict the token at column `j + 1`; the response
//! mask marks the columns `j` whose target `j + 1` is a response token.

use burn::tensor::{Bool, Int, Tensor, TensorData};

use crate::backend::{B, Device};

/// Token rows on the host, before they become tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct SeqBatch {
    /// Rows.
    pub n: usize,
    /// Columns.
    pub t: usize,
    /// Token ids, row-major `[n, t]`; pads hold the pad id.
    pub tokens: Vec<u32>,
    /// Position of each token among its row's real tokens (0 for pads).
    pub positions: Vec<u32>,
    /// Whether each column holds a real token (false for padding).
    pub valid: Vec<bool>,
}

/// The tensors of a [`SeqBatch`] on one device.
#[derive(Debug, Clone)]
pub struct SeqInput {
    pub tokens: Tensor<B, 2, Int>,
    pub positions: Tensor<B, 2, Int>,
    pub key_valid: Tensor<B, 2, Bool>,
}

/// The row index that repeats row `i` of `repeats.len()` rows `repeats[i]` times, in
/// order, as an int tensor on `device` (for `select` along rows).
pub fn repeat_index(repeats: &[usize], device: &Device) -> Tensor<B, 1, Int> {
    let index: Vec<i64> = repeats
        .iter()
        .enumerate()
        .flat_map(|(i, &k)| std::iter::repeat_n(i as i64, k))
        .collect();
    let len = index.len();
    Tensor::from_data(TensorData::new(index, [len]), device)
}

impl SeqInput {
    /// The batch with row `i` repeated `repeats[i]` times, in order (`Σ repeats` rows).
    pub fn repeat_rows(&self, repeats: &[usize]) -> Self {
        let [n, _] = self.tokens.dims();
        assert_eq!(repeats.len(), n, "one repeat count per row");
        let index = repeat_index(repeats, &self.tokens.device());
        Self {
            tokens: self.tokens.clone().select(0, index.clone()),
            positions: self.positions.clone().select(0, index.clone()),
            key_valid: self.key_valid.clone().int().select(0, index).bool(),
        }
    }
}

impl SeqBatch {
    /// Left-pads each prompt to the longest one. Used for prefill before generation.
    pub fn left_padded(prompts: &[Vec<u32>], pad: u32) -> Self {
        let p = prompts.iter().map(Vec::len).max().unwrap_or(0);
        let mut b = Self::empty(prompts.len(), p, pad);
        for (i, prompt) in prompts.iter().enumerate() {
            b.place(i, p - prompt.len(), prompt, 0);
        }
        b
    }

    /// Prompt left-padded to `P`, response right after it, right-padded to `R`.
    /// Returns the batch and `P`.
    pub fn prompt_response(pairs: &[(&[u32], &[u32])], pad: u32) -> (Self, usize) {
        let p = pairs.iter().map(|(a, _)| a.len()).max().unwrap_or(0);
        let r = pairs.iter().map(|(_, b)| b.len()).max().unwrap_or(0);
        let mut b = Self::empty(pairs.len(), p + r, pad);
        for (i, (prompt, response)) in pairs.iter().enumerate() {
            let start = p - prompt.len();
            b.place(i, start, prompt, 0);
            b.place(i, p, response, prompt.len() as u32);
        }
        (b, p)
    }

    fn empty(n: usize, t: usize, pad: u32) -> Self {
        Self {
            n,
            t,
            tokens: vec![pad; n * t],
            positions: vec![0; n * t],
            valid: vec![false; n * t],
        }
    }

    fn place(&mut self, row: usize, col: usize, ids: &[u32], first_position: u32) {
        for (k, &id) in ids.iter().enumerate() {
            let at = row * self.t + col + k;
            self.tokens[at] = id;
            self.positions[at] = first_position + k as u32;
            self.valid[at] = true;
        }
    }

    /// Uploads to `device`.
    pub fn to_input(&self, device: &Device) -> SeqInput {
        let shape = [self.n, self.t];
        let tokens: Vec<i64> = self.tokens.iter().map(|&x| x as i64).collect();
        let positions: Vec<i64> = self.positions.iter().map(|&x| x as i64).collect();
        SeqInput {
            tokens: Tensor::from_data(TensorData::new(tokens, shape), device),
            positions: Tensor::from_data(TensorData::new(positions, shape), device),
            key_valid: Tensor::from_data(TensorData::new(self.valid.clone(), shape), device),
        }
    }
}

/// Everything an objective needs about a batch of completions, as `[n, T-1]` tensors on
/// the training device. Column `j` scores the token at column `j + 1` of the input.
#[derive(Debug, Clone)]
pub struct PolicyBatch {
    /// The model input.
    pub input: SeqInput,
    /// Target ids `tokens[:, 1:]`.
    pub targets: Tensor<B, 2, Int>,
    /// 1.0 where the target is a response token, else 0.0.
    pub mask: Tensor<B, 2>,
    /// Per-token advantages (0 outside the response).
    pub advantages: Tensor<B, 2>,
    /// Per-token log-probs under the behaviour policy `π_old` (detached).
    pub old_logprobs: Option<Tensor<B, 2>>,
    /// Per-token log-probs under the frozen reference `π_ref` (detached).
    pub ref_logprobs: Option<Tensor<B, 2>>,
    /// Rows.
    pub n: usize,
    /// Target columns (`T - 1`).
    pub width: usize,
    /// Response length of each row, in tokens.
    pub response_lengths: Vec<usize>,
    /// The longest response the sampler could produce (Dr.GRPO's constant normaliser).
    pub max_response_tokens: usize,
    /// Fraction of correct completions in each row's group (APO's difficulty is one minus
    /// it); empty when the rows did not come from scored groups (SFT).
    pub group_accuracy: Vec<f32>,
    /// Which group (prompt) each row belongs to: rows with the same id answer the same
    /// prompt (objectives that compare responses within a group: D²O, AFT); empty when
    /// the stage did not record groups.
    pub group_ids: Vec<usize>,
}

/// Host-side pieces of a [`PolicyBatch`]: built once, uploaded once.
#[derive(Debug, Clone)]
pub struct HostPolicyBatch {
    pub seqs: SeqBatch,
    pub prompt_width: usize,
    pub mask: Vec<f32>,
    pub advantages: Vec<f32>,
    pub response_lengths: Vec<usize>,
    /// See [`PolicyBatch::group_accuracy`].
    pub group_accuracy: Vec<f32>,
    /// See [`PolicyBatch::group_ids`].
    pub group_ids: Vec<usize>,
}

impl HostPolicyBatch {
    /// Packs `(prompt, response, per-token advantage)` rows.
    pub fn new(rows: &[(&[u32], &[u32], Vec<f32>)], pad: u32) -> Self {
        let pairs: Vec<(&[u32], &[u32])> = rows.iter().map(|(p, r, _)| (*p, *r)).collect();
        let (seqs, p) = SeqBatch::prompt_response(&pairs, pad);
        let w = seqs.t.saturating_sub(1);
        let mut mask = vec![0.0; seqs.n * w];
        let mut adv = vec![0.0; seqs.n * w];
        for (i, (_, response, a)) in rows.iter().enumerate() {
            for k in 0..response.len() {
                // response token k sits at column p + k and is predicted at column p + k - 1
                let col = p + k - 1;
                mask[i * w + col] = 1.0;
                adv[i * w + col] = a.get(k).copied().unwrap_or(0.0);
            }
        }
        Self {
            response_lengths: rows.iter().map(|(_, r, _)| r.len()).collect(),
            seqs,
            prompt_width: p,
            mask,
            advantages: adv,
            group_accuracy: Vec::new(),
            group_ids: Vec::new(),
        }
    }

    /// Records the group (prompt) of each row (one id per row).
    pub fn with_group_ids(mut self, ids: Vec<usize>) -> Self {
        assert_eq!(ids.len(), self.seqs.n, "one group id per row");
        self.group_ids = ids;
        self
    }

    /// Records the accuracy of each row's group (one value per row).
    pub fn with_group_accuracy(mut self, accuracy: Vec<f32>) -> Self {
        assert_eq!(accuracy.len(), self.seqs.n, "one group accuracy per row");
        self.group_accuracy = accuracy;
        self
    }

    /// Uploads to `device` (the training device for a batch that will be differentiated).
    pub fn to_device(&self, device: &Device, max_response_tokens: usize) -> PolicyBatch {
        let input = self.seqs.to_input(device);
        let n = self.seqs.n;
        let w = self.seqs.t.saturating_sub(1);
        let targets = input.tokens.clone().slice([0..n, 1..self.seqs.t]);
        PolicyBatch {
            targets,
            mask: Tensor::from_data(TensorData::new(self.mask.clone(), [n, w]), device),
            advantages: Tensor::from_data(TensorData::new(self.advantages.clone(), [n, w]), device),
            input,
            old_logprobs: None,
            ref_logprobs: None,
            n,
            width: w,
            response_lengths: self.response_lengths.clone(),
            max_response_tokens,
            group_accuracy: self.group_accuracy.clone(),
            group_ids: self.group_ids.clone(),
        }
    }
}

/// Rows `part` of `parts` takes out of `n`: consecutive, boundaries at ⌊part·n/parts⌋, so
/// sizes differ by at most one; empty when there are fewer rows than parts. Shared by
/// data-parallel training (`foil-trainers`) and the `local` sampler's decode groups.
pub fn shard_rows(n: usize, parts: usize, part: usize) -> std::ops::Range<usize> {
    part * n / parts..(part + 1) * n / parts
}

/// Per-token log-probabilities of `targets` under `logits` (`[n, T, V]`, of which the
/// first `T-1` columns are used): `log_softmax(logits)[.., targets]`.
pub fn token_logprobs(logits: Tensor<B, 3>, targets: Tensor<B, 2, Int>) -> Tensor<B, 2> {
    let [n, t, v] = logits.dims();
    let w = t - 1;
    let lsm = burn::tensor::activation::log_softmax(logits.slice([0..n, 0..w, 0..v]), 2);
    lsm.gather(2, targets.unsqueeze_dim(2)).squeeze_dim(2)
}

/// Per-token entropy `H_t = −Σ_v p_v log p_v` of the first `T-1` columns of `logits`.
pub fn token_entropy(logits: Tensor<B, 3>) -> Tensor<B, 2> {
    let [n, t, v] = logits.dims();
    let lsm = burn::tensor::activation::log_softmax(logits.slice([0..n, 0..t - 1, 0..v]), 2);
    (lsm.clone().exp() * lsm)
        .sum_dim(2)
        .squeeze_dim::<2>(2)
        .neg()
}

/// `f` applied to the values of `t` as `f32`s, without the second copy [`to_vec`] makes
/// when the tensor's bytes cannot become a `Vec<f32>` (a buffer the model also holds,
/// which flex copies out as a byte vector): for a tensor read only to be repacked.
pub fn with_values<const D: usize, R>(t: Tensor<B, D>, f: impl FnOnce(&[f32]) -> R) -> R {
    let data = t.into_data().convert::<f32>();
    match data.as_slice::<f32>() {
        Ok(values) => f(values),
        Err(_) => f(&data.into_vec::<f32>().expect("float tensor data")),
    }
}

/// Reads a float tensor back as a `Vec<f32>`.
pub fn to_vec<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("float tensor data")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `with_values` sees what `to_vec` returns: for a tensor another handle shares (the
    /// case it exists for), for a non-contiguous one, and for a bf16 one (converted).
    #[test]
    fn with_values_reads_what_to_vec_reads() {
        let device = crate::backend::parse_device("cpu").unwrap();
        let v: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 2.0).collect();
        let t = Tensor::<B, 2>::from_data(TensorData::new(v.clone(), [3, 4]), &device);
        let shared = t.clone();
        assert_eq!(with_values(t.clone(), |s| s.to_vec()), v);
        assert_eq!(
            with_values(t.clone().transpose(), |s| s.to_vec()),
            to_vec(t.clone().transpose())
        );
        let half = t.cast(burn::tensor::DType::BF16);
        assert_eq!(with_values(half.clone(), |s| s.to_vec()), to_vec(half));
        assert_eq!(to_vec(shared), v);
    }

    #[test]
    fn prompt_response_layout_matches_the_diagram() {
        // prompts of length 2 and 3, responses of length 2 and 1 → P = 3, R = 2, T = 5
        let (b, p) = SeqBatch::prompt_response(&[(&[1, 2], &[7, 8]), (&[3, 4, 5], &[9])], 0);
        assert_eq!(p, 3);
        assert_eq!(b.tokens, vec![0, 1, 2, 7, 8, 3, 4, 5, 9, 0]);
        assert_eq!(b.positions, vec![0, 0, 1, 2, 3, 0, 1, 2, 3, 0]);
        assert_eq!(
            b.valid,
            vec![false, true, true, true, true, true, true, true, true, false]
        );
    }

    #[test]
    fn response_mask_marks_the_columns_that_predict_response_tokens() {
        let rows = vec![
            (&[1u32, 2][..], &[7u32, 8][..], vec![0.5, 0.25]),
            (&[3, 4, 5][..], &[9][..], vec![-1.0]),
        ];
        let h = HostPolicyBatch::new(&rows, 0);
        // width T-1 = 4; row 0 response tokens at columns 3,4 → predicted at 2,3
        assert_eq!(h.mask, vec![0., 0., 1., 1., 0., 0., 1., 0.]);
        assert_eq!(h.advantages, vec![0., 0., 0.5, 0.25, 0., 0., -1.0, 0.]);
        assert_eq!(h.response_lengths, vec![2, 1]);
    }
}
