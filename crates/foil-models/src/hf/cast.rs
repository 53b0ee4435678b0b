//! Casting every floating parameter of a module to another dtype (f32 ↔ bf16).

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};

struct Cast(DType);

impl<B: Backend> ModuleMapper<B> for Cast {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let grad = tensor.is_require_grad();
        let cast = tensor.cast(self.0).set_require_grad(grad);
        Param::from_mapped_value(id, cast, mapper)
    }
}

/// `module` with every float parameter cast to `dtype`.
pub fn to_dtype<B: Backend, M: Module<B>>(module: M, dtype: DType) -> M {
    module.map(&mut Cast(dtype))
}
