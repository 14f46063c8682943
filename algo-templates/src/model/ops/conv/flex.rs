//! The convolution and its gradients on burn-flex (f32, no groups or dilation).
//!
//! With `x` `[batch, ci, d, h, w]`, the kernel `[co, ci, kd, kh, kw]`, `dy`
//! `[batch, co, od, oh, ow]` and `o * stride + k - padding` the input voxel that kernel tap
//! `k` of output voxel `o` reads (zero outside the volume):
//!
//! - `dbias[co] = sum over batch and o of dy[b, co, o]`;
//! - `dweight[co, ci, k] = sum over batch and o of dy[b, co, o] * x[b, ci, o * stride + k - padding]`,
//!   one GEMM per tile of output rows: `dy`'s tile `[co, tile]` times the tile's im2col
//!   matrix `[tile, ci * kd * kh * kw]`;
//! - `y` itself: per tile of output rows, the kernel `[co, ci * taps]` times the tile's
//!   im2col matrix, written into the output;
//! - `dx` is the transposed convolution of `dy`. For unit strides that is `dy` convolved
//!   with the kernel flipped along each axis and its channel axes swapped, padded by
//!   `kernel - 1 - padding` ([`forward`]); others take burn's own.
//!
//! A transposed convolution's gradients are the same sums with `x` and `dy` swapped:
//! `dweight[ci, co, k] = sum of x[b, ci, o] * dy[b, co, o * stride + k - padding]` is
//! [`weight_grad`] with `dy` as the input, and `dx` the convolution of `dy` by the kernel.

use burn::backend::Flex;
use burn::backend::TensorMetadata;
use burn::backend::flex::FlexTensor;
use burn::backend::ops::conv::calculate_conv_output_sizes;
use burn::backend::ops::{FloatTensorOps, ModuleOps};
use burn::tensor::Shape;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use rayon::prelude::*;
use std::ops::Range;

use super::Precision;
use crate::ops::flex_slices::{contiguous, tensor, values};

/// Values in one tile's im2col matrix at most (1 MB of f32): a tile that stays in a core's
/// L2 cache made these kernels 1.5-3x faster than 16 MB tiles, and than burn-flex's own
/// forward convolution, on the U-Nets' 16-64-channel layers.
const TILE_VALUES: usize = 1 << 18;

/// The convolution itself, then the bias: by the direct kernel where it applies (unit
/// strides on AVX-512 or AVX2; in bf16 where asked and the CPU has AVX-512 BF16), else per
/// tile of output rows as the kernel `[co, ci * taps]` times the tile's im2col matrix (one
/// GEMM), written straight into the output.
pub fn forward(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&FlexTensor>,
    options: &ConvOptions<3>,
    precision: Precision,
) -> FlexTensor {
    let (x_shape, w_shape) = (x.shape(), weight.shape());
    let out_sizes = calculate_conv_output_sizes(
        &w_shape[2..],
        &options.stride,
        &options.padding,
        &options.dilation,
        &x_shape[2..],
    );
    let out_shape = Shape::from([vec![x_shape[0], w_shape[0]], out_sizes].concat());
    let g = Geometry::new(&x_shape, &out_shape, &w_shape, options);
    let (x, weight) = (contiguous(x.clone()), contiguous(weight.clone()));
    let (xs, ws) = (values(&x), values(&weight));
    let spatial: usize = g.out.iter().product();
    let mut y = direct_forward(&g, xs, ws, precision).unwrap_or_else(|| im2col_forward(&g, xs, ws));
    if let Some(bias) = bias {
        let bias = contiguous(bias.clone());
        let bias = values(&bias);
        y.par_chunks_mut(spatial.max(1))
            .enumerate()
            .for_each(|(s, slice)| slice.iter_mut().for_each(|v| *v += bias[s % g.co]));
    }
    tensor(y, out_shape)
}

