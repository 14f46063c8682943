//! Resampling to a new grid the way nnU-Net does it: scipy's `zoom` with `grid_mode=True` and
//! `mode='nearest'` (what skimage's `resize(mode='edge')` calls), nearest, linear or cubic
//! B-spline per axis; values clipped to the input's range (skimage's `clip=True`); the
//! anisotropic rule (in-plane at the chosen order, nearest across slices, when the coarsest
//! spacing exceeds 3x the finest); labels by nearest or by linear interpolation of one-hot
//! masks thresholded at 0.5.
//!
//! Output voxel i along an axis of n inputs and m outputs samples the input at
//! (i + 0.5) n / m − 0.5, so voxel centres keep their physical places. Cubic interpolation
//! prefilters each line for B-spline coefficients (scipy: 12 edge values padded on each side,
//! then mirror boundary conditions), so it passes through the input samples.

mod line_plan;

use line_plan::LinePlan;
use rayon::prelude::*;

/// Interpolation along one axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Nearest,
    Linear,
    Cubic,
}

/// The grid nnU-Net resamples to: round(shape x spacing / new spacing), at least 1 voxel.
pub fn target_shape(dims: [usize; 3], spacing: [f64; 3], new_spacing: [f64; 3]) -> [usize; 3] {
    std::array::from_fn(|a| {
        ((dims[a] as f64 * spacing[a] / new_spacing[a]).round_ties_even() as usize).max(1)
    })
}

/// nnU-Net's anisotropy rule: the axis to resample on its own (by nearest) when the coarsest
/// spacing is more than `3x` the finest, taken from the current spacing, else the new one;
/// `None` when neither is that anisotropic or no single axis is the coarsest.
pub fn separate_axis(spacing: [f64; 3], new_spacing: [f64; 3]) -> Option<usize> {
    let lowres = |s: [f64; 3]| -> Option<usize> {
        let (max, min) = (
            s.iter().cloned().fold(f64::MIN, f64::max),
            s.iter().cloned().fold(f64::MAX, f64::min),
        );
        if max / min <= 3.0 {
            return None;
        }
        let coarsest: Vec<usize> = (0..3).filter(|&a| s[a] == max).collect();
        (coarsest.len() == 1).then(|| coarsest[0])
    };
    lowres(spacing).or_else(|| lowres(new_spacing))
}

/// Per-axis orders for an image: `order` everywhere, or nearest along the separate axis.
pub fn image_orders(order: Order, separate: Option<usize>) -> [Order; 3] {
    std::array::from_fn(|a| {
        if Some(a) == separate {
            Order::Nearest
        } else {
            order
        }
    })
}

/// Resamples one channel (x fastest) from `dims` to `new_dims` with an order per axis.
/// Output values are clipped to the input's range; with a separate (nearest) axis, as
/// nnU-Net resizes slice by slice, each slice is clipped to its own input slice's range.
pub fn resample(
    data: &[f32],
    dims: [usize; 3],
    new_dims: [usize; 3],
    orders: [Order; 3],
) -> Vec<f32> {
    assert_eq!(
        data.len(),
        dims.iter().product::<usize>(),
        "data does not fill dims {dims:?}"
    );
    if !orders.contains(&Order::Cubic) {
        return resample_direct(data, dims, new_dims, orders);
    }
    let start: Vec<f64> = data.iter().map(|&v| v as f64).collect();
    let cpu = separable(
        data,
        dims,
        new_dims,
        orders,
        start,
        |v, current, axis, m, order| {
            Ok::<_, std::convert::Infallible>(resample_axis(&v, current, axis, m, order))
        },
        |mut v, current, axis, ranges| {
            clip_slices(&mut v, current, axis, ranges);
            Ok(v)
        },
    );
    match cpu {
        Ok((values, separate)) => finish_separable(values, data, separate),
    }
}

