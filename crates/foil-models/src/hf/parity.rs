//! Logit parity with Hugging Face transformers on a fixture checkpoint (written by
//! `scripts/fixtures/make_hf_fixtures.py`): a left-padded batch through the full forward
//! pass, then greedy decoding with the KV cache, compared with what transformers computed
//! on the same weights (`expected.json`). Used by the test suite on the CPU and by
//! `foil selftest` on any device, so a GPU build can be checked where it runs.

use std::path::Path;

use anyhow::Context;
use burn::tensor::{Int, Tensor, TensorData};
use foil_core::backend::{B, Device};
use foil_core::batch::{SeqBatch, to_vec};
use serde_json::Value;

use super::{HfConfig, HfDecoder, weights};
use crate::host::HostModel;

/// What one fixture gave.
#[derive(Debug, Clone, PartialEq)]
pub struct Parity {
    /// Max |ours − transformers| over the real positions of the padded batch.
    pub forward_max_diff: f32,
    /// Max |ours − transformers| over the logits of every decode step, of both decode
    /// paths: burn's (GPUs) and the host's (`crate::host::decoder`, CPUs).
    pub decode_max_diff: f32,
    /// The same for the host path alone.
    pub host_decode_max_diff: f32,
    /// Greedy decode steps compared.
    pub steps: usize,
    /// The first (row, step) where our greedy token differs on either path, if any.
    pub first_token_mismatch: Option<(usize, usize)>,
    /// Over every step where our greedy token differs, the largest margin by which
    /// transformers' logits preferred their token to ours: `ℓ_ref[theirs] − ℓ_ref[ours]`.
    pub mismatch_margin: Option<f32>,
}

impl Parity {
    /// Whether both maxima are below `tol` and every greedy token agrees, except at
    /// near-ties that the tolerance itself allows: when each of our logits is within `tol`
    /// of transformers', our argmax can differ from theirs only where their margin is below
    /// `2·tol`, so such a flip is the logit error already bounded, not a second one. (On a
    /// GPU, burn's f32 matmuls run as TF32, and the ~1e-2 logit error flips near-ties.)
    pub fn holds(&self, tol: f32) -> bool {
        self.forward_max_diff < tol
            && self.decode_max_diff < tol
            && self.mismatch_margin.is_none_or(|m| m < 2.0 * tol)
    }
}

struct Expected {
    vocab: usize,
    rows: Vec<Vec<u32>>,
    t: usize,
    logits: Vec<f32>,
    generated: Vec<Vec<u32>>,
    step_logits: Vec<f32>,
}

fn ints(v: &Value, what: &str) -> anyhow::Result<Vec<Vec<u32>>> {
    v.as_array()
        .with_context(|| format!("`{what}` is not a list"))?
        .iter()
        .map(|r| {
            r.as_array()
                .with_context(|| format!("`{what}` is not a list of lists"))?
                .iter()
                .map(|x| {
                    x.as_u64()
                        .map(|x| x as u32)
                        .with_context(|| format!("`{what}` holds a non-integer"))
                })
                .collect()
        })
        .collect()
}

fn floats(v: &Value, what: &str) -> anyhow::Result<Vec<f32>> {
    v.as_array()
        .with_context(|| format!("`{what}` is not a list"))?
        .iter()
        .map(|x| {
            x.as_f64()
                .map(|x| x as f32)
                .with_context(|| format!("`{what}` holds a non-number"))
        })
        .collect()
}

