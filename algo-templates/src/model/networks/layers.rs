//! Convolution and normalisation layers built the way PyTorch/MONAI build them, so that a
//! network's parameters line up one to one with the peer's `state_dict`.

use burn::module::Module;
use burn::nn::conv::{Conv3d, Conv3dConfig, ConvTranspose3d, ConvTranspose3dConfig};
use burn::nn::{InstanceNorm, InstanceNormConfig, PaddingConfig3d};
use burn::tensor::{Device, Tensor};

use crate::ops::{apply_conv_transpose3d, apply_conv3d};

/// A kernel, stride or scale per spatial axis (x, y, z).
pub type Triple = [usize; 3];

/// The per-axis product of strides or scales: what an input size must be a multiple of.
pub fn product(factors: &[Triple]) -> Triple {
    factors.iter().fold([1; 3], |acc, f| {
        [acc[0] * f[0], acc[1] * f[1], acc[2] * f[2]]
    })
}

/// Panics unless every spatial size of `x` is a multiple of `factor` (the callers that take
/// sizes from users, such as the sliding window, pad to a multiple first).
pub fn assert_divisible(x: &Tensor<5>, factor: Triple) {
    let dims = x.dims();
    assert!(
        (0..3).all(|a| dims[2 + a].is_multiple_of(factor[a])),
        "input spatial size {:?} must be a multiple of {factor:?}",
        &dims[2..]
    );
}

/// A 3D convolution with PyTorch's explicit symmetric `padding`.
pub fn conv3d(
    channels: [usize; 2],
    kernel: Triple,
    stride: Triple,
    padding: Triple,
    bias: bool,
    device: &Device,
) -> Conv3d {
    Conv3dConfig::new(channels, kernel)
        .with_stride(stride)
        .with_padding(PaddingConfig3d::Explicit(
            padding[0], padding[1], padding[2],
        ))
        .with_bias(bias)
        .init(device)
}

/// A "same" convolution: padding `k / 2` on every axis, stride 1.
pub fn conv3d_same(channels: [usize; 2], kernel: Triple, bias: bool, device: &Device) -> Conv3d {
    conv3d(
        channels,
        kernel,
        [1; 3],
        kernel.map(|k| k / 2),
        bias,
        device,
    )
}

/// A transposed convolution with PyTorch's `padding` and `output_padding`.
pub fn conv_transpose3d(
    channels: [usize; 2],
    kernel: Triple,
    stride: Triple,
    padding: Triple,
    output_padding: Triple,
    bias: bool,
    device: &Device,
) -> ConvTranspose3d {
    ConvTranspose3dConfig::new(channels, kernel)
        .with_stride(stride)
        .with_padding(padding)
        .with_padding_out(output_padding)
        .with_bias(bias)
        .init(device)
}

/// Instance normalisation with learned scale and shift (MONAI's and nnU-Net's default).
pub fn instance_norm(channels: usize, device: &Device) -> InstanceNorm {
    InstanceNormConfig::new(channels)
        .with_affine(true)
        .init(device)
}

/// A convolution that MONAI wraps in a `Convolution` block: its parameters are stored as
/// `<name>.conv.weight`, which this wrapper reproduces.
#[derive(Module, Debug)]
pub struct Wrapped<M> {
    /// The convolution itself.
    pub conv: M,
}

impl Wrapped<Conv3d> {
    /// Applies the convolution.
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        apply_conv3d(&self.conv, x)
    }
}

impl Wrapped<ConvTranspose3d> {
    /// Applies the transposed convolution.
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        apply_conv_transpose3d(&self.conv, x)
    }
}
