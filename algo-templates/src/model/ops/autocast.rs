//! Mixed precision as PyTorch's `torch.autocast` does it: inside a scope, convolutions and
//! transposed convolutions take their input, weights and bias in a lower float type and give
//! their output back in f32; norms, activations, losses, the optimiser and the master
//! weights stay f32, and each weight's gradient comes back through the casts in f32. The
//! scope belongs to the thread that enters it, as autocast's does.
//!
//! bf16 only: it keeps f32's exponent range, so gradients need no loss scaling (f16's
//! range would need a dynamic loss scaler, PyTorch's `GradScaler`), GPUs since Ampere
//! run it at f16's rate, and CPUs with AVX-512 BF16 at twice f32's (on burn-flex, by the
//! convolution kernels' bf16 set).

use std::cell::Cell;

use burn::tensor::{FloatDType, Tensor};
use serde::{Deserialize, Serialize};

use super::conv::has_bf16_kernels;
use crate::ComputeDevice;

thread_local! {
    static LOWERED: Cell<Option<FloatDType>> = const { Cell::new(None) };
}

/// A bundle's `mixed_precision` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MixedPrecision {
    /// bf16 convolutions on a CUDA GPU, and on burn-flex where the CPU has AVX-512 BF16
    /// (the Task04 plan's step in 0.71x f32's time); f32 elsewhere (libtorch on CPU cores,
    /// CPUs without it: no speed to gain).
    #[default]
    Auto,
    /// f32 everywhere.
    Off,
    /// bf16 convolutions on any device (on CPU cores only to check its numerics).
    Bf16,
}

impl MixedPrecision {
    /// The float type convolutions take on `device`; `None` for f32.
    pub fn lowered_on(self, device: ComputeDevice) -> Option<FloatDType> {
        match self {
            MixedPrecision::Auto if device.is_gpu() => Some(FloatDType::BF16),
            MixedPrecision::Auto if device == ComputeDevice::Flex && has_bf16_kernels() => {
                Some(FloatDType::BF16)
            }
            MixedPrecision::Auto | MixedPrecision::Off => None,
            MixedPrecision::Bf16 => Some(FloatDType::BF16),
        }
    }
}

/// Convolutions on this thread run in a lower float type until the scope is dropped.
#[must_use = "the scope ends when dropped"]
pub struct AutocastScope {
    previous: Option<FloatDType>,
}

impl AutocastScope {
    /// Enters a scope whose convolutions take `lowered` (f32 for `None`).
    pub fn enter(lowered: Option<FloatDType>) -> Self {
        let previous = LOWERED.with(|cell| cell.replace(lowered));
        AutocastScope { previous }
    }
}

impl Drop for AutocastScope {
    fn drop(&mut self) {
        LOWERED.with(|cell| cell.set(self.previous));
    }
}

/// The lower float type convolutions take on this thread now, if any.
pub(crate) fn lowered() -> Option<FloatDType> {
    LOWERED.with(Cell::get)
}

/// `conv(x, weight, bias)` with its operands in `dtype` and its output back in f32.
pub(crate) fn lowered_call(
    dtype: FloatDType,
    x: Tensor<5>,
    weight: Tensor<5>,
    bias: Option<Tensor<1>>,
    conv: impl FnOnce(Tensor<5>, Tensor<5>, Option<Tensor<1>>) -> Tensor<5>,
) -> Tensor<5> {
    let y = conv(
        x.cast(dtype),
        weight.cast(dtype),
        bias.map(|b| b.cast(dtype)),
    );
    y.cast(FloatDType::F32)
}

#[cfg(test)]
mod tests {
    use burn::tensor::Device;

    use super::*;
    use crate::networks::{DynUNetConfig, NetworkConfig};
    use crate::ops::test_support::{assert_close_within, values};

