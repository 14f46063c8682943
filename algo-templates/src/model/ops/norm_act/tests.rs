//! The fused kernels against burn's composition, forward and backward, on every device this
//! build has (flex; libtorch too in the tch build).

use burn::module::Param;
use burn::nn::InstanceNorm;
use burn::tensor::{Device, Distribution, Tensor};

use super::*;
use crate::ComputeDevice;
use crate::networks::seeded;
use crate::ops::test_support::{assert_close_within, values};

const ACTIVATIONS: [Activation; 4] = [
    Activation::Identity,
    Activation::Relu,
    Activation::LeakyRelu(0.01),
    Activation::LeakyRelu(0.2),
];

/// A norm with non-trivial scale and shift, and an input whose channels sit far from 0
/// (the statistics must not lose digits to the offset).
fn case(device: &Device, tracked: bool) -> (InstanceNorm, Tensor<5>) {
    let track = |t: Tensor<1>| if tracked { t.require_grad() } else { t };
    let channels = 3;
    let x = seeded(device, 1, || {
        Tensor::<5>::random(
            [2, channels, 5, 4, 3],
            Distribution::Normal(0.0, 2.0),
            device,
        )
    }) + Tensor::<1>::from_floats([40.0, -3.0, 0.5], device)
        .reshape([1, channels, 1, 1, 1]);
    let gamma = Tensor::<1>::from_floats([1.5, -0.7, 0.2], device);
    let beta = Tensor::<1>::from_floats([0.3, 0.0, -1.1], device);
    let norm = InstanceNorm {
        gamma: Some(Param::from_tensor(track(gamma))),
        beta: Some(Param::from_tensor(track(beta))),
        num_channels: channels,
        epsilon: 1e-5,
        affine: true,
    };
    (norm, x)
}

/// Values computed elementwise: within 2e-5.
fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_close_within(got, want, 2e-5, what);
}

fn inputs(norm: &InstanceNorm, x: Tensor<5>, activation: Activation) -> Inputs<5> {
    Inputs {
        x,
        gamma: norm.gamma.as_ref().unwrap().val(),
        beta: norm.beta.as_ref().unwrap().val(),
        eps: norm.epsilon,
        activation,
    }
}

#[test]
fn forward_equals_burns_composition_on_every_device() {
    for device in ComputeDevice::available() {
        let dev = device.burn_device();
        let (norm, x) = case(&dev, false);
        for activation in ACTIVATIONS {
            let fused = fused(&inputs(&norm, x.clone(), activation))
                .unwrap_or_else(|| panic!("{device}: no fused kernel was taken"));
            let want = composed_instance_norm_act(&norm, x.clone(), activation);
            let what = format!("{device} {activation:?} forward");
            assert_close(&values(fused), &values(want), &what);
        }
    }
}

#[test]
fn gradients_equal_burns_composition_on_every_device() {
    for device in ComputeDevice::available() {
        let dev = device.training_device();
        let (norm, x) = case(&dev, true);
        let weights = seeded(&dev, 2, || {
            Tensor::<5>::random(x.dims(), Distribution::Normal(0.0, 1.0), &dev)
        });
        for activation in ACTIVATIONS {
            let grads_of = |y: Tensor<5>, x: &Tensor<5>| {
                let grads = (y * weights.clone()).sum().backward();
                let param = |p: &Option<Param<Tensor<1>>>| {
                    values(p.as_ref().unwrap().val().grad(&grads).unwrap())
                };
                [
                    values(x.grad(&grads).unwrap()),
                    param(&norm.gamma),
                    param(&norm.beta),
                ]
            };
            let x1 = x.clone().detach().require_grad();
            let fused = fused(&inputs(&norm, x1.clone(), activation))
                .unwrap_or_else(|| panic!("{device}: no fused kernel was taken under autodiff"));
            let got = grads_of(fused, &x1);
            let x2 = x.clone().detach().require_grad();
            let want = grads_of(
                composed_instance_norm_act(&norm, x2.clone(), activation),
                &x2,
            );
            for (name, (g, w)) in ["x", "gamma", "beta"].iter().zip(got.iter().zip(&want)) {
                // gamma's and beta's gradients are f32 sums over every voxel, added in
                // another order by each path: 1e-4 of the largest.
                let what = format!("{device} {activation:?} gradient of {name}");
                assert_close_within(g, w, 1e-4, &what);
            }
        }
    }
}

#[test]
fn the_public_entry_point_takes_the_fused_path_and_falls_back_without_affine() {
    let dev = Device::flex();
    let (norm, x) = case(&dev, false);
    let act = Activation::LeakyRelu(0.01);
    assert_close(
        &values(instance_norm_act(&norm, x.clone(), act)),
        &values(composed_instance_norm_act(&norm, x.clone(), act)),
        "entry point",
    );
    let plain = InstanceNorm {
        gamma: None,
        beta: None,
        ..norm
    };
    let plain = InstanceNorm {
        affine: false,
        ..plain
    };
    assert_close(
        &values(instance_norm_act(&plain, x.clone(), act)),
        &values(composed_instance_norm_act(&plain, x, act)),
        "no affine",
    );
}
