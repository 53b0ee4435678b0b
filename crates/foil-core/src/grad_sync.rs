//! Gradient synchronisation for data-parallel training.
//!
//! Data parallelism (as in PyTorch DDP / Horovod): `W` replicas of the policy, each with
//! the same weights and optimizer state, each computes the gradient of its own shard's loss
//! `g_w = ∇_θ L(shard_w)`; the gradients are all-reduced to their mean
//! `ḡ = (1/W) Σ_w g_w`, and every replica applies the same optimizer step with `ḡ`, so the
//! replicas stay identical. When `L` is a per-token mean and every shard holds the same
//! number of loss tokens, `(1/W) Σ_w L(shard_w)` is exactly the loss of the whole batch and
//! `ḡ` its gradient (linearity of the gradient); with unequal token counts `ḡ` is the
//! gradient of the mean of the shard losses (what DDP computes as well). foil's stages do
//! not rely on that case: `foil-trainers`' `data_parallel.rs` evaluates the loss once on
//! the whole batch and has each replica back-propagate its rows' share of `∂L/∂logπ`, so
//! the mean computed here is exactly the whole batch's gradient for any objective.
//!
//! [`GradientSync`] is what a policy's [`Policy::step_synced`](crate::Policy::step_synced)
//! calls once per gradient tensor, in the same order on every replica.
//! [`ThreadAllReduce`] is the in-process implementation over std threads (one peer handle
//! per worker thread, tensors averaged on the host); `foil-distributed`'s
//! `CollectiveAllReduce` (feature `collective`) does the same through `burn-collective`,
//! which also reaches other machines.

use std::sync::{Arc, Condvar, Mutex};

use burn::tensor::{Tensor, TensorData};

use crate::backend::B;

/// One peer's handle on a group that averages tensors across `world_size` replicas.
///
/// Every peer must call [`GradientSync::all_reduce_mean`] the same number of times with
/// tensors of the same lengths in the same order; each call returns the element-wise mean
/// over the peers, the same on every peer.
pub trait GradientSync: Send {
    /// This peer's index in `0..world_size`.
    fn rank(&self) -> usize;
    /// Number of peers.
    fn world_size(&self) -> usize;
    /// Element-wise mean of `grad` over all peers (blocks until every peer has called).
    fn all_reduce_mean(&mut self, grad: Tensor<B, 1>) -> anyhow::Result<Tensor<B, 1>>;
}

/// In-process all-reduce over std threads: `W` peer handles sharing a mutex-guarded
/// accumulator. The last peer to arrive divides the sum by `W` and wakes the others; all
/// get the same host vector back (as a tensor on their own device and dtype).
///
/// A peer that is dropped (its worker failed or returned early) makes every pending and
/// later call of the others fail with an error instead of waiting forever.
pub struct ThreadAllReduce {
    rank: usize,
    shared: Arc<Shared>,
}

struct Shared {
    world: usize,
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    /// Completed reductions so far.
    generation: u64,
    /// Peers that have contributed to the reduction in progress.
    arrived: usize,
    /// Running element-wise sum of the reduction in progress.
    sum: Vec<f32>,
    /// Result of the last completed reduction.
    result: Arc<Vec<f32>>,
    /// Peers whose handle was dropped.
    left: usize,
    /// Set on a length mismatch: every later call fails with it.
    failed: Option<String>,
}

