//! The unit-stride convolution and its kernel's gradient without an im2col matrix, on CPUs
//! with AVX-512 or AVX2.
//!
//! The im2col path copies each input value once per kernel tap (27 times for a 3^3 kernel),
//! and the GEMM then packs that copy again: on the Task04 plan's first-level layers (16
//! channels) the copies took about twice the multiply-adds' time. Here the input is copied
//! once, into a zero-padded volume ([`Padded`]) where every tap of every output voxel is one
//! fixed offset from the voxel: output voxel `q` (a flat index into the padded volume) reads
//! `padded[q + offset[tap]]`. Two microkernels ([`kernels`], one set per ISA) run on that
//! layout, each holding its sums in registers (24 vectors on AVX-512, 8 on AVX2), at the
//! FMA units' rate out of the L1 and L2 caches:
//!
//! - [`forward`]: 8 output channels x 3 vectors of consecutive voxels (4 x 2 on AVX2); for
//!   each input channel and tap, 3 (2) vectors of the input times 8 (4) broadcast weights;
//! - [`weight_grad`]: 8 output channels x 3 (input channel, tap) columns (4 x 2 on AVX2),
//!   summed over the voxels a vector at a time.
//!
//! Inside an autocast scope, on CPUs with AVX-512 BF16, the same code runs the bf16 kernels
//! ([`bf16_kernels`]) on bf16 copies of the operands ([`operand`]), with f32 sums.
//!
//! Flat voxels whose x or y lies in the padding are computed and dropped (5 % more work at
//! 40 voxels a row, 17 % at 10), and channels and columns are taken in whole groups (zero
//! weights, or sums dropped, fill the last group).

mod bf16_kernels;
mod forward;
mod kernels;
mod operand;
mod weight_grad;

use forward::forward;
use kernels::Kernels;
use operand::{Bf16, Bf16Pair, Operand};
use weight_grad::weight_grad;

use rayon::prelude::*;

use super::Precision;
use super::flex::Geometry;

/// Values of slack after each padded channel, for the last chunk's overrun (see
/// [`Padded::slice_len`]).
const SLACK: usize = 64;

/// The kernels that compute this convolution, if any: unit strides and more than one tap,
/// on a CPU with AVX-512 or AVX2 (elsewhere the im2col path with the `gemm` crate's kernels
/// stays); [`kernels::detected`] says which.
pub(super) fn kernels_for(g: &Geometry) -> Option<&'static Kernels> {
    let suits = g.stride == [1; 3] && g.kernel.iter().product::<usize>() > 1;
    suits.then(kernels::detected).flatten()
}

/// The kernels that compute this convolution in `precision`, if any: as [`kernels_for`],
/// and the bf16 kernels for bf16 on a CPU with AVX-512 BF16 (f32 kernels elsewhere).
pub(super) fn chosen(g: &Geometry, precision: Precision) -> Option<Chosen> {
    let f32_kernels = kernels_for(g)?;
    match kernels::detected_bf16() {
        Some(bf16) if precision == Precision::Bf16 => Some(Chosen::Bf16(bf16)),
        _ => Some(Chosen::F32(f32_kernels)),
    }
}

