//! Rotary position embeddings (Su et al. 2021, RoFormer) in the Hugging Face layout.
//!
//! ```text
//! θ_i   = base^(−2i/d)                 i = 0 … d/2−1   (then rescaled, see below)
//! φ_p   = [p·θ_0 … p·θ_{d/2−1}, p·θ_0 … p·θ_{d/2−1}]   (halves, not interleaved)
//! x'    = x ⊙ cos φ_p + rotate_half(x) ⊙ sin φ_p,   rotate_half([a, b]) = [−b, a]
//! ```
//!
//! `p` is each token's own position (its index among its row's real tokens), so left- and
//! right-padded rows rotate exactly as unpadded ones do. Rescaling:
//! - linear: `θ_i / factor`;
//! - llama3 (`_compute_llama3_parameters` in transformers): with wavelength `λ_i = 2π/θ_i`,
//!   `L = original_max_position_embeddings`, keep `θ_i` where `λ_i < L/high_freq_factor`,
//!   use `θ_i/factor` where `λ_i > L/low_freq_factor`, and in between
//!   `(1−s)·θ_i/factor + s·θ_i` with `s = (L/λ_i − low_freq_factor)/(high_freq_factor − low_freq_factor)`.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use super::config::{HfConfig, RopeScaling};

/// The `d/2` inverse frequencies `θ_i`, computed in f32 as transformers does.
pub fn inv_freq(config: &HfConfig) -> Vec<f32> {
    let d = config.head_dim;
    let base = config.rope_theta as f32;
    let raw: Vec<f32> = (0..d / 2)
        .map(|i| 1.0 / base.powf((2 * i) as f32 / d as f32))
        .collect();
    match config.rope_scaling {
        RopeScaling::Default => raw,
        RopeScaling::Linear { factor } => raw.iter().map(|f| f / factor as f32).collect(),
        RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings,
        } => {
            let (factor, low, high, old) = (
                factor as f32,
                low_freq_factor as f32,
                high_freq_factor as f32,
                original_max_position_embeddings as f32,
            );
            let low_wavelen = old / low;
            let high_wavelen = old / high;
            raw.iter()
                .map(|&f| {
                    let wavelen = 2.0 * std::f32::consts::PI / f;
                    if wavelen < high_wavelen {
                        f
                    } else if wavelen > low_wavelen {
                        f / factor
                    } else {
                        let s = (old / wavelen - low) / (high - low);
                        (1.0 - s) * f / factor + s * f
                    }
                })
                .collect()
        }
    }
}

/// `cos φ_p` and `sin φ_p` for positions `0..len`, each `[len, d]`.
pub fn tables<B: Backend>(
    inv_freq: &[f32],
    len: usize,
    device: &B::Device,
) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let half = inv_freq.len();
    let mut cos = Vec::with_capacity(len * 2 * half);
    let mut sin = Vec::with_capacity(len * 2 * half);
    for p in 0..len {
        for _ in 0..2 {
            for &f in inv_freq {
                // f32 product, then cos/sin, like torch's float32 path
                let a = p as f32 * f;
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }
    }
    (
        Tensor::from_data(TensorData::new(cos, [len, 2 * half]), device),
        Tensor::from_data(TensorData::new(sin, [len, 2 * half]), device),
    )
}

/// `cos φ_p` and `sin φ_p` for positions `0..len` (`[len, d]`) and `rotate_half` as a
/// signed permutation matrix `R` `[d, d]` (`x·R = [−b, a]`), on the device: built once per
/// decode cache and reused by every step's [`Rotation`].
#[derive(Debug, Clone)]
pub struct RopeTables<B: Backend> {
    cos: Tensor<B, 2>,
    sin: Tensor<B, 2>,
    rotate_half: Tensor<B, 2>,
}

