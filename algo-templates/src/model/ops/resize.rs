//! Resizing `[n, c, x, y, z]` tensors to a new spatial size, axis by axis.
//!
//! Linear resizing is a matrix product per axis (`x · W` with a sparse `[in, out]`
//! interpolation matrix), so it is differentiable everywhere; nearest-exact is an index
//! selection. Both follow PyTorch's `F.interpolate` with `align_corners=False`.

use burn::tensor::{Device, Int, Tensor};

/// Trilinear resize to `size`: PyTorch's `interpolate(mode="trilinear", align_corners=False)`.
///
/// Used by upsampling decoders and by deep-supervision heads brought to full resolution.
pub fn resize_linear(x: Tensor<5>, size: [usize; 3]) -> Tensor<5> {
    let mut x = x;
    for (axis, &out) in size.iter().enumerate() {
        x = along_axis(x, 2 + axis, out, |input, output, device| {
            let weights = linear_weights(input, output);
            Tensor::<1>::from_floats(weights.as_slice(), device).reshape([input, output])
        });
    }
    x
}

/// Nearest-exact resize to `size`: PyTorch's `interpolate(mode="nearest-exact")`, which
/// MONAI's deep-supervision loss uses to bring a label map to each output's size.
pub fn resize_nearest_exact(x: Tensor<5>, size: [usize; 3]) -> Tensor<5> {
    let mut x = x;
    for (axis, &out) in size.iter().enumerate() {
        let input = x.dims()[2 + axis];
        if input == out {
            continue;
        }
        let indices: Vec<i64> = (0..out)
            .map(|o| nearest_exact_source(o, input, out) as i64)
            .collect();
        let device = x.device();
        let indices = Tensor::<1, Int>::from_ints(indices.as_slice(), &device);
        x = x.select(2 + axis, indices);
    }
    x
}

/// Applies an `[input, output]` matrix along `axis` (skipped when the size already fits).
pub(crate) fn along_axis(
    x: Tensor<5>,
    axis: usize,
    output: usize,
    matrix: impl Fn(usize, usize, &Device) -> Tensor<2>,
) -> Tensor<5> {
    let input = x.dims()[axis];
    if input == output {
        return x;
    }
    let moved = x.swap_dims(axis, 4);
    let dims = moved.dims();
    let rows = dims[..4].iter().product::<usize>();
    let w = matrix(input, output, &moved.device());
    moved
        .reshape([rows, input])
        .matmul(w)
        .reshape([dims[0], dims[1], dims[2], dims[3], output])
        .swap_dims(axis, 4)
}

/// The `[input, output]` matrix of 1D linear interpolation, half-pixel centres, source
/// positions clamped at the low edge as PyTorch does.
fn linear_weights(input: usize, output: usize) -> Vec<f32> {
    let scale = input as f64 / output as f64;
    let mut w = vec![0f32; input * output];
    for o in 0..output {
        let source = ((o as f64 + 0.5) * scale - 0.5).max(0.0);
        let lo = (source.floor() as usize).min(input - 1);
        let hi = (lo + 1).min(input - 1);
        let frac = (source - lo as f64) as f32;
        w[lo * output + o] += 1.0 - frac;
        w[hi * output + o] += frac;
    }
    w
}

fn nearest_exact_source(o: usize, input: usize, output: usize) -> usize {
    let scale = input as f64 / output as f64;
    (((o as f64 + 0.5) * scale).floor() as usize).min(input - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(device: &Device) -> Tensor<5> {
        let values: Vec<f32> = (0..4).map(|v| v as f32).collect();
        Tensor::<1>::from_floats(values.as_slice(), device).reshape([1, 1, 4, 1, 1])
    }

    #[test]
    fn linear_upsampling_by_two_matches_pytorch() {
        // torch: F.interpolate(arange(4.)[None,None,:,None,None], size=(8,1,1),
        //   mode="trilinear", align_corners=False).flatten()
        let y = resize_linear(ramp(&Device::flex()), [8, 1, 1]);
        let got = y.into_data().try_to_vec::<f32>().unwrap();
        let want = [0.0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.0];
        assert_eq!(got, want);
    }

    #[test]
    fn nearest_exact_downsampling_picks_window_centres() {
        // torch: F.interpolate(..., size=(2,1,1), mode="nearest-exact") -> [1., 3.]
        let y = resize_nearest_exact(ramp(&Device::flex()), [2, 1, 1]);
        assert_eq!(y.into_data().try_to_vec::<f32>().unwrap(), vec![1.0, 3.0]);
    }

    #[test]
    fn weights_of_each_output_sum_to_one() {
        for (i, o) in [(3, 7), (7, 3), (5, 5), (1, 4)] {
            let w = linear_weights(i, o);
            for col in 0..o {
                let s: f32 = (0..i).map(|r| w[r * o + col]).sum();
                assert!((s - 1.0).abs() < 1e-6, "{i}->{o} column {col}: {s}");
            }
        }
    }
}
