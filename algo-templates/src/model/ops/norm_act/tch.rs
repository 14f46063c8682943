//! The fused kernels on libtorch: the forward pass is ATen's native group norm with one group
//! per channel (a vectorised two-pass kernel, as PyTorch's own instance norm) and the
//! activation in place; the backward pass five passes of ATen ops (see [`super::kernels`]).

use burn::backend::LibTorch;
use burn::backend::libtorch::TchTensor;
use burn::backend::tensor::FloatTensor;

use super::Activation;
use super::kernels::{Forward, Gradients, NormActKernels, Saved, Statistics};

/// LeakyReLU's slope in ATen's `leaky_relu_`, which takes no slope of its own.
const ATEN_DEFAULT_SLOPE: f64 = 0.01;

impl NormActKernels for LibTorch {
    fn norm_act_forward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f64,
        activation: Activation,
    ) -> Forward<Self> {
        let (n, c, len) = extents(&x.tensor);
        let (mut y, mean, rstd) =
            x.tensor
                .native_group_norm(Some(&gamma.tensor), Some(&beta.tensor), n, c, len, c, eps);
        let y = match activation {
            Activation::Identity => y,
            Activation::Relu => {
                let _ = y.relu_();
                y
            }
            Activation::LeakyRelu(slope) if slope == ATEN_DEFAULT_SLOPE => {
                let _ = y.leaky_relu_();
                y
            }
            // max(z, slope * z) is LeakyReLU for a slope in [0, 1].
            Activation::LeakyRelu(slope) => y.maximum(&(&y * slope)),
        };
        let statistics = Statistics {
            mean: TchTensor::new(mean.reshape([n * c])),
            rstd: TchTensor::new(rstd.reshape([n * c])),
        };
        (TchTensor::new(y), statistics)
    }

    fn norm_act_backward(saved: Saved<Self>, dy: FloatTensor<Self>) -> Gradients<Self> {
        let shape = saved.x.tensor.size();
        let (n, c, len) = extents(&saved.x.tensor);
        let (x, y, dy) = (
            saved.x.tensor.reshape([n * c, len]),
            saved.y.tensor.reshape([n * c, len]),
            dy.tensor.reshape([n * c, len]),
        );
        let dz = match saved.activation {
            Activation::Identity => dy,
            Activation::Relu => y.threshold_backward(&dy, 0.0),
            Activation::LeakyRelu(slope) => y.leaky_relu_backward(&dy, slope, true),
        };
        let mean = saved.statistics.mean.tensor.reshape([n * c, 1]);
        let rstd = saved.statistics.rstd.tensor.reshape([n * c, 1]);
        let sum_dz = dz.sum_dim_intlist([1i64].as_slice(), true, None);
        // sum dz * x as a batched dot product: one pass, no temporary.
        let sum_dz_x = dz.unsqueeze(1).bmm(&x.unsqueeze(2)).reshape([n * c, 1]);
        let sum_dz_xhat = (sum_dz_x - &mean * &sum_dz) * &rstd;
        let gamma = saved.gamma.tensor.repeat([n]).reshape([n * c, 1]);
        let a = gamma * &rstd;
        let b = -(&a * &rstd * &sum_dz_xhat) / len as f64;
        // dx = a dz + b x + (c0 - b mu), with c0 = -a mean(dz).
        let shift = -(&a * &sum_dz) / len as f64 - &b * &mean;
        let mut dx = shift.addcmul(&dz, &a);
        let _ = dx.addcmul_(&x, &b);
        let per_channel = |t: &tch::Tensor| {
            t.reshape([n, c])
                .sum_dim_intlist([0i64].as_slice(), false, None)
        };
        [
            TchTensor::new(dx.reshape(shape)),
            TchTensor::new(per_channel(&sum_dz_xhat)),
            TchTensor::new(per_channel(&sum_dz)),
        ]
    }
}

/// (batch, channels, values per channel) of a `[batch, channels, spatial...]` tensor.
fn extents(x: &tch::Tensor) -> (i64, i64, i64) {
    let size = x.size();
    (size[0], size[1], size[2..].iter().product())
}