/// The direct kernel's output, where it covers the convolution (x86-64 only).
fn direct_forward(g: &Geometry, xs: &[f32], ws: &[f32], precision: Precision) -> Option<Vec<f32>> {
    #[cfg(target_arch = "x86_64")]
    return super::direct::chosen(g, precision).map(|k| k.forward(g, xs, ws));
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (g, xs, ws, precision);
        None
    }
}

/// Per tile of output rows, the kernel `[co, ci * taps]` times the tile's im2col matrix.
pub(super) fn im2col_forward(g: &Geometry, xs: &[f32], ws: &[f32]) -> Vec<f32> {
    let spatial: usize = g.out.iter().product();
    let fill = |out: SharedOut| {
        (0..g.tiles())
            .into_par_iter()
            .for_each_init(Vec::new, |col, item| {
                let (b, rows) = g.tile(item);
                g.im2col(xs, b, rows.clone(), col);
                // SAFETY: each item writes only its own rows' voxels of case b, for every
                // output channel: disjoint from every other item's.
                unsafe { g.product(out, ws, b, rows, col) };
            })
    };
    // SAFETY: the tiles cover every output row of every case, and `product` writes each of
    // their voxels for every output channel.
    unsafe { written_in_full(g.batch * g.co * spatial, fill) }
}

/// The output buffer that the forward pass's workers share, each writing voxels of its own.
#[derive(Clone, Copy)]
pub(super) struct SharedOut(pub(super) *mut f32);
// SAFETY: the workers write disjoint voxels (see `forward`), and the buffer outlives them.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

/// A buffer of `len` values that `fill` writes through [`SharedOut`], not zeroed first:
/// every value is written (zeroing the outputs was part of the 11 % of the Task04 plan's
/// step spent in memset and memmove).
///
/// # Safety
/// `fill` must write each of the `len` values, and only those.
pub(super) unsafe fn written_in_full(len: usize, fill: impl FnOnce(SharedOut)) -> Vec<f32> {
    let mut y: Vec<f32> = Vec::with_capacity(len);
    fill(SharedOut(y.as_mut_ptr()));
    // SAFETY: the capacity is `len`, and `fill` initialised every value (the contract).
    unsafe { y.set_len(len) };
    y
}

/// The gradient of the input.
pub fn input_grad(
    x: FlexTensor,
    weight: FlexTensor,
    dy: FlexTensor,
    options: ConvOptions<3>,
    precision: Precision,
) -> FlexTensor {
    let kernel: [usize; 3] = std::array::from_fn(|a| weight.shape()[2 + a]);
    let padding = options.padding_begin();
    let flippable = options.stride == [1; 3]
        && !options.is_asymmetric()
        && (0..3).all(|a| padding[a] < kernel[a]);
    if flippable {
        let flipped = Flex::float_flip(Flex::float_swap_dims(weight, 0, 1), &[2, 3, 4]);
        let padding = std::array::from_fn(|a| kernel[a] - 1 - padding[a]);
        return forward(
            &dy,
            &flipped,
            None,
            &ConvOptions::new([1; 3], padding, [1; 3], 1),
            precision,
        );
    }
    Flex::conv3d_x_backward(x, weight, dy, options)
}

/// The gradient of a transposed convolution's input (without output padding): `dy`
/// convolved by the kernel with the transposed convolution's stride and padding.
pub fn transposed_input_grad(
    weight: FlexTensor,
    dy: FlexTensor,
    options: &ConvTransposeOptions<3>,
    precision: Precision,
) -> FlexTensor {
    let options = ConvOptions::new(options.stride, options.padding, options.dilation, 1);
    forward(&dy, &weight, None, &options, precision)
}

/// The gradient of a transposed convolution's kernel: [`weight_grad`] with the output's
/// gradient as the input and the input as the output's gradient.
pub fn transposed_weight_grad(
    x: &FlexTensor,
    dy: &FlexTensor,
    weight: &FlexTensor,
    options: &ConvTransposeOptions<3>,
    precision: Precision,
) -> FlexTensor {
    let options = ConvOptions::new(options.stride, options.padding, options.dilation, 1);
    weight_grad(dy, x, weight, &options, precision)
}

