//! Each device step against the host routine it stands for, on every compiled CPU backend
//! (and a GPU where one answers): the device path must be the host path up to f32 rounding.

use autoseg_datasets::regions::Decoding;
use autoseg_datasets::transforms::preprocess::{
    Normalization, PreparedGrid, PreprocessPlan, prepare_image, restore_probabilities,
};
use autoseg_datasets::{Affine, Geometry, Volume};
use autoseg_kernels::resample::{Order, resample};
use burn::tensor::{Device, Tensor};

use super::*;
use crate::ComputeDevice;
use crate::inference::{Accumulation, Blend, SlidingWindow};
use crate::ops::test_support::{max_difference, values as values_of};

fn devices() -> Vec<Device> {
    ComputeDevice::available()
        .into_iter()
        .map(|d| d.burn_device())
        .collect()
}

/// Reproducible values in [0, 1).
fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919 + seed * 104_729) % 1013) as f32 / 1013.0)
        .collect()
}

#[test]
fn resampling_on_the_device_is_the_host_routine() {
    let dims = [11, 9, 7];
    let data: Vec<f32> = values(dims.iter().product(), 1)
        .iter()
        .map(|v| v * 200.0 - 50.0)
        .collect();
    let cases = [
        ([15, 6, 7], [Order::Cubic; 3]),
        ([8, 12, 3], [Order::Cubic, Order::Cubic, Order::Nearest]),
        ([11, 9, 7], [Order::Cubic; 3]),
    ];
    for device in devices() {
        for (new_dims, orders) in cases {
            let want = to_z_fastest(&resample(&data, dims, new_dims, orders), new_dims);
            let got = resample_host_channel(&data, dims, new_dims, orders, &device);
            let worst = max_difference(&values_of(got.squeeze_dim::<4>(0)), &want);
            assert!(worst < 2e-3, "{orders:?} to {new_dims:?}: {worst}");
        }
        for orders in [
            [Order::Linear; 3],
            [Order::Nearest, Order::Linear, Order::Nearest],
        ] {
            let new_dims = [5, 13, 10];
            let want = to_z_fastest(&resample(&data, dims, new_dims, orders), new_dims);
            let upload = Tensor::<1>::from_floats(to_z_fastest(&data, dims).as_slice(), &device)
                .reshape([1, 11, 9, 7]);
            let worst = max_difference(
                &values_of(ConvexResampler::new(dims, new_dims, orders, &device).apply(upload)),
                &want,
            );
            assert!(worst < 1e-3, "{orders:?}: {worst}");
        }
    }
}

fn to_z_fastest(data: &[f32], dims: [usize; 3]) -> Vec<f32> {
    autoseg_datasets::transforms::preprocess::to_z_fastest(data, dims)
}

/// Two channels of 1 x 1 x 3.5 mm voxels (nnU-Net resamples z on its own) with a zero
/// border, so that the crop to the non-zero box has work to do.
fn image() -> Volume {
    let dims = [23, 19, 9];
    let n: usize = dims.iter().product();
    let mut data = values(2 * n, 2);
    for (i, v) in data.iter_mut().enumerate() {
        let x = i % dims[0];
        let y = (i / dims[0]) % dims[1];
        if x < 3 || y > 15 {
            *v = 0.0;
        } else {
            *v = *v * 300.0 + 20.0;
        }
    }
    let affine = Affine::from_spacing_origin([1.0, 1.0, 3.5], [0.0; 3]);
    Volume::new(Geometry { dims, affine }, 2, data)
}

#[test]
fn preparing_on_the_device_is_prepare_image_for_every_normalization() {
    let image = image();
    let normalizations = [
        Normalization::ZScoreNonzero,
        Normalization::ZScore,
        Normalization::None,
        Normalization::Ct {
            lower: 40.0,
            upper: 250.0,
            mean: 120.0,
            std: 50.0,
        },
        Normalization::RangeSigmoid {
            lower: 40.0,
            upper: 250.0,
        },
    ];
    for device in devices() {
        for normalization in normalizations.clone() {
            for target_spacing in [Some([1.5, 1.5, 1.5]), None] {
                let plan = PreprocessPlan {
                    target_spacing,
                    normalization: normalization.clone(),
                    labels: vec![0, 1],
                    ignore_label: None,
                };
                let want = prepare_image(&image, &plan).unwrap();
                let (got, grid) = prepare_on_device(&image, &plan, &device).unwrap();
                assert_eq!(grid, want.grid);
                let scale = want.data.iter().fold(1f32, |m, v| m.max(v.abs()));
                let worst = max_difference(&values_of(got), &want.data) / scale;
                assert!(
                    worst < 1e-4,
                    "{normalization:?} {target_spacing:?}: {worst}"
                );
            }
        }
    }
}