/// The kernels [`chosen`] for a convolution.
pub(super) enum Chosen {
    F32(&'static Kernels),
    Bf16(&'static Kernels<Bf16Pair, Bf16>),
}

impl Chosen {
    /// See [`forward()`].
    pub(super) fn forward(&self, g: &Geometry, xs: &[f32], ws: &[f32]) -> Vec<f32> {
        match self {
            Chosen::F32(kernels) => forward(g, xs, ws, kernels),
            Chosen::Bf16(kernels) => forward(g, xs, ws, kernels),
        }
    }

    /// See [`weight_grad()`].
    pub(super) fn weight_grad(&self, g: &Geometry, xs: &[f32], dys: &[f32]) -> Vec<f32> {
        match self {
            Chosen::F32(kernels) => weight_grad(g, xs, dys, kernels),
            Chosen::Bf16(kernels) => weight_grad(g, xs, dys, kernels),
        }
    }
}

/// Whether this CPU runs bf16 convolutions on the bf16 kernels.
pub(super) fn has_bf16_kernels() -> bool {
    kernels::detected_bf16().is_some()
}

/// The zero-padded input's layout: each channel a `[depth, height, width]` volume, padded so
/// that every tap of every output voxel reads inside it, then a row and [`SLACK`] zeros.
struct Padded {
    dims: [usize; 3],
    channel_len: usize,
    /// Each tap's flat offset, in the kernel's order (z, then y, then x).
    offsets: Vec<usize>,
}

impl Padded {
    fn new(g: &Geometry) -> Padded {
        let dims: [usize; 3] = std::array::from_fn(|a| g.out[a] + g.kernel[a] - 1);
        let [kd, kh, kw] = g.kernel;
        let mut offsets = Vec::with_capacity(kd * kh * kw);
        for tz in 0..kd {
            for ty in 0..kh {
                for tx in 0..kw {
                    offsets.push((tz * dims[1] + ty) * dims[2] + tx);
                }
            }
        }
        Padded {
            dims,
            channel_len: dims.iter().product::<usize>() + dims[2] + SLACK,
            offsets,
        }
    }

    /// Flat voxels from one output slice's first voxel to the end of its last row (rows
    /// `dims[2]` apart), rounded up to `multiple` (at most [`SLACK`]). Taps read up to a
    /// kernel's extent further: for the last slice, into the row and the slack of zeros that
    /// follow each padded channel.
    fn slice_len(&self, g: &Geometry, multiple: usize) -> usize {
        debug_assert!(multiple <= SLACK);
        (g.out[1] * self.dims[2]).next_multiple_of(multiple)
    }

    /// Where output slice `z` begins in a padded channel.
    fn slice_start(&self, z: usize) -> usize {
        z * self.dims[1] * self.dims[2]
    }

    /// The input copied into the padded layout, case by case and channel by channel,
    /// `T::CHANNELS` channels a value ([`Operand`]).
    fn fill<T: Operand>(&self, g: &Geometry, xs: &[f32]) -> Vec<T> {
        let [depth, height, width] = g.input;
        let [pd, ph, pw] = g.padding;
        let channels = g.ci.div_ceil(T::CHANNELS);
        let input_len = depth * height * width;
        let mut volume = vec![T::default(); g.batch * channels * self.channel_len];
        volume
            .par_chunks_mut(self.channel_len)
            .enumerate()
            .for_each(|(i, dst)| {
                let (b, first) = (i / channels, i % channels * T::CHANNELS);
                let channel = |c: usize| &xs[(b * g.ci + c) * input_len..][..input_len];
                let second = (T::CHANNELS == 2 && first + 1 < g.ci).then(|| channel(first + 1));
                let first = channel(first);
                // Input voxels past the padded volume (a smaller end padding) are never read.
                let len = width.min(self.dims[2] - pw);
                for z in 0..depth.min(self.dims[0] - pd) {
                    for y in 0..height.min(self.dims[1] - ph) {
                        let row = ((z + pd) * self.dims[1] + y + ph) * self.dims[2] + pw;
                        let from = (z * height + y) * width;
                        let (dst, first) = (&mut dst[row..][..len], &first[from..][..len]);
                        match second {
                            Some(second) => {
                                let second = &second[from..][..len];
                                for ((d, &a), &b) in dst.iter_mut().zip(first).zip(second) {
                                    *d = T::pack(a, b);
                                }
                            }
                            None => {
                                for (d, &a) in dst.iter_mut().zip(first) {
                                    *d = T::pack(a, 0.0);
                                }
                            }
                        }
                    }
                }
            });
        volume
    }
}

#[cfg(test)]
mod tests;