/// The gradient of the bias: `dy` summed per channel.
pub fn bias_grad(dy: &FlexTensor) -> FlexTensor {
    let shape = dy.shape();
    let dy = contiguous(dy.clone());
    let (channels, len) = (shape[1], shape[2..].iter().product::<usize>());
    let sums: Vec<f64> = values(&dy)
        .par_chunks(len.max(1))
        .map(|slice| slice.iter().map(|&v| v as f64).sum::<f64>())
        .collect();
    let mut per_channel = vec![0f32; channels];
    for (s, sum) in sums.into_iter().enumerate() {
        per_channel[s % channels] += sum as f32;
    }
    tensor(per_channel, [channels].into())
}

/// The gradient of the kernel: by the direct kernel where it applies (as [`forward`]),
/// else per tile of output rows as `dy`'s tile times the tile's im2col matrix.
pub fn weight_grad(
    x: &FlexTensor,
    dy: &FlexTensor,
    weight: &FlexTensor,
    options: &ConvOptions<3>,
    precision: Precision,
) -> FlexTensor {
    let w_shape = weight.shape();
    let g = Geometry::new(&x.shape(), &dy.shape(), &w_shape, options);
    let (x, dy) = (contiguous(x.clone()), contiguous(dy.clone()));
    let (xs, dys) = (values(&x), values(&dy));
    let sum = direct_weight_grad(&g, xs, dys, precision)
        .unwrap_or_else(|| im2col_weight_grad(&g, xs, dys));
    tensor(sum, w_shape)
}

/// The direct kernel's gradient of the kernel, where it covers the convolution (x86-64
/// only).
fn direct_weight_grad(
    g: &Geometry,
    xs: &[f32],
    dys: &[f32],
    precision: Precision,
) -> Option<Vec<f32>> {
    #[cfg(target_arch = "x86_64")]
    return super::direct::chosen(g, precision).map(|k| k.weight_grad(g, xs, dys));
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (g, xs, dys, precision);
        None
    }
}

/// Per tile of output rows, `dy`'s tile `[co, tile]` times the tile's im2col matrix,
/// summed per thread.
pub(super) fn im2col_weight_grad(g: &Geometry, xs: &[f32], dys: &[f32]) -> Vec<f32> {
    sum_in_parallel(
        g.tiles(),
        g.co * g.columns(),
        |item, col: &mut Vec<f32>, acc| {
            let (b, rows) = g.tile(item);
            g.im2col(xs, b, rows.clone(), col);
            g.accumulate(acc, dys, b, rows, col);
        },
    )
}

/// The sum over `0..items` of what `add(item, scratch, sums)` adds into `len` zeroed sums:
/// one set of sums and one scratch buffer per rayon job, added up at the end.
pub(super) fn sum_in_parallel<Scratch: Default + Send>(
    items: usize,
    len: usize,
    add: impl Fn(usize, &mut Scratch, &mut [f32]) + Sync,
) -> Vec<f32> {
    (0..items)
        .into_par_iter()
        .fold(
            || (vec![0f32; len], Scratch::default()),
            |(mut sums, mut scratch), item| {
                add(item, &mut scratch, &mut sums);
                (sums, scratch)
            },
        )
        .map(|(sums, _)| sums)
        .reduce_with(|mut a, b| {
            a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
            a
        })
        .unwrap_or_else(|| vec![0f32; len])
}

/// Sizes and offsets of one convolution.
pub(super) struct Geometry {
    pub(super) batch: usize,
    pub(super) ci: usize,
    pub(super) co: usize,
    pub(super) input: [usize; 3],
    pub(super) out: [usize; 3],
    pub(super) kernel: [usize; 3],
    pub(super) stride: [usize; 3],
    pub(super) padding: [usize; 3],
}

