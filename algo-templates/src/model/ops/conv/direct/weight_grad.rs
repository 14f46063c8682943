//! The kernel's gradient: per run of consecutive output slices of a case, a group of output
//! channels x a block of columns (an input channel and a tap) at a time (8 x 3 on AVX-512,
//! 4 x 2 on AVX2), summed over the run's flat voxels a vector at a time.
//!
//! The output's gradient is laid out with the padded input's slice pitch ([`DyRows`]), so
//! that a run of slices is one range of flat voxels in both, and each run zeroes and reduces
//! its vectors of partial sums once (once a slice, that took 9 % of the Task04 plan's f32
//! step and 13 % of its bf16 step).

use rayon::prelude::*;

use super::{Kernels, Operand, Padded};
use crate::ops::conv::flex::{Geometry, sum_in_parallel};

/// `dweight[co, ci, tap] = sum over cases and output voxels o of dy[b, co, o] *
/// x[b, ci, o + tap - padding]` (zero outside the input), by `kernels` (those
/// [`super::chosen`] gives `g`), on the input and output gradient as one-channel `D`s;
/// `[co, ci, taps]` in order.
pub fn weight_grad<X, D: Operand>(
    g: &Geometry,
    xs: &[f32],
    dys: &[f32],
    kernels: &Kernels<X, D>,
) -> Vec<f32> {
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
    assert_eq!(
        D::CHANNELS,
        1,
        "the kernel's gradient reads one channel a value"
    );
    let volume = padded.fill::<D>(g, xs);
    let dy = DyRows::new(g, &padded, sums.rows, dys);
    let runs = Runs::new(g, sums.rows / kernels.channels);
    let on = Items {
        padded: &padded,
        g,
        volume: &volume,
        dy: &dy,
        sums: &sums,
        kernels,
        runs,
    };
    let total = sum_in_parallel(
        on.count(),
        sums.rows * sums.columns,
        |item, partial, acc| {
            on.add_sums(item, partial, acc);
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

/// The output's gradient on the padded layout's flat voxels: `[batch, rows, channel_len]`,
/// output voxel `(z, y, x)` where the padded input's slice `z`, row `y`, column `x` begin
/// ([`Padded::slice_start`]), zero elsewhere and in the channels past the last, so that
/// those voxels and channels add nothing.
struct DyRows<D> {
    values: Vec<D>,
    channel_len: usize,
}

impl<D: Operand> DyRows<D> {
    /// `rows` channels: `g.co` rounded up to whole groups.
    fn new(g: &Geometry, padded: &Padded, rows: usize, dys: &[f32]) -> Self {
        let [od, oh, ow] = g.out;
        let channel_len = padded.slice_start(od);
        let mut values = vec![D::default(); g.batch * rows * channel_len];
        values
            .par_chunks_mut(channel_len)
            .enumerate()
            .filter(|(i, _)| i % rows < g.co)
            .for_each(|(i, dst)| {
                let (b, c) = (i / rows, i % rows);
                let src = &dys[(b * g.co + c) * od * oh * ow..][..od * oh * ow];
                for (z, slice) in src.chunks(oh * ow).enumerate() {
                    for (y, row) in slice.chunks(ow).enumerate() {
                        let at = padded.slice_start(z) + y * padded.dims[2];
                        for (d, &v) in dst[at..][..ow].iter_mut().zip(row) {
                            *d = D::pack(v, 0.0);
                        }
                    }
                }
            });
        DyRows {
            values,
            channel_len,
        }
    }
}

/// The runs each case's output slices are split into: as few as leave every thread four
/// items (cases x channel groups x runs) or more.
#[derive(Clone, Copy)]
struct Runs {
    per_case: usize,
    slices: usize,
}

impl Runs {
    fn new(g: &Geometry, groups: usize) -> Runs {
        let wanted = 4 * rayon::current_num_threads();
        let per_case = wanted.div_ceil(g.batch * groups).clamp(1, g.out[0]);
        let slices = g.out[0].div_ceil(per_case);
        Runs {
            per_case: g.out[0].div_ceil(slices),
            slices,
        }
    }
}

/// What every item's sums read.
struct Items<'a, X: 'static, D: 'static> {
    padded: &'a Padded,
    g: &'a Geometry,
    volume: &'a [D],
    dy: &'a DyRows<D>,
    sums: &'a Sums,
    kernels: &'a Kernels<X, D>,
    runs: Runs,
}

impl<X, D: Operand> Items<'_, X, D> {
    /// Items: a case, a group of output channels and a run of slices each.
    fn count(&self) -> usize {
        self.g.batch * self.groups() * self.runs.per_case
    }

    fn groups(&self) -> usize {
        self.sums.rows / self.kernels.channels
    }

    /// Adds item `item`'s share of its group's sums into `acc` (`[rows, columns]`);
    /// `partial` is scratch, the vectors of partial sums of each block of columns.
    ///
    /// The run is taken [`STRETCH`] voxels at a time, every block of columns over one
    /// stretch before the next, so that the group's rows of `dy` stay in the L1 cache (a
    /// slice at once read them from L2 for every block: 1.8x the forward kernel's time).
    fn add_sums(&self, item: usize, partial: &mut Vec<f32>, acc: &mut [f32]) {
        let (padded, g, dy, sums, kernels) =
            (self.padded, self.g, self.dy, self.sums, self.kernels);
        let (case_group, run) = (item / self.runs.per_case, item % self.runs.per_case);
        let (b, group) = (case_group / self.groups(), case_group % self.groups());
        let group = group * kernels.channels;
        let z = run * self.runs.slices..((run + 1) * self.runs.slices).min(g.out[0]);
        let first = padded.slice_start(z.start);
        // From the run's first voxel to its last slice's last output voxel: whole vectors by
        // the kernel (reading past them would reach the next run's slice), the rest here.
        let exact =
            padded.slice_start(z.end - 1) - first + (g.out[1] - 1) * padded.dims[2] + g.out[2];
        let len = exact / kernels.per_vector * kernels.per_vector;
        let taps = padded.offsets.len();
        let case = &self.volume[b * g.ci * padded.channel_len..];
        // Where each column's reads begin; the columns past the last repeat it (their sums
        // are dropped).
        let last = g.ci * taps - 1;
        let starts: Vec<*const D> = (0..sums.columns)
            .map(|column| {
                let (c, tap) = (column.min(last) / taps, column.min(last) % taps);
                case[c * padded.channel_len + first + padded.offsets[tap]..].as_ptr()
            })
            .collect();
        let rows = &dy.values[(b * sums.rows + group) * dy.channel_len + first..];
        let block_len = kernels.block_len();
        partial.clear();
        partial.resize(sums.columns / kernels.columns * block_len, 0.0);
        for from in (0..len).step_by(STRETCH) {
            let len = STRETCH.min(len - from);
            for (x, block) in starts
                .chunks(kernels.columns)
                .zip(partial.chunks_mut(block_len))
            {
                // SAFETY: the CPU has the kernels' ISA (`weight_grad`'s assert); each column
                // reads up to the run's last output voxel, inside its padded channel, each of
                // the group's rows of `dy` as far, inside its channel; `block` holds
                // `block_len` sums.
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
        let rows = (0..kernels.channels).map(|c| &rows[c * dy.channel_len..][..exact]);
        for (c, row) in rows.enumerate() {
            for (k, &x) in starts.iter().enumerate() {
                let tail = (len..exact).map(|i| {
                    // SAFETY: voxel i < exact of the column, read as the kernel's are.
                    row[i].first() * unsafe { (*x.add(i)).first() }
                });
                acc[(group + c) * sums.columns + k] += tail.sum::<f32>();
            }
        }
    }
}

/// Voxels of a run every block of columns takes before the next: a group's rows of `dy`
/// fill 16 KB (8 rows, AVX-512) or 8 KB (4, AVX2), at most a third of the L1 cache (half
/// that in bf16). A multiple of every ISA's values a vector.
const STRETCH: usize = 512;

/// Adds each vector of partial sums in `block` (`[channels][columns][lanes]`), summed, to
/// `out[c * out_stride + k]`.
fn add_reduced<X, D>(block: &[f32], kernels: &Kernels<X, D>, out: &mut [f32], out_stride: usize) {
    for (i, vector) in block.chunks(kernels.lanes).enumerate() {
        let (c, k) = (i / kernels.columns, i % kernels.columns);
        out[c * out_stride + k] += vector.iter().sum::<f32>();
    }
}