/// The separable path's order of work, shared by the CPU, CUDA and tensor-device paths: the
/// in-plane axes first and the separate (nearest) axis last, as nnU-Net resizes slice by
/// slice; each slice clipped to its input slice's range before the last axis; axes whose size stays skipped.
/// Returns the values and whether there was a separate axis.
pub fn separable<V, E>(
    data: &[f32],
    dims: [usize; 3],
    new_dims: [usize; 3],
    orders: [Order; 3],
    start: V,
    mut pass: impl FnMut(V, [usize; 3], usize, usize, Order) -> Result<V, E>,
    mut clip: impl FnMut(V, [usize; 3], usize, &[(f64, f64)]) -> Result<V, E>,
) -> Result<(V, bool), E> {
    let mut values = start;
    let mut current = dims;
    let separate = (0..3)
        .find(|&a| orders[a] == Order::Nearest && orders.iter().any(|&o| o != Order::Nearest));
    let mut axes: Vec<usize> = (0..3).filter(|&a| Some(a) != separate).collect();
    axes.extend(separate);
    for (step, &axis) in axes.iter().enumerate() {
        if separate.is_some() && step == 2 {
            values = clip(values, current, axis, &slice_ranges(data, dims, axis))?;
        }
        if current[axis] != new_dims[axis] {
            values = pass(values, current, axis, new_dims[axis], orders[axis])?;
            current[axis] = new_dims[axis];
        }
    }
    Ok((values, separate.is_some()))
}

/// The separable path's result as f32, clipped to the input's range unless the slices were.
pub(crate) fn finish_separable(values: Vec<f64>, data: &[f32], separate: bool) -> Vec<f32> {
    let (lo, hi) = value_range(data);
    values
        .into_iter()
        .map(|v| {
            if separate {
                v as f32
            } else {
                v.clamp(lo, hi) as f32
            }
        })
        .collect()
}

/// Per slice across `axis`, the (min, max) of the input.
pub fn slice_ranges(input: &[f32], dims: [usize; 3], axis: usize) -> Vec<(f64, f64)> {
    let mut ranges = vec![(f64::INFINITY, f64::NEG_INFINITY); dims[axis]];
    for (i, &v) in input.iter().enumerate() {
        let r = &mut ranges[slice_of(i, dims, axis)];
        *r = (r.0.min(v as f64), r.1.max(v as f64));
    }
    ranges
}

fn slice_of(i: usize, d: [usize; 3], axis: usize) -> usize {
    [i % d[0], (i / d[0]) % d[1], i / (d[0] * d[1])][axis]
}

/// The `[m, n]` matrix (row-major) that resamples a line of `n` samples to `m` at `order`:
/// output `i` is the sum over `j` of `M[i][j]` times input `j`, before any clipping. Devices
/// that resample by matrix products build theirs from it, so that they agree with
/// [`resample`].
pub fn axis_matrix(n: usize, m: usize, order: Order) -> Vec<f64> {
    let identity: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
        .collect();
    let rows: Vec<&[f64]> = identity.iter().map(Vec::as_slice).collect();
    let mut matrix = vec![0.0; m * n];
    LinePlan::new(n, m, order).apply(&rows, n, &mut matrix, &mut Vec::new());
    matrix
}

/// The taps of a line of `n` samples resampled to `m` at `order` (see [`LinePlan`]).
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
pub(crate) fn line_taps(n: usize, m: usize, order: Order) -> Vec<(isize, [f64; 4])> {
    LinePlan::new(n, m, order).taps
}

/// Per axis and output coordinate: the two input indices and weights that nearest (one index
/// twice, weights 1 and 0) or linear resampling reads. Shared by the CPU and CUDA paths.
pub(crate) type AxisTaps = Vec<([usize; 2], [f32; 2])>;

pub(crate) fn direct_taps(
    dims: [usize; 3],
    new_dims: [usize; 3],
    orders: [Order; 3],
) -> [AxisTaps; 3] {
    std::array::from_fn(|a| {
        let plan = LinePlan::new(dims[a], new_dims[a], orders[a]);
        let last = dims[a] as isize - 1;
        plan.taps
            .iter()
            .map(|&(i, w)| match orders[a] {
                Order::Nearest => ([i.clamp(0, last) as usize; 2], [1.0, 0.0]),
                _ => (
                    [i.clamp(0, last) as usize, (i + 1).clamp(0, last) as usize],
                    [w[0] as f32, w[1] as f32],
                ),
            })
            .collect()
    })
}

