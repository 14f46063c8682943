//! Reading and making f32 burn-flex tensors as plain slices, for the kernels written on
//! them directly (fused norm, convolution gradients).

use burn::backend::flex::FlexTensor;
use burn::tensor::{Shape, TensorData};

/// `t` itself when its f32 values lie contiguously in order, else a contiguous copy.
pub fn contiguous(t: FlexTensor) -> FlexTensor {
    if t.is_contiguous() && t.as_slice::<f32>().is_some() {
        t
    } else {
        t.to_contiguous()
    }
}

/// The values of a tensor made by [`contiguous`].
pub fn values(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>()
        .expect("a contiguous f32 tensor (checked by the caller)")
}

/// A tensor of `shape` holding `values` in order.
pub fn tensor(values: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}
