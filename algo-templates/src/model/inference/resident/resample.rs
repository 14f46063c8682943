//! Resampling a volume on the network's device as one matrix product per axis. Each axis's
//! matrix is the kernels' own ([`axis_matrix`]) and the order of work and clipping is the
//! kernels' separable path ([`separable`]), so the result is [`resample`]'s up to f32
//! rounding.
//!
//! [`resample`]: autoseg_kernels::resample::resample

use autoseg_kernels::resample::{Order, axis_matrix, separable, value_range};
use burn::tensor::{Device, Tensor};

use crate::ops::resize::along_axis;

/// One channel of `dims` given on the host (x fastest), resampled to `new_dims` on `device`
/// (`[1, 1, x, y, z]`, z fastest): the spline orders' values clipped to the input's range,
/// slice by slice where an axis is resampled on its own, as the host routine does.
pub fn resample_host_channel(
    data: &[f32],
    dims: [usize; 3],
    new_dims: [usize; 3],
    orders: [Order; 3],
    device: &Device,
) -> Tensor<5> {
    let [x, y, z] = dims;
    let start = Tensor::<1>::from_floats(data, device)
        .reshape([z, y, x])
        .permute([2, 1, 0])
        .reshape([1, 1, x, y, z]);
    if dims == new_dims {
        return start;
    }
    let pass = |v: Tensor<5>, _current: [usize; 3], axis: usize, m: usize, order: Order| {
        Ok::<_, std::convert::Infallible>(resample_axis(v, axis, m, order))
    };
    let clip = |v: Tensor<5>, current: [usize; 3], axis: usize, ranges: &[(f64, f64)]| {
        Ok(clip_slices(v, current, axis, ranges))
    };
    let Ok((values, separate)) = separable(data, dims, new_dims, orders, start, pass, clip);
    if separate {
        values
    } else {
        let (lo, hi) = value_range(data);
        values.clamp(lo as f32, hi as f32)
    }
}

/// Nearest or linear resampling of channels on the device (`[c, x, y, z]`) from one grid to
/// another: convex combinations, which need no clipping. The axes' matrices are built and
/// uploaded once, for every channel of every call (restoring takes one class at a time).
pub struct ConvexResampler {
    /// Per axis, the `[n, m]` matrix, or `None` where the size stays.
    matrices: [Option<Tensor<2>>; 3],
}

impl ConvexResampler {
    /// From `dims` to `new_dims` at `orders` (no cubic: its clipping needs the host values).
    pub fn new(
        dims: [usize; 3],
        new_dims: [usize; 3],
        orders: [Order; 3],
        device: &Device,
    ) -> ConvexResampler {
        assert!(
            !orders.contains(&Order::Cubic),
            "cubic needs the host values' ranges"
        );
        let matrices = std::array::from_fn(|a| {
            (dims[a] != new_dims[a])
                .then(|| transposed_matrix(dims[a], new_dims[a], orders[a], device))
        });
        ConvexResampler { matrices }
    }

    /// `values` (`[c, x, y, z]` of the `dims` given) on the new grid.
    pub fn apply(&self, values: Tensor<4>) -> Tensor<4> {
        let mut values: Tensor<5> = values.unsqueeze_dim(0);
        for (axis, matrix) in self.matrices.iter().enumerate() {
            if let Some(matrix) = matrix {
                let m = matrix.dims()[1];
                values = along_axis(values, 2 + axis, m, |_, _, _| matrix.clone());
            }
        }
        values.squeeze_dim(0)
    }
}

/// Every line along image `axis` (tensor axis `2 + axis`) resampled to `m` samples.
fn resample_axis(values: Tensor<5>, axis: usize, m: usize, order: Order) -> Tensor<5> {
    along_axis(values, 2 + axis, m, |n, m, device| {
        transposed_matrix(n, m, order, device)
    })
}

/// The kernels' `[m, n]` line matrix transposed, as `along_axis` multiplies by `[n, m]`.
fn transposed_matrix(n: usize, m: usize, order: Order, device: &Device) -> Tensor<2> {
    let matrix = axis_matrix(n, m, order);
    let transposed: Vec<f32> = (0..n * m)
        .map(|k| matrix[(k % m) * n + k / m] as f32)
        .collect();
    Tensor::<1>::from_floats(transposed.as_slice(), device).reshape([n, m])
}

/// Clips each slice across `axis` of `values` (`current`-shaped) to its `ranges`.
fn clip_slices(
    values: Tensor<5>,
    current: [usize; 3],
    axis: usize,
    ranges: &[(f64, f64)],
) -> Tensor<5> {
    let device = values.device();
    let shape: [usize; 5] = std::array::from_fn(|d| if d == 2 + axis { current[axis] } else { 1 });
    let bound = |pick: fn(&(f64, f64)) -> f64| {
        let v: Vec<f32> = ranges.iter().map(|r| pick(r) as f32).collect();
        Tensor::<1>::from_floats(v.as_slice(), &device)
            .reshape(shape)
            .expand(values.shape())
    };
    let (lo, hi) = (bound(|r| r.0), bound(|r| r.1));
    values.max_pair(lo).min_pair(hi)
}