/// A grid whose crop sits inside a larger RAS grid, z resampled on its own.
fn grid() -> PreparedGrid {
    PreparedGrid {
        dims: [12, 10, 14],
        spacing: [1.5, 1.5, 1.5],
        crop: [[2, 20], [1, 14], [0, 6]],
        ras_dims: [23, 15, 8],
        ras_spacing: [1.0, 1.0, 3.5],
    }
}

/// Softmax-like probabilities of `channels` on `grid`, `[c, x, y, z]` z fastest.
fn probabilities(grid: &PreparedGrid, channels: usize, seed: usize) -> Vec<f32> {
    let n: usize = grid.dims.iter().product();
    let raw = values(channels * n, seed);
    let mut out = raw.clone();
    for v in 0..n {
        let total: f32 = (0..channels).map(|k| raw[k * n + v]).sum();
        for k in 0..channels {
            out[k * n + v] = raw[k * n + v] / total;
        }
    }
    out
}

#[test]
fn restoring_and_decoding_on_the_device_is_the_host_routine() {
    let grid = grid();
    let channels = 4;
    let n: usize = grid.dims.iter().product();
    let voxels: usize = grid.ras_dims.iter().product();
    let data = probabilities(&grid, channels, 3);
    for device in devices() {
        let on_device = || GridProbabilities {
            values: Tensor::<1>::from_floats(data.as_slice(), &device).reshape([
                channels,
                grid.dims[0],
                grid.dims[1],
                grid.dims[2],
            ]),
            grid,
            weight: 1.0,
        };
        for decoding in [Decoding::Argmax, Decoding::Regions] {
            let want = restore_probabilities(&data, channels, decoding, &grid);
            let got = probabilities_on_device(&[on_device()], channels, decoding);
            assert!(max_difference(&got, &want) < 1e-5, "{decoding:?}");
            let restored = restore_probabilities(&data, channels, decoding, &grid);
            let want = decoding.classes(&restored, channels);
            let got = classes_on_device(&[on_device()], channels, decoding);
            let differ = got.iter().zip(&want).filter(|(a, b)| a != b).count();
            assert!(differ * 500 <= voxels, "{decoding:?}: {differ} of {voxels}");
            assert!(want.iter().any(|&c| c != want[0]), "more than one class");
        }
        // Two grids, weighted 3:1, are the weighted mean of what each restores to.
        let other = PreparedGrid {
            dims: [9, 7, 6],
            ..grid
        };
        let second = probabilities(&other, channels, 4);
        let want: Vec<f32> = restore_probabilities(&data, channels, Decoding::Argmax, &grid)
            .iter()
            .zip(restore_probabilities(
                &second,
                channels,
                Decoding::Argmax,
                &other,
            ))
            .map(|(a, b)| 0.75 * a + 0.25 * b)
            .collect();
        let grids = [
            GridProbabilities {
                weight: 0.75,
                ..on_device()
            },
            GridProbabilities {
                values: Tensor::<1>::from_floats(second.as_slice(), &device)
                    .reshape([channels, 9, 7, 6]),
                grid: other,
                weight: 0.25,
            },
        ];
        let got = probabilities_on_device(&grids, channels, Decoding::Argmax);
        assert!(max_difference(&got, &want) < 1e-5);
        assert_eq!(n, data.len() / channels);
    }
}

#[test]
fn blending_on_the_device_is_blending_on_the_host() {
    let dims = [13, 9, 5];
    let n: usize = dims.iter().product();
    let image = values(2 * n, 5);
    for device in devices() {
        for accumulation in [
            Accumulation::Host,
            Accumulation::Device(burn::tensor::DType::F16),
        ] {
            let window = SlidingWindow {
                roi: [8, 8, 8],
                overlap: 0.5,
                batch: 3,
                blend: Blend::Gaussian,
                accumulation,
            };
            let forward = |x: Tensor<5>| Tensor::cat(vec![x.clone().tanh(), x.exp()], 1);
            let want = window.blend(&image, 2, dims, 4, &device, forward);
            let upload = Tensor::<1>::from_floats(image.as_slice(), &device).reshape([2, 13, 9, 5]);
            let got = values_of(window.blend_on_device(upload, 4, forward));
            let tolerance = match accumulation {
                Accumulation::Host => 1e-5,
                Accumulation::Device(_) => 5e-3,
            };
            let worst = max_difference(&got, &want);
            assert!(worst < tolerance, "{accumulation:?}: {worst}");
        }
    }
}