impl ThreadAllReduce {
    /// The `world` peer handles of a new group, rank 0 first. Hand one to each worker.
    pub fn group(world: usize) -> anyhow::Result<Vec<ThreadAllReduce>> {
        anyhow::ensure!(world >= 1, "an all-reduce group needs at least one peer");
        let shared = Arc::new(Shared {
            world,
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        Ok((0..world)
            .map(|rank| ThreadAllReduce {
                rank,
                shared: shared.clone(),
            })
            .collect())
    }

    /// The mean over the peers of `values`, on the host.
    pub fn all_reduce_mean_host(&self, values: &[f32]) -> anyhow::Result<Arc<Vec<f32>>> {
        let sh = &*self.shared;
        let mut st = sh.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = &st.failed {
            anyhow::bail!("all-reduce failed earlier: {e}");
        }
        if st.left > 0 {
            anyhow::bail!(
                "all-reduce: {} of {} peers left the group (their worker stopped)",
                st.left,
                sh.world
            );
        }
        if st.arrived == 0 {
            st.sum = values.to_vec();
        } else if st.sum.len() != values.len() {
            let e = format!(
                "peer {} sent {} values, an earlier peer {} (peers must reduce the same \
                 tensors in the same order)",
                self.rank,
                values.len(),
                st.sum.len()
            );
            st.failed = Some(e.clone());
            sh.wake.notify_all();
            anyhow::bail!("all-reduce: {e}");
        } else {
            for (s, v) in st.sum.iter_mut().zip(values) {
                *s += v;
            }
        }
        st.arrived += 1;
        if st.arrived == sh.world {
            let w = sh.world as f32;
            let mean: Vec<f32> = std::mem::take(&mut st.sum)
                .into_iter()
                .map(|s| s / w)
                .collect();
            st.result = Arc::new(mean);
            st.arrived = 0;
            st.generation += 1;
            sh.wake.notify_all();
            return Ok(st.result.clone());
        }
        let generation = st.generation;
        loop {
            st = sh.wake.wait(st).unwrap_or_else(|p| p.into_inner());
            // completed: the result stays in place until this peer joins the next one
            if st.generation != generation {
                return Ok(st.result.clone());
            }
            if let Some(e) = &st.failed {
                anyhow::bail!("all-reduce: {e}");
            }
            if st.left > 0 {
                anyhow::bail!(
                    "all-reduce: {} of {} peers left the group while peer {} waited",
                    st.left,
                    sh.world,
                    self.rank
                );
            }
        }
    }
}

impl GradientSync for ThreadAllReduce {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.shared.world
    }

    fn all_reduce_mean(&mut self, grad: Tensor<B, 1>) -> anyhow::Result<Tensor<B, 1>> {
        if self.shared.world == 1 {
            return Ok(grad);
        }
        let device = grad.device();
        let dtype = grad.dtype();
        let values = crate::batch::to_vec(grad);
        let mean = self.all_reduce_mean_host(&values)?;
        let n = mean.len();
        let t = Tensor::<B, 1>::from_data(TensorData::new(mean.to_vec(), [n]), &device);
        Ok(if t.dtype() == dtype { t } else { t.cast(dtype) })
    }
}

impl Drop for ThreadAllReduce {
    fn drop(&mut self) {
        let mut st = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
        st.left += 1;
        self.shared.wake.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::parse_device;

    fn tensor(v: &[f32]) -> Tensor<B, 1> {
        let d = parse_device("cpu").unwrap();
        Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), &d)
    }

    #[test]
    fn two_peers_both_get_the_mean() {
        // peer 0 sends [1, 3], peer 1 sends [3, 5]: mean = [(1+3)/2, (3+5)/2] = [2, 4]
        let peers = ThreadAllReduce::group(2).unwrap();
        let inputs = [[1.0f32, 3.0], [3.0, 5.0]];
        let out: Vec<Vec<f32>> = std::thread::scope(|s| {
            let handles: Vec<_> = peers
                .into_iter()
                .zip(inputs)
                .map(|(mut p, x)| {
                    s.spawn(move || crate::batch::to_vec(p.all_reduce_mean(tensor(&x)).unwrap()))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(out, vec![vec![2.0, 4.0], vec![2.0, 4.0]]);
    }

    #[test]
    fn repeated_reductions_keep_their_order() {
        // three peers, two rounds: round 1 sends rank r → [r], mean (0+1+2)/3 = 1;
        // round 2 sends [10r, 1], mean [(0+10+20)/3, 1] = [10, 1]
        let peers = ThreadAllReduce::group(3).unwrap();
        let out: Vec<(Vec<f32>, Vec<f32>)> = std::thread::scope(|s| {
            let handles: Vec<_> = peers
                .into_iter()
                .map(|mut p| {
                    s.spawn(move || {
                        let r = p.rank() as f32;
                        let a = crate::batch::to_vec(p.all_reduce_mean(tensor(&[r])).unwrap());
                        let b = crate::batch::to_vec(
                            p.all_reduce_mean(tensor(&[10.0 * r, 1.0])).unwrap(),
                        );
                        (a, b)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (a, b) in out {
            assert_eq!(a, vec![1.0]);
            assert_eq!(b, vec![10.0, 1.0]);
        }
    }

    #[test]
    fn a_peer_that_leaves_fails_the_others_instead_of_hanging() {
        let mut peers = ThreadAllReduce::group(2).unwrap();
        let mut p0 = peers.remove(0);
        let p1 = peers.remove(0);
        let err = std::thread::scope(|s| {
            let h = s.spawn(move || p0.all_reduce_mean(tensor(&[1.0])));
            std::thread::sleep(std::time::Duration::from_millis(50));
            drop(p1);
            h.join().unwrap()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("left the group"), "{err}");
    }

    #[test]
    fn mismatched_lengths_are_an_error() {
        let peers = ThreadAllReduce::group(2).unwrap();
        let results: Vec<anyhow::Result<Tensor<B, 1>>> = std::thread::scope(|s| {
            let handles: Vec<_> = peers
                .into_iter()
                .map(|mut p| {
                    s.spawn(move || {
                        let v = vec![1.0; 1 + p.rank()];
                        p.all_reduce_mean(tensor(&v))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        // whichever peer arrives second sees the mismatch; the other is woken with it
        for r in results {
            let e = r.unwrap_err().to_string();
            assert!(e.contains("same tensors in the same order"), "{e}");
        }
    }

    #[test]
    fn a_group_of_zero_is_an_error() {
        assert!(ThreadAllReduce::group(0).is_err());
    }
}
