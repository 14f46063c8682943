//! The kernel's gradient: per output slice, 8 output channels x 3 columns (an input channel
//! and a tap) at a time, summed over the slice's flat voxels 16 at a time.

use std::arch::x86_64::{
    __m512, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_reduce_add_ps, _mm512_setzero_ps,
};

use rayon::prelude::*;

use super::{Padded, covers};
use crate::ops::conv::flex::Geometry;

/// Output channels a microkernel call sums for.
const CHANNELS: usize = 8;
/// Columns (an input channel and a tap) a microkernel call sums for.
const COLUMNS: usize = 3;
/// Voxels in a vector.
const LANES: usize = 16;

/// `dweight[co, ci, tap] = sum over cases and output voxels o of dy[b, co, o] *
/// x[b, ci, o + tap - padding]` (zero outside the input), for a geometry that [`covers`]
/// accepts; `[co, ci, taps]` in order.
pub fn weight_grad(g: &Geometry, xs: &[f32], dys: &[f32]) -> Vec<f32> {
    assert!(
        covers(g),
        "the direct convolution needs unit strides and AVX-512"
    );
    let padded = Padded::new(g);
    let columns = g.ci * padded.offsets.len();
    let sums = Sums {
        rows: g.co.div_ceil(CHANNELS) * CHANNELS,
        columns: columns.div_ceil(COLUMNS) * COLUMNS,
    };
    if g.out.contains(&0) {
        return vec![0.0; g.co * columns];
    }
    let volume = padded.fill(g, xs);
    let dy = DyRows::new(g, &padded, sums.rows, dys);
    let slice = Slice {
        padded: &padded,
        g,
        volume: &volume,
        dy: &dy,
        sums: &sums,
    };
    let total = (0..g.batch * g.out[0])
        .into_par_iter()
        .fold(
            || (vec![0f32; sums.rows * sums.columns], Vec::new()),
            |(mut acc, mut partial), item| {
                let (b, z) = (item / g.out[0], item % g.out[0]);
                slice.add_sums((b, z), &mut partial, &mut acc);
                (acc, partial)
            },
        )
        .map(|(acc, _)| acc)
        .reduce_with(|mut a, b| {
            a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
            a
        })
        .unwrap_or_else(|| vec![0f32; sums.rows * sums.columns]);
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
    fn new(g: &Geometry, padded: &Padded, rows: usize, dys: &[f32]) -> DyRows {
        let [od, oh, ow] = g.out;
        let len = padded.slice_len(g, LANES);
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

/// One group of rows x one block of columns' sums, as vectors of 16 partial sums.
type BlockSums = [[__m512; COLUMNS]; CHANNELS];

/// What every slice's sums read.
struct Slice<'a> {
    padded: &'a Padded,
    g: &'a Geometry,
    volume: &'a [f32],
    dy: &'a DyRows,
    sums: &'a Sums,
}

impl Slice<'_> {
    /// Adds output slice `z` of case `b`'s share of every sum into `acc` (`[rows,
    /// columns]`), a group of rows at a time; `partial` is scratch.
    ///
    /// The slice is taken [`STRETCH`] voxels at a time, every block of columns over one
    /// stretch before the next, so that the group's rows of `dy` stay in the L1 cache (a
    /// slice at once read them from L2 for every block: 1.8x the forward kernel's time).
    fn add_sums(&self, (b, z): (usize, usize), partial: &mut Vec<BlockSums>, acc: &mut [f32]) {
        let (padded, dy, sums) = (self.padded, self.dy, self.sums);
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
        for group in (0..sums.rows).step_by(CHANNELS) {
            let rows = &dy.values[(b * sums.rows + group) * dy.channel_len + z * dy.len..];
            // SAFETY: all-zero bits are zero vectors.
            partial.clear();
            partial.resize(sums.columns / COLUMNS, unsafe { std::mem::zeroed() });
            for from in (0..dy.len).step_by(STRETCH) {
                let len = STRETCH.min(dy.len - from);
                for (x, sums) in starts.chunks(COLUMNS).zip(partial.iter_mut()) {
                    // SAFETY: avx512f was detected (`covers`); each column reads up to
                    // `dy.len` values inside its padded channel, row and slack
                    // (`Padded::slice_len`), each of the group's rows up to `dy.len` values
                    // of its slice.
                    unsafe {
                        block_sums(
                            rows.as_ptr(),
                            dy.channel_len,
                            x.try_into().expect("COLUMNS columns a block"),
                            from..from + len,
                            sums,
                        )
                    };
                }
            }
            for (block, sums_of) in partial.iter().enumerate() {
                let out = &mut acc[group * sums.columns + block * COLUMNS..];
                // SAFETY: avx512f was detected; `out` holds `CHANNELS` rows of
                // `sums.columns`, the block's `COLUMNS` from its start.
                unsafe { add_reduced(sums_of, out.as_mut_ptr(), sums.columns) };
            }
        }
    }
}

/// Voxels of a slice every block of columns takes before the next: 8 rows of `dy` fill
/// 16 KB, a third of the L1 cache.
const STRETCH: usize = 512;

/// Adds `dy[c][i] * x[k][i]` for `i` in `range` to lane `i % 16` of `sums[c][k]`, for the
/// `CHANNELS` rows of `dy` (`dy_stride` apart) and the `COLUMNS` columns of `x`.
///
/// # Safety
/// The CPU has avx512f; `range`'s bounds are multiples of 16; `dy` is readable for
/// `(CHANNELS - 1) * dy_stride + range.end` values and each `x[k]` for `range.end`.
#[target_feature(enable = "avx512f")]
unsafe fn block_sums(
    dy: *const f32,
    dy_stride: usize,
    x: [*const f32; COLUMNS],
    range: std::ops::Range<usize>,
    sums: &mut BlockSums,
) {
    let mut acc = *sums;
    for i in range.step_by(LANES) {
        let mut v = [_mm512_setzero_ps(); COLUMNS];
        for (v, x) in v.iter_mut().zip(x) {
            // SAFETY (this block and the reads below): within the contract's reads.
            *v = unsafe { _mm512_loadu_ps(x.add(i)) };
        }
        for (c, row) in acc.iter_mut().enumerate() {
            let d = unsafe { _mm512_loadu_ps(dy.add(c * dy_stride + i)) };
            for (a, &v) in row.iter_mut().zip(&v) {
                *a = _mm512_fmadd_ps(d, v, *a);
            }
        }
    }
    *sums = acc;
}

/// Adds each vector of `sums[c][k]`, summed, to `out[c * out_stride + k]`.
///
/// # Safety
/// The CPU has avx512f; `out` is writable for `(CHANNELS - 1) * out_stride + COLUMNS`.
#[target_feature(enable = "avx512f")]
unsafe fn add_reduced(sums: &BlockSums, out: *mut f32, out_stride: usize) {
    for (c, row) in sums.iter().enumerate() {
        for (k, &a) in row.iter().enumerate() {
            // SAFETY: inside `out` by the contract.
            unsafe { *out.add(c * out_stride + k) += _mm512_reduce_add_ps(a) };
        }
    }
}
