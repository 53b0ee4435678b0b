//! The matrix-factorisation model of Rel-MF (Saito et al. 2020; `../shared/docs/methods.md`
//! §19, [code] `PointwiseRecommender`):
//!
//! ```text
//! ŷ_ui = σ(u_u · v_i)        U ∈ R^{users × dim}, V ∈ R^{items × dim}
//! ```
//!
//! No biases (as the code). Initial factors are `N(0, init_std²)` drawn on the host from a
//! seeded generator, so every backend starts from the same numbers [recon: the code uses
//! TensorFlow's default initialiser].

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData, activation};
use rand::Rng;
use rand_distr::{Distribution, Normal};

/// User and item factors.
#[derive(Module, Debug)]
pub struct Mf<B: Backend> {
    pub users: Param<Tensor<B, 2>>,
    pub items: Param<Tensor<B, 2>>,
}

fn normal_matrix<B: Backend>(
    rows: usize,
    cols: usize,
    std: f64,
    rng: &mut impl Rng,
    device: &B::Device,
) -> anyhow::Result<Tensor<B, 2>> {
    let n = Normal::new(0.0, std)?;
    let v: Vec<f32> = (0..rows * cols).map(|_| n.sample(rng) as f32).collect();
    Ok(Tensor::from_data(TensorData::new(v, [rows, cols]), device))
}

impl<B: Backend> Mf<B> {
    /// Factors `N(0, init_std²)` from `rng`, on `device`.
    pub fn init(
        users: usize,
        items: usize,
        dim: usize,
        init_std: f64,
        rng: &mut impl Rng,
        device: &B::Device,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            dim >= 1 && init_std.is_finite() && init_std > 0.0,
            "relmf model: need dim ≥ 1 and init_std > 0, got dim {dim}, init_std {init_std}"
        );
        Ok(Self {
            users: Param::from_tensor(normal_matrix(users, dim, init_std, rng, device)?),
            items: Param::from_tensor(normal_matrix(items, dim, init_std, rng, device)?),
        })
    }

    /// `ŷ = σ(u_u · v_i)` for the pairs `(users[j], items[j])`, `[n]`.
    pub fn predict(&self, users: Tensor<B, 1, Int>, items: Tensor<B, 1, Int>) -> Tensor<B, 1> {
        let u = self.users.val().select(0, users);
        let v = self.items.val().select(0, items);
        activation::sigmoid((u * v).sum_dim(1).squeeze_dim::<1>(1))
    }

    /// `U Vᵀ`, the logits of every pair, `[users, items]` (ranking by them is ranking by ŷ).
    pub fn scores(&self) -> Tensor<B, 2> {
        self.users.val().matmul(self.items.val().transpose())
    }

    /// `‖U‖² + ‖V‖²` (squared Frobenius norms), `[1]`.
    pub fn squared_norm(&self) -> Tensor<B, 1> {
        self.users.val().powi_scalar(2).sum() + self.items.val().powi_scalar(2).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use foil_core::backend::{B, parse_device};

    #[test]
    fn prediction_is_the_sigmoid_of_the_dot_product() {
        let device = parse_device("cpu").unwrap();
        let t = |v: Vec<f32>, r: usize, c: usize| {
            Param::from_tensor(Tensor::<B, 2>::from_data(
                TensorData::new(v, [r, c]),
                &device,
            ))
        };
        // u_0 = (1, 0), u_1 = (0.5, 2); v_0 = (2, 1), v_1 = (0, −1)
        let m = Mf::<B> {
            users: t(vec![1.0, 0.0, 0.5, 2.0], 2, 2),
            items: t(vec![2.0, 1.0, 0.0, -1.0], 2, 2),
        };
        // pairs (0,0): 2 → σ(2) = 0.880797; (1,1): −2 → σ(−2) = 0.119203; (1,0): 1 + 2 = 3
        let idx = |v: Vec<i64>| Tensor::<B, 1, Int>::from_data(TensorData::new(v, [3]), &device);
        let y: Vec<f32> = m
            .predict(idx(vec![0, 1, 1]), idx(vec![0, 1, 0]))
            .into_data()
            .to_vec()
            .unwrap();
        let want = [0.880_797, 0.119_203, 0.952_574];
        for (a, b) in y.iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{y:?}");
        }
        // U Vᵀ = [[2, 0], [3, −2]]; ‖U‖² + ‖V‖² = (1 + 0.25 + 4) + (4 + 1 + 1) = 11.25
        let s: Vec<f32> = m.scores().into_data().to_vec().unwrap();
        assert_eq!(s, vec![2.0, 0.0, 3.0, -2.0]);
        let n: Vec<f32> = m.squared_norm().into_data().to_vec().unwrap();
        assert!((n[0] - 11.25).abs() < 1e-6);
    }
}