impl<B: Backend> RopeTables<B> {
    /// The tables for positions `0..len` (at least one).
    pub fn new(inv_freq: &[f32], len: usize, device: &B::Device) -> Self {
        let (cos, sin) = tables::<B>(inv_freq, len.max(1), device);
        let half = inv_freq.len();
        let d = 2 * half;
        let mut r = vec![0f32; d * d];
        for j in 0..half {
            r[(j + half) * d + j] = -1.0; // output j is −x[j + half]
            r[j * d + j + half] = 1.0; // output j + half is x[j]
        }
        Self {
            cos,
            sin,
            rotate_half: Tensor::from_data(TensorData::new(r, [d, d]), device),
        }
    }

    /// The rotation of a batch at `positions` `[n, t]`; positions past the tables' last
    /// are clamped (callers size the tables to the longest row).
    pub fn rotation(&self, positions: Tensor<B, 2, Int>) -> Rotation<B> {
        let [n, t] = positions.dims();
        let [len, d] = self.cos.dims();
        let idx = positions.clamp(0, len as i64 - 1).reshape([n * t]);
        let pick =
            |table: &Tensor<B, 2>| table.clone().select(0, idx.clone()).reshape([n, t, 1, d]);
        Rotation {
            cos: pick(&self.cos),
            sin: pick(&self.sin),
            rotate_half: self.rotate_half.clone(),
        }
    }
}

/// The rotation of a batch: `cos`/`sin` gathered at each token's position, `[n, t, 1, d]`,
/// and `rotate_half` as a signed permutation matrix `R` `[d, d]` (`x·R = [−b, a]`).
///
/// Why a matrix: as slices, a negation and a `cat` on the heads' strided view, rotate-half
/// was a fifth of a GRPO step's time (`docs/benchmarks.md`, session 7); `x·R` is one small
/// GEMM on contiguous rows, forward and backward, and exact (one ±1 term per output).
#[derive(Debug, Clone)]
pub struct Rotation<B: Backend> {
    cos: Tensor<B, 4>,
    sin: Tensor<B, 4>,
    rotate_half: Tensor<B, 2>,
}

impl<B: Backend> Rotation<B> {
    /// `positions`: `[n, t]`; positions at or past `table_len` are clamped (callers size
    /// the table to the longest row).
    pub fn new(
        inv_freq: &[f32],
        positions: Tensor<B, 2, Int>,
        table_len: usize,
        device: &B::Device,
    ) -> Self {
        RopeTables::new(inv_freq, table_len, device).rotation(positions)
    }

    /// The tables in `dtype` (a bf16 pass casts them once per forward, not per layer).
    pub fn cast(self, dtype: burn::tensor::DType) -> Self {
        Self {
            cos: self.cos.cast(dtype),
            sin: self.sin.cast(dtype),
            rotate_half: self.rotate_half.cast(dtype),
        }
    }

    /// Rotates queries or keys laid out token-major, `[n, t, heads, d]`.
    ///
    /// The tables are `[n, t, 1, d]`. On a GPU backend they are broadcast over the heads,
    /// and the products fuse into one kernel; repeated (a stride-0 view there) they ran as
    /// three unfused ones. flex walks a broadcast element by element, so on the CPU they are
    /// repeated to the heads' shape first (`docs/benchmarks.md`, sessions 7 and 14).
    pub fn apply(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let broadcast = crate::trainable::compiles_kernels::<B>(&x.device());
        self.apply_as(x, broadcast)
    }

