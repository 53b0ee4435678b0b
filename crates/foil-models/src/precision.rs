//! Mixed-precision training: f32 master weights, bf16 passes.
//!
//! `precision: bf16` follows Micikevicius et al. 2018 ("Mixed Precision Training") with
//! bfloat16 in place of fp16:
//!
//! ```text
//! W16   = cast_bf16(W)                 every forward pass; W, its gradient and the AdamW
//!                                      moments stay f32
//! logits = f(x; W16)                   matmuls, attention, norms and activations in bf16
//! ℓ      = loss(cast_f32(logits))      log-softmax and the objective in f32
//! ∂ℓ/∂W  = cast_f32(∂ℓ/∂W16)           the cast's backward
//! ```
//!
//! bf16 keeps f32's 8 exponent bits, so no loss scaling is needed (fp16 would need it).
//! Only the casts' outputs live in bf16: the update `W ← W − lr·Adam(∂ℓ/∂W)` is applied in
//! f32, so steps smaller than bf16's 2⁻⁸ relative spacing are not lost, as they are when the
//! parameters themselves are bf16 (`hf`'s `dtype: bf16`).
//!
//! Unlike PyTorch's `autocast(dtype=torch.bfloat16)`, which runs only matmul-like ops in
//! bf16 and keeps embeddings, norms, softmax and the residual stream in f32, everything
//! between the casts here is bf16, the residual stream included: fewer bytes moved, and
//! rounding that grows with depth. The tests bound it on 2-layer models (logits within 2 %
//! of the largest, gradient cosines > 0.99). Frozen passes (π_old with several updates
//! per batch, the KL reference) run the f32 inference copy, so a bf16 policy's ratio and KL
//! start with bf16's rounding (~1e-2 on logits) instead of exactly 1 and 0.
//!
//! The point is speed on GPUs: bf16 matmuls run on tensor cores at about twice the TF32
//! rate. On a CPU, burn's flex backend runs bf16 too (slowly); the tests use it.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};
use serde::{Deserialize, Serialize};

/// The numeric precision of a policy's training passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in f32.
    #[default]
    F32,
    /// bf16 forward and backward passes over f32 master weights (module docs).
    Bf16,
}

impl Precision {
    /// The dtype activations and the weights' working copies take.
    pub fn compute_dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::Bf16 => DType::BF16,
        }
    }
}

/// Casts each float parameter without touching its autodiff node: the result is a
/// function of the original parameters, so gradients flow back through the cast.
struct WorkingCopy(DType);

impl<B: Backend> ModuleMapper<B> for WorkingCopy {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        Param::from_mapped_value(id, tensor.cast(self.0), mapper)
    }
}

/// `model` with every float parameter cast to `precision`'s compute dtype, for one
/// forward pass: `W16 = cast(W)` above. Under autodiff the casts are recorded, so the
/// gradients of a loss of this copy's outputs land on `model`'s own (f32) parameters
/// (`GradientsParams::from_grads(grads, model)` finds them). In f32 it is a clone: cloning
/// a module clones handles, not weights.
pub fn working_copy<B: Backend, M: Module<B>>(model: &M, precision: Precision) -> M {
    match precision {
        Precision::F32 => model.clone(),
        dtype => model.clone().map(&mut WorkingCopy(dtype.compute_dtype())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::GradientsParams;
    use burn::tensor::TensorData;
    use foil_core::backend::{B as FB, materialize, parse_device, train_device, with_seed};

    fn layer() -> (Linear<FB>, foil_core::backend::Device) {
        let device = train_device(&parse_device("cpu").unwrap());
        // drawn under with_seed's lock (and materialised there: burn initialises lazily),
        // so that it never interleaves with another test's seeded initialisation
        let mut l = with_seed(&device, 1, || {
            materialize(LinearConfig::new(2, 1).init::<FB>(&device))
        });
        // W = [[1.0], [0.00390625 + 1.0]] ≈ 1 + 2⁻⁸: the second weight is not a bf16 number
        // (bf16 has 7 stored mantissa bits, spacing 2⁻⁷ at 1.0), so its working copy rounds.
        l.weight = Param::from_tensor(Tensor::from_data(
            TensorData::new(vec![1.0f32, 1.0 + 1.0 / 256.0], [2, 1]),
            &device,
        ));
        l.bias = Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(vec![0.5f32], [1]),
            &device,
        )));
        (l, device)
    }

    /// The working copy is bf16, computes in bf16, and its loss's gradients land on the
    /// f32 master weights, in f32.
    ///
    /// By hand, with x = [3, 5]: y = 1·3 + W₂·5 + 0.5. In f32, W₂ = 1.00390625 and
    /// y = 8.51953125. The bf16 copy rounds W₂ to 1.0 (ties to even: 1 + 2⁻⁸ lies halfway
    /// between 1 and 1 + 2⁻⁷), so y = 3 + 5 + 0.5 = 8.5 exactly. ∂y/∂W = x = [3, 5] and
    /// ∂y/∂b = 1, whichever copy computed y.
    #[test]
    fn bf16_working_copy_computes_in_bf16_and_sends_f32_gradients_to_the_master() {
        let (layer, device) = layer();
        let x = Tensor::<FB, 2>::from_data(TensorData::new(vec![3.0f32, 5.0], [1, 2]), &device);

        let f32_y = working_copy(&layer, Precision::F32).forward(x.clone());
        assert_eq!(f32_y.clone().into_scalar(), 8.519_531_f32);

        let copy = working_copy(&layer, Precision::Bf16);
        assert_eq!(copy.weight.val().dtype(), DType::BF16);
        assert_eq!(
            layer.weight.val().dtype(),
            DType::F32,
            "the master stays f32"
        );
        let y = copy.forward(x.cast(DType::BF16)).cast(DType::F32);
        assert_eq!(y.clone().into_scalar(), 8.5);

        let grads = GradientsParams::from_grads::<FB, _>(y.sum().backward(), &layer);
        let dw = grads.get::<<FB as burn::tensor::backend::AutodiffBackend>::InnerBackend, 2>(
            layer.weight.id,
        );
        let dw = dw.expect("the f32 weight has a gradient");
        assert_eq!(dw.dtype(), DType::F32);
        assert_eq!(dw.into_data().to_vec::<f32>().unwrap(), vec![3.0, 5.0]);
        let db = grads
            .get::<<FB as burn::tensor::backend::AutodiffBackend>::InnerBackend, 1>(
                layer.bias.as_ref().unwrap().id,
            )
            .expect("the f32 bias has a gradient");
        assert_eq!(db.into_data().to_vec::<f32>().unwrap(), vec![1.0]);
    }
}