/// Nearest and linear resampling straight from the input: each output voxel reads its (up to)
/// eight neighbours once, with no intermediate volumes. A convex combination needs no clipping.
fn resample_direct(
    data: &[f32],
    dims: [usize; 3],
    new_dims: [usize; 3],
    orders: [Order; 3],
) -> Vec<f32> {
    let planes = PlaneResampler::new(dims, new_dims, orders);
    let (plane_in, plane_out) = (dims[0] * dims[1], new_dims[0] * new_dims[1]);
    let mut out = vec![0f32; plane_out * new_dims[2]];
    out.par_chunks_mut(plane_out)
        .enumerate()
        .for_each(|(z, slice)| {
            let (zi, zw) = planes.z_taps(z);
            let input = zi.map(|i| &data[i * plane_in..][..plane_in]);
            planes.plane(input, zw, slice);
        });
    out
}

/// Nearest or linear resampling one output z-plane at a time, from the two input z-planes
/// each reads: how a volume that arrives (or leaves) slice by slice is resampled without
/// being whole in memory, with the same arithmetic as [`resample`].
pub struct PlaneResampler {
    taps: [AxisTaps; 3],
    dims: [usize; 3],
    new_dims: [usize; 3],
}

impl PlaneResampler {
    /// From `dims` to `new_dims` (x fastest) at `orders`, none of them cubic.
    ///
    /// # Panics
    /// When an order is cubic (its prefilter needs whole lines).
    pub fn new(dims: [usize; 3], new_dims: [usize; 3], orders: [Order; 3]) -> PlaneResampler {
        assert!(
            !orders.contains(&Order::Cubic),
            "plane by plane resampling is nearest or linear"
        );
        PlaneResampler {
            taps: direct_taps(dims, new_dims, orders),
            dims,
            new_dims,
        }
    }

    /// The input planes output plane `z` reads, and their weights.
    pub fn z_taps(&self, z: usize) -> ([usize; 2], [f32; 2]) {
        self.taps[2][z]
    }

    /// Output plane `out` (`new_dims` x by y, x fastest) from `input`, the input planes
    /// [`Self::z_taps`] names, weighted by `zw`.
    pub fn plane(&self, input: [&[f32]; 2], zw: [f32; 2], out: &mut [f32]) {
        let nx = self.dims[0];
        for (row, &(yi, yw)) in out.chunks_exact_mut(self.new_dims[0]).zip(&self.taps[1]) {
            let line = |z: usize, y: usize| &input[z][yi[y] * nx..][..nx];
            let lines = [line(0, 0), line(0, 1), line(1, 0), line(1, 1)];
            let weights = [zw[0] * yw[0], zw[0] * yw[1], zw[1] * yw[0], zw[1] * yw[1]];
            for (v, &(xi, xw)) in row.iter_mut().zip(&self.taps[0]) {
                let mut sum = 0.0f32;
                for (l, w) in lines.iter().zip(weights) {
                    sum += w * (xw[0] * l[xi[0]] + xw[1] * l[xi[1]]);
                }
                *v = sum;
            }
        }
    }
}

/// Resamples a label map: `Nearest` takes the nearest id; otherwise each class's mask is
/// resampled with `orders` and thresholded at 0.5, classes in ascending order overwriting
/// (nnU-Net's `resize_segmentation`).
pub fn resample_labels(
    labels: &[u16],
    dims: [usize; 3],
    new_dims: [usize; 3],
    orders: [Order; 3],
) -> Vec<u16> {
    if orders.iter().all(|&o| o == Order::Nearest) {
        let as_f32: Vec<f32> = labels.iter().map(|&l| l as f32).collect();
        return resample(&as_f32, dims, new_dims, orders)
            .into_iter()
            .map(|v| v as u16)
            .collect();
    }
    let mut classes: Vec<u16> = labels.to_vec();
    classes.sort_unstable();
    classes.dedup();
    let mut out = vec![0u16; new_dims.iter().product()];
    for class in classes.into_iter().filter(|&c| c != 0) {
        let mask: Vec<f32> = labels.iter().map(|&l| (l == class) as u8 as f32).collect();
        let resized = resample(&mask, dims, new_dims, orders);
        for (o, m) in out.iter_mut().zip(resized) {
            if m >= 0.5 {
                *o = class;
            }
        }
    }
    out
}