    /// [`Rotation::apply`] with the tables broadcast over the heads or repeated to them.
    fn apply_as(&self, x: Tensor<B, 4>, broadcast: bool) -> Tensor<B, 4> {
        let heads = x.dims()[2];
        // the tables are built in f32; a bf16 pass (`crate::precision`) rotates in its own
        // dtype (a no-op cast when the caller already used `Rotation::cast`)
        let dtype = x.dtype();
        let turn = self.rotate_half.clone().cast(dtype);
        let rotated = crate::trainable::fold_rows(x.clone(), |rows| rows.matmul(turn));
        let (cos, sin) = (self.cos.clone().cast(dtype), self.sin.clone().cast(dtype));
        if broadcast {
            x * cos + rotated * sin
        } else {
            x * cos.repeat_dim(2, heads) + rotated * sin.repeat_dim(2, heads)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hf::config::HfConfig;
    use foil_core::backend::{B, Device};
    use serde_json::json;

    fn config(scaling: serde_json::Value) -> HfConfig {
        HfConfig::from_json(&json!({
            "model_type": "llama", "vocab_size": 10, "hidden_size": 8,
            "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 1,
            "rope_theta": 10000.0, "rope_scaling": scaling
        }))
        .unwrap()
    }

    #[test]
    fn default_frequencies_by_hand() {
        // d = 8: θ_i = 10000^(−2i/8) = 1, 0.1, 0.01, 0.001
        let f = inv_freq(&config(serde_json::Value::Null));
        let want = [1.0, 0.1, 0.01, 0.001];
        for (a, b) in f.iter().zip(want) {
            assert!((a - b).abs() < 1e-7, "{f:?}");
        }
    }

    #[test]
    fn llama3_rescaling_by_hand() {
        // L = 64, low 1, high 4 → keep θ where λ < 16, divide by 8 where λ > 64.
        // λ = 2π/θ: 6.28 (keep), 62.8 (between), 628 and 6283 (divide by 8).
        // middle: s = (64/62.83 − 1)/(4 − 1) = 0.006197; θ' = (1−s)·0.1/8 + s·0.1 = 0.013042
        let f = inv_freq(&config(json!({"rope_type": "llama3", "factor": 8.0,
            "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 64})));
        assert!((f[0] - 1.0).abs() < 1e-7);
        assert!((f[1] - 0.013042).abs() < 1e-6, "{}", f[1]);
        assert!((f[2] - 0.01 / 8.0).abs() < 1e-9);
        assert!((f[3] - 0.001 / 8.0).abs() < 1e-9);
    }

    /// The GPU backends' form (tables broadcast over the heads) rotates as the CPU's
    /// (tables repeated to them) does: 2 rows, 3 tokens, 3 heads, d = 4.
    #[test]
    fn broadcast_and_repeated_tables_rotate_alike() {
        let device = Device::default();
        let pos = Tensor::<B, 2, Int>::from_data(
            TensorData::new(vec![0i64, 1, 2, 0, 0, 1], [2, 3]),
            &device,
        );
        let rot = Rotation::<B>::new(&[1.0, 0.1], pos, 3, &device);
        let values: Vec<f32> = (0..2 * 3 * 3 * 4)
            .map(|i| (i as f32 * 0.37).sin())
            .collect();
        let x = Tensor::<B, 4>::from_data(TensorData::new(values, [2, 3, 3, 4]), &device);
        let repeated = foil_core::batch::to_vec(rot.apply_as(x.clone(), false));
        let broadcast = foil_core::batch::to_vec(rot.apply_as(x.clone(), true));
        assert_eq!(repeated.len(), 72);
        assert_eq!(repeated, broadcast);
        assert_ne!(
            repeated,
            foil_core::batch::to_vec(x),
            "positions 1 and 2 rotate"
        );
    }

    #[test]
    fn rotation_by_hand() {
        // one head, d = 2, θ = 1: position 1 rotates (x, y) by 1 rad:
        // x' = x cos 1 − y sin 1, y' = y cos 1 + x sin 1
        let device = Device::default();
        let pos = Tensor::<B, 2, Int>::from_data(TensorData::new(vec![0i64, 1], [1, 2]), &device);
        let rot = Rotation::<B>::new(&[1.0], pos, 2, &device);
        // [n = 1, t = 2, heads = 1, d = 2]
        let x = Tensor::<B, 4>::from_data(
            TensorData::new(vec![1.0f32, 2.0, 1.0, 2.0], [1, 2, 1, 2]),
            &device,
        );
        let y = foil_core::batch::to_vec(rot.apply(x));
        let (c, s) = (1f32.cos(), 1f32.sin());
        let want = [1.0, 2.0, c - 2.0 * s, 2.0 * c + s];
        for (a, b) in y.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{y:?}");
        }
    }
}