impl Geometry {
    pub(super) fn new(x: &Shape, dy: &Shape, weight: &Shape, options: &ConvOptions<3>) -> Geometry {
        Geometry {
            batch: x[0],
            ci: x[1],
            co: dy[1],
            input: [x[2], x[3], x[4]],
            out: [dy[2], dy[3], dy[4]],
            kernel: [weight[2], weight[3], weight[4]],
            stride: options.stride,
            padding: options.padding_begin(),
        }
    }

    /// Columns of the im2col matrix: one per input channel and kernel tap.
    fn columns(&self) -> usize {
        self.ci * self.kernel.iter().product::<usize>()
    }

    /// Output rows: one per (z, y) pair of the output.
    fn out_rows(&self) -> usize {
        self.out[0] * self.out[1]
    }

    /// Output rows per tile, so that a tile's im2col matrix holds at most [`TILE_VALUES`].
    fn rows_per_tile(&self) -> usize {
        (TILE_VALUES / (self.columns() * self.out[2]).max(1)).clamp(1, self.out_rows().max(1))
    }

    /// Tiles over every case, the unit of parallel work.
    fn tiles(&self) -> usize {
        self.batch * self.out_rows().div_ceil(self.rows_per_tile())
    }

    /// Tile `item`'s case and output rows.
    fn tile(&self, item: usize) -> (usize, Range<usize>) {
        let (per_tile, per_case) = (
            self.rows_per_tile(),
            self.out_rows().div_ceil(self.rows_per_tile()),
        );
        let (b, tile) = (item / per_case, item % per_case);
        (
            b,
            tile * per_tile..((tile + 1) * per_tile).min(self.out_rows()),
        )
    }

    /// The input coordinate that tap `k` of output coordinate `o` reads along `axis`.
    fn source(&self, axis: usize, o: usize, k: usize) -> Option<usize> {
        let at = (o * self.stride[axis] + k) as isize - self.padding[axis] as isize;
        (0..self.input[axis] as isize)
            .contains(&at)
            .then_some(at as usize)
    }

    /// Calls `visit(column, r, start, tx)` for each column (an input channel and tap) and
    /// each row `r` of the tile: `start` is where, within the case, the input row its tap
    /// reads begins (`None` where the tap reads outside the volume along z or y), and `tx`
    /// the tap along x.
    fn for_each_row(
        &self,
        rows: Range<usize>,
        mut visit: impl FnMut(usize, usize, Option<usize>, usize),
    ) {
        let [kd, kh, kw] = self.kernel;
        let [depth, height, width] = self.input;
        let mut column = 0;
        for c in 0..self.ci {
            for tz in 0..kd {
                for ty in 0..kh {
                    for tx in 0..kw {
                        for (r, row) in rows.clone().enumerate() {
                            let (oz, oy) = (row / self.out[1], row % self.out[1]);
                            let start = match (self.source(0, oz, tz), self.source(1, oy, ty)) {
                                (Some(z), Some(y)) => Some(((c * depth + z) * height + y) * width),
                                _ => None,
                            };
                            visit(column, r, start, tx);
                        }
                        column += 1;
                    }
                }
            }
        }
    }

    /// Fills `col` with the im2col matrix of case `b` over the output rows `rows`, stored
    /// column by column: for each input channel and tap, what it reads for each output
    /// voxel of the rows in order (zero in the padding). Every value is written, so a
    /// buffer kept from the last tile is not cleared first (clearing it cost 3 % of the
    /// Task04 plan's first-level convolution, forward and backward).
    fn im2col(&self, xs: &[f32], b: usize, rows: Range<usize>, col: &mut Vec<f32>) {
        let (ow, width) = (self.out[2], self.input[2]);
        let tile = rows.len() * ow;
        col.resize(self.columns() * tile, 0.0);
        let case = &xs[b * self.case_len()..][..self.case_len()];
        self.for_each_row(rows, |column, r, start, tx| {
            let dst = &mut col[column * tile + r * ow..][..ow];
            let (Some(start), Some((lo, hi, first))) = (start, self.row_span(tx, ow)) else {
                dst.fill(0.0);
                return;
            };
            let src = &case[start..][..width];
            dst[..lo].fill(0.0);
            dst[hi..].fill(0.0);
            match self.stride[2] {
                1 => dst[lo..hi].copy_from_slice(&src[first..][..hi - lo]),
                stride => {
                    for (i, d) in dst[lo..hi].iter_mut().enumerate() {
                        *d = src[first + i * stride];
                    }
                }
            }
        });
    }

