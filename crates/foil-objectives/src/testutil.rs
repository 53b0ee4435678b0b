//! Hand-built batches and a finite-difference gradient check for the objective tests.

use burn::tensor::{Int, Tensor, TensorData};
use foil_core::backend::{B, Device, parse_device, train_device};
use foil_core::batch::{PolicyBatch, SeqBatch, to_vec};

use crate::aggregate::scalar;

/// The CPU autodiff device.
pub fn dev() -> Device {
    train_device(&parse_device("cpu").unwrap())
}

/// A `[rows, W]` float tensor.
pub fn t2<const W: usize>(rows: &[[f32; W]], d: &Device) -> Tensor<B, 2> {
    let data: Vec<f32> = rows.iter().flatten().copied().collect();
    Tensor::from_data(TensorData::new(data, [rows.len(), W]), d)
}

/// A batch with the given mask, advantages and optional old / reference log-probs.
pub fn batch<const W: usize>(
    mask: &[[f32; W]],
    advantages: &[[f32; W]],
    old: Option<&[[f32; W]]>,
    reference: Option<&[[f32; W]]>,
    max_response_tokens: usize,
) -> PolicyBatch {
    let d = dev();
    let n = mask.len();
    PolicyBatch {
        // objectives never read the input
        input: SeqBatch::left_padded(&[vec![1, 2, 3]], 0).to_input(&d),
        targets: Tensor::<B, 2, Int>::zeros([n, W], &d),
        mask: t2(mask, &d),
        advantages: t2(advantages, &d),
        old_logprobs: old.map(|o| t2(o, &d)),
        ref_logprobs: reference.map(|r| t2(r, &d)),
        n,
        width: W,
        response_lengths: mask
            .iter()
            .map(|r| r.iter().filter(|&&x| x > 0.0).count())
            .collect(),
        max_response_tokens,
        group_accuracy: Vec::new(),
        group_ids: Vec::new(),
    }
}

/// Compares the autodiff gradient of `f` at the `[rows, W]` point `x` with central
/// differences; see [`check_grad_nd`].
pub fn check_grad<const W: usize>(
    x: &[[f32; W]],
    f: impl Fn(Tensor<B, 2>) -> Tensor<B, 1>,
) -> Vec<f32> {
    let data: Vec<f32> = x.iter().flatten().copied().collect();
    check_grad_nd(data, [x.len(), W], f)
}

/// Compares the autodiff gradient of `f` at `x` (of `shape`) with central differences
/// `(f(x + h e_k) − f(x − h e_k)) / 2h`, `h = 1e-3`, entry by entry (tolerance
/// `1e-3 + 1e-2 · |fd|`). Returns the autodiff gradient.
pub fn check_grad_nd<const D: usize>(
    x: Vec<f32>,
    shape: [usize; D],
    f: impl Fn(Tensor<B, D>) -> Tensor<B, 1>,
) -> Vec<f32> {
    let d = dev();
    let h = 1e-3f32;
    let tensor = |v: Vec<f32>| Tensor::<B, D>::from_data(TensorData::new(v, shape), &d);
    let input = tensor(x.clone()).require_grad();
    let loss = f(input.clone());
    let grads = loss.backward();
    let grad = to_vec(input.grad(&grads).expect("input has a gradient"));
    assert_eq!(grad.len(), x.len());
    for k in 0..x.len() {
        let mut plus = x.clone();
        plus[k] += h;
        let mut minus = x.clone();
        minus[k] -= h;
        let fd = (scalar(f(tensor(plus))) - scalar(f(tensor(minus)))) / (2.0 * h);
        assert!(
            (grad[k] - fd).abs() <= 1e-3 + 1e-2 * fd.abs(),
            "d/dx[{k}] (shape {shape:?}): autodiff {} vs finite differences {fd}",
            grad[k]
        );
    }
    grad
}

/// Asserts `a ≈ b` to `1e-5`.
pub fn close(a: f32, b: f32) {
    assert!((a - b).abs() < 1e-5, "{a} vs {b}");
}
