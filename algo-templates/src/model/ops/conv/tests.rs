//! The handwritten gradients against burn's own, on burn-flex under autodiff.

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};

use super::*;
use crate::ComputeDevice;
use crate::networks::Triple;
use crate::networks::layers::{conv_transpose3d, conv3d};
use crate::networks::{materialized, seeded};
use crate::ops::test_support::{assert_close_within, values};

/// One convolution: channels, kernel, stride, padding, bias.
type Case = ([usize; 2], Triple, Triple, Triple, bool);

/// The convolutions the networks use: 3^3 "same" with and without bias, strided 3^3
/// (downsampling), DynUNet's flat 3x3x1, a 1^3 head, and a 2^3 stride-2 with no padding.
const CONVS: [Case; 6] = [
    ([3, 4], [3; 3], [1; 3], [1; 3], true),
    ([4, 5], [3; 3], [1; 3], [1; 3], false),
    ([3, 6], [3; 3], [2; 3], [1; 3], true),
    ([2, 3], [3, 3, 1], [1; 3], [1, 1, 0], true),
    ([5, 2], [1; 3], [1; 3], [0; 3], true),
    ([2, 4], [2; 3], [2, 2, 1], [0; 3], false),
];

/// Transposed convolutions: the U-Nets' 2^3 stride-2 upsampling with and without bias,
/// DynUNet's anisotropic 2x2x1, and an overlapping 3^3 stride-2 with padding.
const TRANSPOSED: [Case; 4] = [
    ([4, 3], [2; 3], [2; 3], [0; 3], true),
    ([3, 2], [2; 3], [2; 3], [0; 3], false),
    ([2, 3], [2, 2, 1], [2, 2, 1], [0; 3], true),
    ([3, 2], [3; 3], [2; 3], [1; 3], true),
];

/// A layer with the weights of seed `i`.
fn drawn<M: Module>(i: usize, dev: &Device, build: impl FnOnce() -> M) -> M {
    seeded(dev, i as u64, || materialized(build()))
}

/// The output and the gradients of x, the kernel and the bias of `(y * r).sum()`.
fn gradients(
    y: Tensor<5>,
    r: &Tensor<5>,
    x: &Tensor<5>,
    weight: &Tensor<5>,
    bias: Option<&Tensor<1>>,
) -> Vec<Vec<f32>> {
    let grads = (y.clone() * r.clone()).sum().backward();
    let mut found = vec![
        values(y),
        values(x.grad(&grads).unwrap()),
        values(weight.grad(&grads).unwrap()),
    ];
    found.extend(bias.map(|b| values(b.grad(&grads).unwrap())));
    found
}

/// Runs `forward` on the handwritten path and on burn's, from the same input, and compares
/// the output and the gradients within 1e-4 of the largest (sums over every voxel, added
/// in another order).
fn assert_paths_agree(
    what: &str,
    channels_in: usize,
    weight: Tensor<5>,
    bias: Option<Tensor<1>>,
    handwritten: impl Fn(&Tensor<5>) -> Option<Tensor<5>>,
    burns: impl Fn(&Tensor<5>) -> Tensor<5>,
) {
    let dev = ComputeDevice::Flex.training_device();
    // Odd sizes, so tiles and borders do not line up.
    let x = seeded(&dev, 1, || {
        Tensor::<5>::random(
            [2, channels_in, 9, 7, 6],
            Distribution::Normal(0.0, 1.0),
            &dev,
        )
    });
    let x1 = x.clone().detach().require_grad();
    let y =
        handwritten(&x1).unwrap_or_else(|| panic!("{what}: the handwritten path was not taken"));
    let r = seeded(&dev, 2, || {
        Tensor::<5>::random(y.dims(), Distribution::Normal(0.0, 1.0), &dev)
    });
    let got = gradients(y, &r, &x1, &weight, bias.as_ref());
    let x2 = x.detach().require_grad();
    let want = gradients(burns(&x2), &r, &x2, &weight, bias.as_ref());
    for (name, (g, w)) in ["output", "x", "weight", "bias"]
        .iter()
        .zip(got.iter().zip(&want))
    {
        assert_close_within(g, w, 1e-4, &format!("{what}: {name}"));
    }
}