    /// The output x range `lo..hi` whose tap `tx` reads inside an input row, and the input
    /// x that `lo` reads (output `lo + i` reads `first + i * stride`).
    fn row_span(&self, tx: usize, ow: usize) -> Option<(usize, usize, usize)> {
        let stride = self.stride[2];
        let shift = tx as isize - self.padding[2] as isize;
        let lo = if shift >= 0 {
            0
        } else {
            shift.unsigned_abs().div_ceil(stride)
        };
        let last = self.input[2] as isize - 1 - shift;
        let hi = if last < 0 {
            0
        } else {
            (last as usize / stride + 1).min(ow)
        };
        (lo < hi).then(|| (lo, hi, ((lo * stride) as isize + shift) as usize))
    }

    /// Values of one case of the input.
    fn case_len(&self) -> usize {
        self.ci * self.input.iter().product::<usize>()
    }

    /// `y[b, co, voxel] = sum over columns of weight[co, column] * col[column, voxel]` for
    /// the voxels of the output rows `rows`.
    ///
    /// # Safety
    /// `out` must hold `batch * co * spatial` values, and no one else may touch these
    /// voxels meanwhile.
    unsafe fn product(
        &self,
        out: SharedOut,
        ws: &[f32],
        b: usize,
        rows: Range<usize>,
        col: &[f32],
    ) {
        let spatial: usize = self.out.iter().product();
        let (start, tile) = (rows.start * self.out[2], rows.len() * self.out[2]);
        let columns = self.columns();
        debug_assert_eq!(ws.len(), self.co * columns);
        debug_assert_eq!(col.len(), columns * tile);
        // SAFETY: the destination is [co, tile] with rows `spatial` apart from voxel
        // `start` of case b (inside `out` by the caller's contract), the kernel [co,
        // columns] row-major and `col` [columns, tile] row-major.
        unsafe {
            gemm::gemm(
                self.co,
                tile,
                columns,
                out.0.add(b * self.co * spatial + start),
                1,
                spatial as isize,
                false,
                ws.as_ptr(),
                1,
                columns as isize,
                col.as_ptr(),
                1,
                tile as isize,
                0.0f32,
                1.0f32,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    }

    /// `acc[co, column] += sum over the tile's voxels of dy[b, co, voxel] * col[voxel, column]`.
    fn accumulate(&self, acc: &mut [f32], dys: &[f32], b: usize, rows: Range<usize>, col: &[f32]) {
        let spatial: usize = self.out.iter().product();
        let (start, tile) = (rows.start * self.out[2], rows.len() * self.out[2]);
        let dy = &dys[b * self.co * spatial + start..];
        let columns = self.columns();
        debug_assert!(dy.len() >= (self.co - 1) * spatial + tile);
        debug_assert_eq!(col.len(), columns * tile);
        // SAFETY: the pointers and strides describe `acc` as [co, columns] row-major, the
        // tile of `dy` as [co, tile] with rows `spatial` apart (within `dys`, asserted above),
        // and `col` as [tile, columns] stored column by column; none overlap.
        unsafe {
            gemm::gemm(
                self.co,
                columns,
                tile,
                acc.as_mut_ptr(),
                1,
                columns as isize,
                true,
                dy.as_ptr(),
                1,
                spatial as isize,
                col.as_ptr(),
                tile as isize,
                1,
                1.0f32,
                1.0f32,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    }
}