/// The (min, max) of `data`, which the separable path clips to.
pub fn value_range(data: &[f32]) -> (f64, f64) {
    data.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v as f64), hi.max(v as f64))
        })
}

/// Clips each slice across `axis` of `values` (already resampled in-plane, `dims`) to the range
/// of the same slice of the input.
fn clip_slices(values: &mut [f64], dims: [usize; 3], axis: usize, ranges: &[(f64, f64)]) {
    for (i, v) in values.iter_mut().enumerate() {
        let (lo, hi) = ranges[slice_of(i, dims, axis)];
        *v = v.clamp(lo, hi);
    }
}

/// Resamples every line along `axis` to `m` samples.
///
/// The volume is seen as `outer` stacks of `n` blocks of `block` contiguous values (block = 1
/// along x, a row along y, a slice along z): the 1D filter runs on whole blocks at once, so
/// the inner loops run over contiguous memory. Tasks are (stack, run of columns) pairs, in
/// parallel; each returns its output columns, copied into place afterwards.
fn resample_axis(
    values: &[f64],
    dims: [usize; 3],
    axis: usize,
    m: usize,
    order: Order,
) -> Vec<f64> {
    let n = dims[axis];
    let block: usize = dims[..axis].iter().product();
    let outer = values.len() / (n * block);
    let plan = LinePlan::new(n, m, order);
    let mut out = vec![0.0; outer * m * block];
    if block == 1 {
        // Along x each line is contiguous: one task per line, written in place.
        out.par_chunks_mut(m)
            .zip(values.par_chunks(n))
            .for_each_init(Vec::new, |scratch, (dst, src)| {
                plan.apply_contiguous(src, dst, scratch)
            });
    } else if block <= COLUMNS {
        // One task per stack; its output rows are contiguous too.
        out.par_chunks_mut(m * block)
            .zip(values.par_chunks(n * block))
            .for_each_init(Vec::new, |scratch, (dst, stack)| {
                let rows: Vec<&[f64]> = stack.chunks_exact(block).collect();
                plan.apply(&rows, block, dst, scratch);
            });
    } else {
        // Wide blocks (slices along z): tasks over runs of columns, copied into place after.
        let tasks: Vec<(usize, usize)> = (0..outer)
            .flat_map(|o| (0..block).step_by(COLUMNS).map(move |c| (o, c)))
            .collect();
        let pieces: Vec<Vec<f64>> = tasks
            .par_iter()
            .map(|&(o, c0)| {
                let cols = COLUMNS.min(block - c0);
                let stack = &values[o * n * block..(o + 1) * n * block];
                let rows: Vec<&[f64]> = (0..n)
                    .map(|i| &stack[i * block + c0..i * block + c0 + cols])
                    .collect();
                let mut piece = vec![0.0; m * cols];
                plan.apply(&rows, cols, &mut piece, &mut Vec::new());
                piece
            })
            .collect();
        for (&(o, c0), piece) in tasks.iter().zip(&pieces) {
            let cols = COLUMNS.min(block - c0);
            for k in 0..m {
                let at = (o * m + k) * block + c0;
                out[at..at + cols].copy_from_slice(&piece[k * cols..(k + 1) * cols]);
            }
        }
    }
    out
}