#[test]
fn convolutions_equal_burns_forward_and_backward() {
    let dev = ComputeDevice::Flex.training_device();
    for (i, &(channels, kernel, stride, padding, bias)) in CONVS.iter().enumerate() {
        let conv = drawn(i, &dev, || {
            conv3d(channels, kernel, stride, padding, bias, &dev)
        });
        let b = conv.bias.as_ref().map(|b| b.val());
        assert_paths_agree(
            &format!("conv {i}"),
            channels[0],
            conv.weight.val(),
            b.clone(),
            |x| apply(Kind::of_conv(&conv), x, conv.weight.val(), b.clone()),
            |x| conv.forward(x.clone()),
        );
    }
}

#[test]
fn transposed_convolutions_equal_burns_forward_and_backward() {
    let dev = ComputeDevice::Flex.training_device();
    for (i, &(channels, kernel, stride, padding, bias)) in TRANSPOSED.iter().enumerate() {
        let conv = drawn(i, &dev, || {
            conv_transpose3d(channels, kernel, stride, padding, [0; 3], bias, &dev)
        });
        let b = conv.bias.as_ref().map(|b| b.val());
        assert_paths_agree(
            &format!("transposed {i}"),
            channels[0],
            conv.weight.val(),
            b.clone(),
            |x| apply(Kind::of_transposed(&conv), x, conv.weight.val(), b.clone()),
            |x| conv.forward(x.clone()),
        );
    }
}

#[test]
fn plain_convolutions_equal_burn_flexs_and_the_uncovered_take_burns_path() {
    let dev = ComputeDevice::Flex.burn_device();
    for (i, &(channels, kernel, stride, padding, bias)) in CONVS.iter().enumerate() {
        let conv = drawn(i, &dev, || {
            conv3d(channels, kernel, stride, padding, bias, &dev)
        });
        let x = seeded(&dev, 100, || {
            Tensor::<5>::random(
                [2, channels[0], 9, 7, 6],
                Distribution::Normal(0.0, 1.0),
                &dev,
            )
        });
        let b = conv.bias.as_ref().map(|b| b.val());
        let y = apply(Kind::of_conv(&conv), &x, conv.weight.val(), b)
            .unwrap_or_else(|| panic!("conv {i}: the forward kernel was not taken"));
        assert_close_within(
            &values(y),
            &values(conv.forward(x)),
            1e-5,
            &format!("conv {i}"),
        );
    }
    let conv = drawn(0, &dev, || {
        conv3d([2, 3], [3; 3], [1; 3], [1; 3], true, &dev)
    });
    let dilated = Conv3d {
        dilation: [2; 3],
        ..conv
    };
    assert!(!Kind::of_conv(&dilated).unwrap().covered());
    let x = seeded(&dev, 1, || {
        Tensor::<5>::random([1, 2, 5, 5, 5], Distribution::Normal(0.0, 1.0), &dev)
    });
    let up = drawn(1, &dev, || {
        conv_transpose3d([2, 3], [2; 3], [2; 3], [0; 3], [0; 3], true, &dev)
    });
    let b = up.bias.as_ref().map(|b| b.val());
    let y = apply(Kind::of_transposed(&up), &x, up.weight.val(), b)
        .expect("burn-flex's own transposed convolution");
    assert_eq!(values(y), values(up.forward(x)), "transposed");
    let padded_out = drawn(2, &dev, || {
        conv_transpose3d([2, 3], [3; 3], [2; 3], [1; 3], [1; 3], true, &dev)
    });
    assert!(Kind::of_transposed(&padded_out).is_none());
}
