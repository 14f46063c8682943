//! The kernel's gradient: per output slice, a group of output channels x a block of columns
//! (an input channel and a tap) at a time (8 x 3 on AVX-512, 4 x 2 on AVX2), summed over the
//! slice's flat voxels a vector at a time.

use rayon::prelude::*;

use super::Kernels;
use super::Padded;
use crate::ops::conv::flex::{Geometry, sum_in_parallel};

/// `dweight[co, ci, tap] = sum over cases and output voxels o of dy[b, co, o] *
/// x[b, ci, o + tap - padding]` (zero outside the input), by `kernels` (those
/// [`super::kernels_for`] gives `g`); `[co, ci, taps]` in order.
pub fn weight_grad(g: &Geometry, xs: &[f32], dys: &[f32], kernels: &Kernels) -> Vec<f32> {
    assert!(
        g.stride == [1; 3] && (kernels.supported)(),
        "the direct convolution needs unit strides and a CPU with {}",
        kernels.isa
    );
    let padded = Padded::new(g);
    let columns = g.ci * padded.offsets.len();
    let sums = Sums {
        rows: g.co.div_ceil(kernels.channels) * kernels.channels,
        columns: columns.div_ceil(kernels.columns) * kernels.columns,
    };
    if g.out.contains(&0) {
        return vec![0.0; g.co * columns];
    }
    let volume = padded.fill(g, xs);
    let dy = DyRows::new(g, &padded, (sums.rows, kernels.lanes), dys);
    let slice = Slice {
        padded: &padded,
        g,
        volume: &volume,
        dy: &dy,
        sums: &sums,
        kernels,
    };
    let total = sum_in_parallel(
        g.batch * g.out[0],
        sums.rows * sums.columns,
        |item, partial, acc| {
            slice.add_sums((item / g.out[0], item % g.out[0]), partial, acc);
        },
    );
    (0..g.co)
        .flat_map(|co| &total[co * sums.columns..][..columns])
        .copied()
        .collect()
}

/// The sums' layout: output channels and columns, each rounded up to whole groups.
struct Sums {
    rows: usize,
    columns: usize,
}

/// The output's gradient on the padded layout's flat voxels, slice by slice: `[batch,
/// rows, out depth, len]`, zero where x or y lies in the padding and in channels past the
/// last, so that those voxels and channels add nothing.
struct DyRows {
    values: Vec<f32>,
    len: usize,
    channel_len: usize,
}

impl DyRows {
    /// `rows` channels (`g.co` rounded up to whole groups), each slice's row whole vectors
    /// of `lanes`.
    fn new(g: &Geometry, padded: &Padded, (rows, lanes): (usize, usize), dys: &[f32]) -> DyRows {
        let [od, oh, ow] = g.out;
        let len = padded.slice_len(g, lanes);
        let channel_len = od * len;
        let mut values = vec![0f32; g.batch * rows * channel_len];
        values
            .par_chunks_mut(channel_len)
            .enumerate()
            .filter(|(i, _)| i % rows < g.co)
            .for_each(|(i, dst)| {
                let (b, c) = (i / rows, i % rows);
                let src = &dys[(b * g.co + c) * od * oh * ow..][..od * oh * ow];
                for (z, slice) in src.chunks(oh * ow).enumerate() {
                    for (y, row) in slice.chunks(ow).enumerate() {
                        dst[z * len + y * padded.dims[2]..][..ow].copy_from_slice(row);
                    }
                }
            });
        DyRows {
            values,
            len,
            channel_len,
        }
    }
}

/// What every slice's sums read.
struct Slice<'a> {
    padded: &'a Padded,
    g: &'a Geometry,
    volume: &'a [f32],
    dy: &'a DyRows,
    sums: &'a Sums,
    kernels: &'a Kernels,
}

impl Slice<'_> {
    /// Adds output slice `z` of case `b`'s share of every sum into `acc` (`[rows,
    /// columns]`), a group of rows at a time; `partial` is scratch, the vectors of partial
    /// sums of each block of columns.
    ///
    /// The slice is taken [`STRETCH`] voxels at a time, every block of columns over one
    /// stretch before the next, so that the group's rows of `dy` stay in the L1 cache (a
    /// slice at once read them from L2 for every block: 1.8x the forward kernel's time).
    fn add_sums(&self, (b, z): (usize, usize), partial: &mut Vec<f32>, acc: &mut [f32]) {
        let (padded, dy, sums, kernels) = (self.padded, self.dy, self.sums, self.kernels);
        let taps = padded.offsets.len();
        let case = &self.volume[b * self.g.ci * padded.channel_len..];
        let first = padded.slice_start(z);
        // Where each column's reads begin; the columns past the last repeat it (their sums
        // are dropped).
        let last = self.g.ci * taps - 1;
        let starts: Vec<*const f32> = (0..sums.columns)
            .map(|column| {
                let (c, tap) = (column.min(last) / taps, column.min(last) % taps);
                case[c * padded.channel_len + first + padded.offsets[tap]..].as_ptr()
            })
            .collect();
        let block_len = kernels.block_len();
        for group in (0..sums.rows).step_by(kernels.channels) {
            let rows = &dy.values[(b * sums.rows + group) * dy.channel_len + z * dy.len..];
            partial.clear();
            partial.resize(sums.columns / kernels.columns * block_len, 0.0);
            for from in (0..dy.len).step_by(STRETCH) {
                let len = STRETCH.min(dy.len - from);
                for (x, block) in starts
                    .chunks(kernels.columns)
                    .zip(partial.chunks_mut(block_len))
                {
                    // SAFETY: the CPU has the kernels' ISA (`weight_grad`'s assert); each
                    // column reads up to `dy.len` values inside its padded channel, row and
                    // slack (`Padded::slice_len`), each of the group's rows up to `dy.len`
                    // values of its slice; `block` holds `block_len` sums.
                    unsafe {
                        (kernels.block_sums)(
                            rows.as_ptr(),
                            dy.channel_len,
                            x.as_ptr(),
                            from..from + len,
                            block.as_mut_ptr(),
                        )
                    };
                }
            }
            for (index, block) in partial.chunks(block_len).enumerate() {
                let out = &mut acc[group * sums.columns + index * kernels.columns..];
                add_reduced(block, kernels, out, sums.columns);
            }
        }
    }
}

/// Voxels of a slice every block of columns takes before the next: a group's rows of `dy`
/// fill 16 KB (8 rows, AVX-512) or 8 KB (4, AVX2), at most a third of the L1 cache. A
/// multiple of every ISA's lanes.
const STRETCH: usize = 512;

/// Adds each vector of partial sums in `block` (`[channels][columns][lanes]`), summed, to
/// `out[c * out_stride + k]`.
fn add_reduced(block: &[f32], kernels: &Kernels, out: &mut [f32], out_stride: usize) {
    for (i, vector) in block.chunks(kernels.lanes).enumerate() {
        let (c, k) = (i / kernels.columns, i % kernels.columns);
        out[c * out_stride + k] += vector.iter().sum::<f32>();
    }
}