/// Columns one task filters (bounds the scratch of a task to a few hundred kilobytes).
const COLUMNS: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Lcg;

    /// `fixtures/resample/scipy_zoom.json`, made by `make_scipy_fixture.py` beside it.
    fn fixture() -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/resample/scipy_zoom.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn floats(v: &serde_json::Value) -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    }

    #[test]
    fn the_axis_matrix_resamples_as_the_routine_does() {
        let mut rng = Lcg(7);
        for order in [Order::Nearest, Order::Linear, Order::Cubic] {
            for (n, m) in [(9, 14), (14, 9), (5, 5), (1, 3)] {
                let dims = [n, 3, 2];
                let data: Vec<f32> = (0..n * 6)
                    .map(|_| rng.next_unit() as f32 * 10.0 - 5.0)
                    .collect();
                let want = resample(&data, dims, [m, 3, 2], [order; 3]);
                let matrix = axis_matrix(n, m, order);
                let (lo, hi) = value_range(&data);
                let got: Vec<f32> = data
                    .chunks(n)
                    .flat_map(|line| {
                        let matrix = &matrix;
                        (0..m).map(move |i| {
                            let row = &matrix[i * n..(i + 1) * n];
                            let v: f64 = row.iter().zip(line).map(|(w, &x)| w * x as f64).sum();
                            v.clamp(lo, hi) as f32
                        })
                    })
                    .collect();
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() < 1e-5, "{order:?} {n}->{m}: {g} vs {w}");
                }
            }
        }
    }

    fn triple(v: &serde_json::Value) -> [usize; 3] {
        let a: Vec<usize> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        [a[0], a[1], a[2]]
    }

    fn assert_close(got: &[f32], want: &[f64], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (*g as f64 - w).abs() <= 1e-4 * w.abs().max(1.0),
                "{what}: voxel {i}: {g} vs scipy {w}"
            );
        }
    }

    #[test]
    fn matches_scipy_zoom_at_orders_0_1_3() {
        let f = fixture();
        let dims = triple(&f["shape"]);
        let input: Vec<f32> = floats(&f["input"]).into_iter().map(|v| v as f32).collect();
        for case in f["cases"].as_array().unwrap() {
            let new_dims = triple(&case["new_shape"]);
            let order = [Order::Nearest, Order::Linear, Order::Linear, Order::Cubic]
                [case["order"].as_u64().unwrap() as usize];
            let got = resample(&input, dims, new_dims, [order; 3]);
            assert_close(
                &got,
                &floats(&case["out"]),
                &format!("{order:?} to {new_dims:?}"),
            );
        }
    }

    #[test]
    fn matches_nnunet_separate_z() {
        let f = fixture();
        let dims = triple(&f["shape"]);
        let input: Vec<f32> = floats(&f["input"]).into_iter().map(|v| v as f32).collect();
        let case = &f["separate_z"];
        let new_dims = triple(&case["new_shape"]);
        let got = resample(&input, dims, new_dims, image_orders(Order::Cubic, Some(2)));
        assert_close(&got, &floats(&case["out"]), "separate z");
    }

    /// Trilinear (or nearest) by its definition, one output voxel at a time: the input at
    /// (i + 0.5) n / m - 0.5 per axis, neighbours clamped to the volume.
    fn brute_force(data: &[f32], dims: [usize; 3], new_dims: [usize; 3], linear: bool) -> Vec<f64> {
        let at = |x: isize, y: isize, z: isize| {
            let c = |v: isize, n: usize| v.clamp(0, n as isize - 1) as usize;
            data[(c(z, dims[2]) * dims[1] + c(y, dims[1])) * dims[0] + c(x, dims[0])] as f64
        };
        let mut out = Vec::new();
        for k in 0..new_dims[2] {
            for j in 0..new_dims[1] {
                for i in 0..new_dims[0] {
                    let p: [f64; 3] = std::array::from_fn(|a| {
                        ([i, j, k][a] as f64 + 0.5) * dims[a] as f64 / new_dims[a] as f64 - 0.5
                    });
                    if !linear {
                        let r = p.map(|v| (v + 0.5).floor() as isize);
                        out.push(at(r[0], r[1], r[2]));
                        continue;
                    }
                    let f = p.map(|v| v.floor());
                    let mut v = 0.0;
                    for corner in 0..8 {
                        let mut w = 1.0;
                        let mut q = [0isize; 3];
                        for a in 0..3 {
                            let up = corner >> a & 1 == 1;
                            q[a] = f[a] as isize + up as isize;
                            w *= if up { p[a] - f[a] } else { 1.0 - (p[a] - f[a]) };
                        }
                        v += w * at(q[0], q[1], q[2]);
                    }
                    out.push(v);
                }
            }
        }
        out
    }

    #[test]
    fn nearest_and_linear_match_their_definition_on_random_volumes() {
        let mut rng = Lcg(5);
        let mut next = move || (rng.next_unit() * 1e6) as usize;
        for _ in 0..6 {
            let dims = [2 + next() % 9, 2 + next() % 9, 2 + next() % 9];
            let new_dims = [1 + next() % 14, 1 + next() % 14, 1 + next() % 14];
            let data: Vec<f32> = (0..dims.iter().product::<usize>())
                .map(|_| (next() % 1000) as f32 / 7.0)
                .collect();
            for (order, linear) in [(Order::Nearest, false), (Order::Linear, true)] {
                let got = resample(&data, dims, new_dims, [order; 3]);
                let want = brute_force(&data, dims, new_dims, linear);
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        (*g as f64 - w).abs() <= 1e-4 * w.abs().max(1.0),
                        "{order:?} {dims:?}->{new_dims:?}: {g} vs {w}"
                    );
                }
            }
        }
    }

    #[test]
    fn cubic_passes_through_the_samples_and_linear_is_exact_on_ramps() {
        let dims = [6, 5, 4];
        let ramp: Vec<f32> = (0..120)
            .map(|i| (i % 6) as f32 * 2.0 + (i / 30) as f32)
            .collect();
        let same = resample(&ramp, dims, dims, [Order::Cubic; 3]);
        assert_eq!(same, ramp, "no axis changes: untouched");
        // Upsampling x by 2 linearly: interior samples sit a quarter voxel from the inputs.
        let up = resample(&ramp, dims, [12, 5, 4], [Order::Linear; 3]);
        assert!((up[3] - (2.0 * 1.25)).abs() < 1e-6, "{}", up[3]);
    }

    #[test]
    fn labels_by_one_hot_interpolation_and_nearest() {
        let dims = [8, 8, 8];
        let labels: Vec<u16> = (0..512)
            .map(|i| {
                let (x, y, z) = (i % 8, (i / 8) % 8, i / 64);
                if (2..6).contains(&x) && (2..6).contains(&y) && (2..6).contains(&z) {
                    2
                } else {
                    0
                }
            })
            .collect();
        let up = resample_labels(&labels, dims, [16, 16, 16], [Order::Linear; 3]);
        // 8 outputs per axis reach 0.75 or more of the cube; the 8 corners, at 0.75^3 < 0.5,
        // fall outside (edges, at 0.75^2, stay in).
        assert_eq!(up.iter().filter(|&&l| l == 2).count(), 8 * 8 * 8 - 8);
        let down = resample_labels(&labels, dims, [4, 4, 4], [Order::Nearest; 3]);
        assert_eq!(down.iter().filter(|&&l| l == 2).count(), 8);
    }

    #[test]
    fn nnunet_shape_and_anisotropy_rules() {
        assert_eq!(
            target_shape([240, 240, 155], [1.0, 1.0, 1.0], [1.5, 1.5, 1.5]),
            [160, 160, 103]
        );
        assert_eq!(separate_axis([0.8, 0.8, 5.0], [1.0, 1.0, 1.0]), Some(2));
        assert_eq!(
            separate_axis([1.0, 1.0, 1.0], [1.0, 3.0, 1.0]),
            None,
            "3x is not more than 3x"
        );
        assert_eq!(separate_axis([1.0, 1.0, 1.0], [0.7, 4.0, 0.7]), Some(1));
        assert_eq!(
            separate_axis([4.0, 4.0, 1.0], [1.0; 3]),
            None,
            "two coarsest axes"
        );
    }
}
