//! 3D convolution and transposed convolution on burn-flex, faster forward and backward, for
//! training and inference on the CPU without libtorch.
//!
//! burn 0.22 differentiates a convolution with two other convolutions: the input's gradient
//! is a transposed convolution of the output's gradient, and the weight's gradient a
//! convolution of the input by the output's gradient as a kernel (a 64^3 kernel for a 64^3
//! volume), which burn-flex runs through an im2col matrix the size of the whole volume for
//! each of its 27 output positions. Here (see [`flex`]):
//!
//! - the forward pass, for unit strides on CPUs with AVX-512 or AVX2, is a direct convolution on a
//!   zero-padded copy of the input ([`direct`]: no im2col matrix); otherwise one GEMM per
//!   tile of output rows, over an im2col matrix read straight from the input, each tile
//!   small enough for a core's L2 cache (burn-flex transposes the input to channels-last
//!   first and uses tiles up to 16x larger);
//!
//! and under autodiff one handwritten backward step computes:
//!
//! - the input's gradient, for unit strides, as a convolution of the output's gradient by
//!   the flipped, transposed kernel (the forward pass above);
//! - the weight's gradient by the direct kernel where the forward pass takes it, else as
//!   one GEMM per tile of output rows: the output's gradient times the tile's im2col
//!   matrix, accumulated per thread;
//! - the bias's gradient as a sum per channel.
//!
//! A transposed convolution's weight gradient is the same sum with the input and the
//! output's gradient in each other's place, and its input's gradient a plain convolution of
//! the output's gradient (the forward pass above); burn's default runs the former as a
//! convolution by the whole input as a dilated kernel.
//!
//! Every other tensor (libtorch, grouped or dilated convolutions, another float type) takes
//! burn's own path, which gives the same values: the tests check both
//! paths against each other.

mod autodiff;
#[cfg(target_arch = "x86_64")]
mod direct;
mod flex;

use burn::backend::autodiff::checkpoint::strategy::{BalancedCheckpointing, NoCheckpointing};
use burn::nn::PaddingConfig3d;
use burn::nn::conv::{Conv3d, ConvTranspose3d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{DType, FloatDType, Tensor, module};

use super::autocast;

/// `conv.forward(x)`, computed and differentiated by the faster kernels where they apply,
/// or in bf16 inside an [`AutocastScope`](super::AutocastScope).
pub fn apply_conv3d(conv: &Conv3d, x: Tensor<5>) -> Tensor<5> {
    let bias = conv.bias.as_ref().map(|b| b.val());
    let kind = Kind::of_conv(conv);
    if let Some(y) = apply(kind.clone(), &x, conv.weight.val(), bias.clone()) {
        return y;
    }
    if let (Some(dtype), Some(Kind::Conv(options))) = (autocast::lowered(), kind) {
        let weight = conv.weight.val();
        return autocast::lowered_call(dtype, x, weight, bias, |x, w, b| {
            module::conv3d(x, w, b, options)
        });
    }
    conv.forward(x)
}

/// `conv.forward(x)` for a transposed convolution (the U-Nets' upsampling), differentiated
/// by the faster kernels where they apply (its forward pass stays burn-flex's), or in bf16
/// inside an [`AutocastScope`](super::AutocastScope).
pub fn apply_conv_transpose3d(conv: &ConvTranspose3d, x: Tensor<5>) -> Tensor<5> {
    let bias = conv.bias.as_ref().map(|b| b.val());
    let kind = Kind::of_transposed(conv);
    if let Some(y) = apply(kind.clone(), &x, conv.weight.val(), bias.clone()) {
        return y;
    }
    if let (Some(dtype), Some(Kind::Transposed(options))) = (autocast::lowered(), kind) {
        let weight = conv.weight.val();
        return autocast::lowered_call(dtype, x, weight, bias, |x, w, b| {
            module::conv_transpose3d(x, w, b, options)
        });
    }
    conv.forward(x)
}

/// Whether the kernels here compute bf16 convolutions on this CPU (AVX-512 BF16, x86-64).
pub fn has_bf16_kernels() -> bool {
    #[cfg(target_arch = "x86_64")]
    return direct::has_bf16_kernels();
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The precision a convolution by the kernels here takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Precision {
    F32,
    /// autocast's numerics (bf16 operands, f32 sums and output), where the bf16 kernels
    /// cover the convolution; the others (strided, transposed) stay f32.
    Bf16,
}

impl Precision {
    /// The precision the autocast scope asks for, when the kernels here offer it: none
    /// for bf16 on a CPU without the bf16 kernels (burn's own bf16 path keeps autocast's
    /// numerics there).
    fn current() -> Option<Precision> {
        match autocast::lowered() {
            None => Some(Precision::F32),
            Some(FloatDType::BF16) if has_bf16_kernels() => Some(Precision::Bf16),
            Some(_) => None,
        }
    }
}

/// The convolution by the kernels here, when they cover it: f32, no dilation or groups,
/// on burn-flex (plain, or under autodiff with the handwritten backward step), in the
/// precision autocast asks for.
fn apply(
    kind: Option<Kind>,
    x: &Tensor<5>,
    weight: Tensor<5>,
    bias: Option<Tensor<1>>,
) -> Option<Tensor<5>> {
    let kind = kind.filter(Kind::covered)?;
    if x.dtype() != DType::F32 {
        return None;
    }
    let inputs = Inputs {
        x: x.clone(),
        weight,
        bias,
        kind,
        precision: Precision::current()?,
    };
    autodiff::plain(&inputs)
        .or_else(|| autodiff::tracked::<NoCheckpointing>(&inputs))
        .or_else(|| autodiff::tracked::<BalancedCheckpointing>(&inputs))
}

/// Which convolution, with its options.
#[derive(Debug, Clone)]
enum Kind {
    Conv(ConvOptions<3>),
    Transposed(ConvTransposeOptions<3>),
}

impl Kind {
    /// A convolution's options, when its padding is explicit.
    fn of_conv(conv: &Conv3d) -> Option<Kind> {
        let PaddingConfig3d::Explicit(d, h, w) = conv.padding else {
            return None;
        };
        let options = ConvOptions::new(conv.stride, [d, h, w], conv.dilation, conv.groups);
        Some(Kind::Conv(options))
    }

    /// A transposed convolution's options, when it has no output padding.
    fn of_transposed(conv: &ConvTranspose3d) -> Option<Kind> {
        (conv.padding_out == [0; 3]).then(|| {
            Kind::Transposed(ConvTransposeOptions::new(
                conv.stride,
                conv.padding,
                conv.padding_out,
                conv.dilation,
                conv.groups,
            ))
        })
    }

    /// Whether the kernels cover the options: no dilation or groups.
    fn covered(&self) -> bool {
        let (dilation, groups) = match self {
            Kind::Conv(o) => (o.dilation, o.groups),
            Kind::Transposed(o) => (o.dilation, o.groups),
        };
        dilation == [1; 3] && groups == 1
    }
}

/// One call's operands.
struct Inputs {
    x: Tensor<5>,
    weight: Tensor<5>,
    bias: Option<Tensor<1>>,
    kind: Kind,
    precision: Precision,
}

#[cfg(test)]
mod tests;