fn expected(dir: &Path) -> anyhow::Result<Expected> {
    let path = dir.join("expected.json");
    let j: Value = serde_json::from_str(
        &std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
    )
    .with_context(|| format!("{} is not valid JSON", path.display()))?;
    let tokens = ints(&j["tokens"], "tokens")?;
    let mask = ints(&j["mask"], "mask")?;
    let rows = tokens
        .iter()
        .zip(&mask)
        .map(|(t, m)| {
            t.iter()
                .zip(m)
                .filter(|(_, m)| **m == 1)
                .map(|(t, _)| *t)
                .collect()
        })
        .collect();
    let vocab = j["vocab"].as_u64().context("`vocab` missing")? as usize;
    let generated = ints(&j["generated"], "generated")?;
    anyhow::ensure!(
        generated.iter().flatten().all(|&g| (g as usize) < vocab),
        "{}: a `generated` token is outside the vocabulary of {vocab}",
        path.display()
    );
    Ok(Expected {
        vocab,
        t: tokens.first().map_or(0, Vec::len),
        rows,
        logits: floats(&j["logits"], "logits")?,
        generated,
        step_logits: floats(&j["step_logits"], "step_logits")?,
    })
}

/// Largest `|a − b|`; a NaN on either side counts as an infinite difference (`f32::max`
/// would skip it).
fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let d = (x - y).abs();
            if d.is_nan() { f32::INFINITY } else { d }
        })
        .fold(0.0, f32::max)
}

/// Loads the fixture checkpoint in `dir` on `device` and compares it with transformers.
pub fn check_fixture(dir: &Path, device: &Device) -> anyhow::Result<Parity> {
    let config = HfConfig::from_dir(dir)?;
    let model = HfDecoder::<B>::init(&config, 64, device);
    let model = weights::load_safetensors(model, &weights::checkpoint_files(dir)?)?;
    let e = expected(dir)?;
    let v = e.vocab;

    let batch = SeqBatch::left_padded(&e.rows, 0);
    anyhow::ensure!(batch.t == e.t, "fixture rows do not match their mask");
    let input = batch.to_input(device);
    let got = to_vec(model.forward(
        input.tokens.clone(),
        input.positions.clone(),
        input.key_valid.clone(),
    ));
    let mut forward = 0f32;
    for (r, row) in e.rows.iter().enumerate() {
        for c in e.t - row.len()..e.t {
            let at = (r * e.t + c) * v;
            forward = forward.max(max_diff(&got[at..at + v], &e.logits[at..at + v]));
        }
    }

    let (logits, mut cache) = model.prefill(input.tokens, input.positions, input.key_valid);
    let (burn_diff, burn_mismatch, burn_margin) =
        greedy_against(&e, to_vec(logits), |next, pos| {
            let n = next.len();
            let tt = Tensor::<B, 2, Int>::from_data(TensorData::new(next, [n, 1]), device);
            let pp = Tensor::<B, 2, Int>::from_data(TensorData::new(pos, [n, 1]), device);
            to_vec(model.decode(&mut cache, tt, pp))
        });
    let host = model.to_host();
    let widen = |v: &[u32]| v.iter().map(|&x| x as i64).collect::<Vec<_>>();
    let (tokens, positions) = (widen(&batch.tokens), widen(&batch.positions));
    let (logits, mut cache) = host.prefill(&tokens, &positions, &batch.valid, batch.n);
    let (host_diff, host_mismatch, host_margin) =
        greedy_against(&e, logits, |next, pos| host.decode(&mut cache, &next, &pos));
    let steps = e.generated.first().map_or(0, Vec::len);
    Ok(Parity {
        forward_max_diff: forward,
        decode_max_diff: burn_diff.max(host_diff),
        host_decode_max_diff: host_diff,
        steps,
        first_token_mismatch: burn_mismatch.or(host_mismatch),
        mismatch_margin: match (burn_margin, host_margin) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        },
    })
}

