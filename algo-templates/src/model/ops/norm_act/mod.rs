//! Instance normalisation followed by an activation, as one operation: what every block of
//! the U-Nets (conv, norm, LeakyReLU) and SegResNetDS (norm, ReLU, conv) spends its memory
//! traffic on.
//!
//! burn composes instance norm from about ten tensor operations (mean, subtract, square,
//! mean, add, sqrt, divide, multiply, add) and LeakyReLU from three on libtorch, each a full
//! pass over the activation with a fresh allocation; autodiff then records a backward step
//! for each. Here the forward pass is one kernel per backend (libtorch's native group norm
//! with an in-place activation; a two-pass rayon loop on flex), and the backward pass one
//! handwritten step (see [`kernels`]) that saves only the input, the output and two numbers
//! per instance and channel.
//!
//! Tensors the kernels do not cover (another float type, another backend, autodiff mixed
//! with constants) take burn's composed path, which gives the same values: the tests check
//! both paths against each other, forward and backward.

mod autodiff;
mod flex;
mod kernels;
// burn 0.22 deprecates its libtorch backend (see README); it is pinned and kept on purpose.
#[cfg(feature = "tch")]
#[allow(deprecated)]
mod tch;

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::strategy::{BalancedCheckpointing, NoCheckpointing};
use burn::nn::InstanceNorm;
use burn::tensor::activation::{leaky_relu, relu};
use burn::tensor::{DType, Tensor};

/// The activation applied after the normalisation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// None: the normalised values themselves.
    Identity,
    /// max(0, z).
    Relu,
    /// z for z > 0, else `slope * z` (nnU-Net and MONAI use 0.01); the slope must lie in
    /// [0, 1].
    LeakyRelu(f64),
}

impl Activation {
    /// The activation as the one piecewise-linear form every variant here shares (the
    /// identity below 0 has slope 1, ReLU slope 0), for the kernels' inner loops: one
    /// multiply by a hoisted constant where a `match` per value kept them from vectorising.
    pub(crate) fn piecewise(self) -> Piecewise {
        let negative = match self {
            Activation::Identity => 1.0,
            Activation::Relu => 0.0,
            Activation::LeakyRelu(slope) => slope as f32,
        };
        Piecewise { negative }
    }
}

/// `z` for `z > 0`, else `negative * z`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Piecewise {
    negative: f32,
}

impl Piecewise {
    /// The activation's value at `z`.
    #[inline(always)]
    pub(crate) fn apply(self, z: f32) -> f32 {
        z * self.slope_at_output(z)
    }

    /// The derivative at the point whose output is `out` (positive outputs come from
    /// positive inputs for every activation here, so the output is enough).
    #[inline(always)]
    pub(crate) fn slope_at_output(self, out: f32) -> f32 {
        if out > 0.0 { 1.0 } else { self.negative }
    }
}

/// `activation(norm(x))` for `x` of shape `[batch, channels, spatial...]`: the statistics
/// over each instance's and channel's spatial extent (biased variance, `norm.epsilon` inside
/// the square root, as PyTorch's `InstanceNorm3d`), then the learned scale and shift.
pub fn instance_norm_act<const D: usize>(
    norm: &InstanceNorm,
    x: Tensor<D>,
    activation: Activation,
) -> Tensor<D> {
    if let (Some(gamma), Some(beta)) = (&norm.gamma, &norm.beta)
        && x.dtype() == DType::F32
        && x.dims()[2..].iter().product::<usize>() > 0
    {
        let inputs = Inputs {
            x: x.clone(),
            gamma: gamma.val(),
            beta: beta.val(),
            eps: norm.epsilon,
            activation,
        };
        if let Some(y) = fused(&inputs) {
            return y;
        }
    }
    composed_instance_norm_act(norm, x, activation)
}

/// burn's own composition: the reference the fused kernels are tested against.
pub fn composed_instance_norm_act<const D: usize>(
    norm: &InstanceNorm,
    x: Tensor<D>,
    activation: Activation,
) -> Tensor<D> {
    let z = norm.forward(x);
    match activation {
        Activation::Identity => z,
        Activation::Relu => relu(z),
        Activation::LeakyRelu(slope) => leaky_relu(z, slope),
    }
}

/// One call's operands.
struct Inputs<const D: usize> {
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    eps: f64,
    activation: Activation,
}

/// The fused operation on the first backend (plain, or under autodiff) that holds all three
/// tensors; `None` where none does.
fn fused<const D: usize>(inputs: &Inputs<D>) -> Option<Tensor<D>> {
    autodiff::plain::<Flex, D>(inputs)
        .or_else(|| autodiff::tracked::<Flex, NoCheckpointing, D>(inputs))
        .or_else(|| autodiff::tracked::<Flex, BalancedCheckpointing, D>(inputs))
        .or_else(|| fused_libtorch(inputs))
}

#[cfg(feature = "tch")]
#[allow(deprecated)]
fn fused_libtorch<const D: usize>(inputs: &Inputs<D>) -> Option<Tensor<D>> {
    use burn::backend::LibTorch;
    autodiff::plain::<LibTorch, D>(inputs)
        .or_else(|| autodiff::tracked::<LibTorch, NoCheckpointing, D>(inputs))
        .or_else(|| autodiff::tracked::<LibTorch, BalancedCheckpointing, D>(inputs))
}

#[cfg(not(feature = "tch"))]
fn fused_libtorch<const D: usize>(_: &Inputs<D>) -> Option<Tensor<D>> {
    None
}

#[cfg(test)]
mod tests;