    /// A small DynUNet's output and the input's gradient of a loss on it (every
    /// convolution's backward step lies on that path), convolutions lowered as asked.
    fn output_and_input_gradient(lowered: Option<FloatDType>) -> (Vec<f32>, Vec<f32>) {
        let device = Device::flex().autodiff();
        let net = NetworkConfig::Dynunet(DynUNetConfig {
            kernel_sizes: vec![[3; 3], [3; 3], [3; 3]],
            strides: vec![[1; 3], [2; 3], [2; 3]],
            filters: Some(vec![4, 8, 16]),
            deep_supervision_heads: 1,
            ..DynUNetConfig::new(1, 3)
        })
        .init_seeded(&device, 7)
        .unwrap();
        let n = 2 * 16 * 16 * 8;
        let x: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let x = Tensor::<1>::from_floats(x.as_slice(), &device)
            .reshape([2, 1, 16, 16, 8])
            .require_grad();
        let _scope = AutocastScope::enter(lowered);
        let outputs = net.forward_deep(x.clone());
        assert!(
            outputs
                .iter()
                .all(|o| o.dtype() == burn::tensor::DType::F32)
        );
        let loss = (outputs.iter())
            .map(|o| o.clone().powi_scalar(2).mean())
            .reduce(|a, b| a + b)
            .unwrap();
        let grads = loss.backward();
        let gradient = x.grad(&grads).expect("the input is tracked");
        (values(outputs[0].clone()), values(gradient))
    }

    /// The cosine of the angle between two vectors, and the ratio of their lengths.
    fn direction_and_length(got: &[f32], want: &[f32]) -> (f32, f32) {
        let dot: f32 = got.iter().zip(want).map(|(a, b)| a * b).sum();
        let norm = |v: &[f32]| v.iter().map(|a| a * a).sum::<f32>().sqrt();
        (dot / (norm(got) * norm(want)), norm(got) / norm(want))
    }

    #[test]
    fn bf16_convolutions_stay_close_to_f32() {
        let (want_out, want_grad) = output_and_input_gradient(None);
        let (got_out, got_grad) = output_and_input_gradient(Some(FloatDType::BF16));
        assert_ne!(got_out, want_out, "bf16 rounds: the lowered path ran");
        // bf16 keeps 8 significant bits (a rounding: 0.4 %). Measured on flex: the output
        // within 1.2 % of its largest value; the input's gradient, a sum of small terms that
        // partly cancel through every layer's backward step, at a cosine of 0.978 to f32's
        // with 0.99 of its length.
        assert_close_within(&got_out, &want_out, 0.03, "output");
        let (cosine, length) = direction_and_length(&got_grad, &want_grad);
        assert!(cosine > 0.95, "gradient cosine {cosine}");
        assert!(
            (length - 1.0).abs() < 0.05,
            "gradient length ratio {length}"
        );
    }

    #[test]
    fn auto_is_bf16_on_a_gpu_and_where_flex_has_bf16_kernels() {
        use ComputeDevice::*;
        let on_flex = has_bf16_kernels().then_some(FloatDType::BF16);
        assert_eq!(MixedPrecision::Auto.lowered_on(Flex), on_flex);
        assert_eq!(MixedPrecision::Auto.lowered_on(TchCpu), None);
        assert_eq!(
            MixedPrecision::Auto.lowered_on(TchCuda(0)),
            Some(FloatDType::BF16)
        );
        assert_eq!(MixedPrecision::Off.lowered_on(TchCuda(0)), None);
        assert_eq!(
            MixedPrecision::Bf16.lowered_on(Flex),
            Some(FloatDType::BF16)
        );
        // Off, the scope changes nothing: the same values, bit for bit.
        let plain = output_and_input_gradient(None);
        let off = output_and_input_gradient(MixedPrecision::Off.lowered_on(Flex));
        assert_eq!(plain, off);
    }

    #[test]
    fn scopes_nest_and_restore() {
        assert_eq!(lowered(), None);
        let outer = AutocastScope::enter(Some(FloatDType::BF16));
        {
            let _inner = AutocastScope::enter(None);
            assert_eq!(lowered(), None);
        }
        assert_eq!(lowered(), Some(FloatDType::BF16));
        drop(outer);
        assert_eq!(lowered(), None);
    }
}