/// Greedy decoding from the prefill's logits `first`, fed transformers' tokens (so that
/// one flipped near-tie does not cascade); `step(tokens, positions)` decodes one column.
/// Returns the largest logit difference, the first (row, step) whose argmax differs, and
/// the largest reference margin `want[theirs] − want[ours]` over the differing steps.
fn greedy_against(
    e: &Expected,
    first: Vec<f32>,
    mut step: impl FnMut(Vec<i64>, Vec<i64>) -> Vec<f32>,
) -> (f32, Option<(usize, usize)>, Option<f32>) {
    let (n, v) = (e.rows.len(), e.vocab);
    let steps = e.generated.first().map_or(0, Vec::len);
    let (mut logits, mut diff, mut mismatch) = (first, 0f32, None);
    let mut margin: Option<f32> = None;
    for s in 0..steps {
        let want = &e.step_logits[s * n * v..(s + 1) * n * v];
        diff = diff.max(max_diff(&logits, want));
        let mut next = Vec::with_capacity(n);
        for r in 0..n {
            let row = &logits[r * v..(r + 1) * v];
            let ours = (0..v)
                .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                .unwrap_or(0);
            let theirs = e.generated[r][s];
            if ours as u32 != theirs {
                mismatch.get_or_insert((r, s));
                let reference = &want[r * v..(r + 1) * v];
                let m = reference[theirs as usize] - reference[ours];
                margin = Some(margin.map_or(m, |old| old.max(m)));
            }
            next.push(theirs as i64);
        }
        if s + 1 < steps {
            let pos: Vec<i64> = e.rows.iter().map(|p| (p.len() + s) as i64).collect();
            logits = step(next, pos);
        }
    }
    (diff, mismatch, margin)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One row, vocabulary 3, two greedy steps. Transformers' step logits: step 0
    /// `[0, 1.000, 0.995]` → token 1 (margin over token 2: 0.005), step 1 `[2, 0, 0]` →
    /// token 0.
    fn expected() -> Expected {
        Expected {
            vocab: 3,
            rows: vec![vec![1]],
            t: 1,
            logits: vec![],
            generated: vec![vec![1, 0]],
            step_logits: vec![0.0, 1.0, 0.995, 2.0, 0.0, 0.0],
        }
    }

    fn parity(decode: (f32, Option<(usize, usize)>, Option<f32>)) -> Parity {
        Parity {
            forward_max_diff: 0.0,
            decode_max_diff: decode.0,
            host_decode_max_diff: decode.0,
            steps: 2,
            first_token_mismatch: decode.1,
            mismatch_margin: decode.2,
        }
    }

    #[test]
    fn a_flipped_near_tie_is_within_the_tolerance_and_a_real_flip_is_not() {
        let e = expected();
        // ours at step 0: [0, 0.990, 1.000] → token 2; |Δ| = max(0.010, 0.005) = 0.010;
        // the reference margin of their token 1 over our token 2 is 1.000 − 0.995 = 0.005
        let near = greedy_against(&e, vec![0.0, 0.99, 1.0], |_, _| vec![2.0, 0.0, 0.0]);
        assert_eq!(near.1, Some((0, 0)));
        assert!((near.0 - 0.010).abs() < 1e-6, "{near:?}");
        assert!((near.2.unwrap() - 0.005).abs() < 1e-6, "{near:?}");
        // tol 2e-2: logits within it, and a flip at a margin under 2·tol is allowed
        assert!(parity(near).holds(2e-2));
        // tol 2e-3: the logits already exceed it
        assert!(!parity(near).holds(2e-3));
        // step 1 flipped where transformers preferred token 0 by 2.0: never allowed
        let far = greedy_against(&e, vec![0.0, 1.0, 0.995], |_, _| vec![0.0, 2.1, 0.0]);
        assert_eq!(far.1, Some((0, 1)));
        assert!((far.2.unwrap() - 2.0).abs() < 1e-6, "{far:?}");
        assert!(!parity((0.0, far.1, far.2)).holds(2e-2));
        // no flip, no margin
        let same = greedy_against(&e, vec![0.0, 1.0, 0.995], |_, _| vec![2.0, 0.0, 0.0]);
        assert_eq!((same.1, same.2), (None, None));
        assert!(parity(same).holds(1e-4));
        // a NaN logit is an infinite difference, not a skipped one
        let nan = greedy_against(&e, vec![0.0, 1.0, 0.995], |_, _| vec![2.0, f32::NAN, 0.0]);
        assert_eq!(nan.0, f32::INFINITY);
        assert!(!parity(nan).holds(1.0));
    }
}
