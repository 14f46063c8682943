//! The convolution: per output slice, a group of output channels x a chunk of flat voxels
//! at a time (8 x 48 on AVX-512, 4 x 16 on AVX2).

use rayon::prelude::*;

use super::{Kernels, Operand, Padded};
use crate::ops::conv::flex::{Geometry, SharedOut, written_in_full};

/// `y[b, co, o] = sum over ci and taps of weight[co, ci, tap] * x[b, ci, o + tap - padding]`
/// (zero outside the input), by `kernels` (those [`super::kernels_for`] or
/// [`super::bf16_kernels_for`] gives `g`), on the input and kernel as `X`s.
pub fn forward<X: Operand, D>(
    g: &Geometry,
    xs: &[f32],
    ws: &[f32],
    kernels: &Kernels<X, D>,
) -> Vec<f32> {
    assert!(
        g.stride == [1; 3] && (kernels.supported)(),
        "the direct convolution needs unit strides and a CPU with {}",
        kernels.isa
    );
    let spatial: usize = g.out.iter().product();
    if spatial == 0 {
        return Vec::new();
    }
    let padded = Padded::new(g);
    let volume = padded.fill::<X>(g, xs);
    let kernel = packed_kernel::<X>(g, ws, kernels.channels);
    let on = Layout {
        padded: &padded,
        g,
        kernels,
    };
    let fill = |out: SharedOut| {
        (0..g.batch * g.out[0])
            .into_par_iter()
            .for_each_init(Vec::new, |scratch, item| {
                let (b, z) = (item / g.out[0], item % g.out[0]);
                on.slice(&volume, &kernel, (b, z), scratch);
                // SAFETY: item (b, z) writes only slice z of case b, for every channel.
                unsafe { on.write_slice(scratch, out, (b, z)) };
            })
    };
    // SAFETY: the items are every slice of every case, and `write_slice` writes each
    // voxel of its slice for every channel.
    unsafe { written_in_full(g.batch * g.co * spatial, fill) }
}

/// What a slice is computed on, and by which kernels.
struct Layout<'a, X: 'static, D: 'static> {
    padded: &'a Padded,
    g: &'a Geometry,
    kernels: &'a Kernels<X, D>,
}

impl<X: Operand, D> Layout<'_, X, D> {
    /// Flat voxels a slice's computed rows hold: whole chunks.
    fn slice_len(&self) -> usize {
        self.padded.slice_len(self.g, self.kernels.chunk())
    }

    /// Computes output slice `z` of case `b` into `scratch`, `[channel groups * channels,
    /// slice_len]`, on the padded layout's flat voxels.
    fn slice(&self, volume: &[X], kernel: &[X], (b, z): (usize, usize), scratch: &mut Vec<f32>) {
        let (padded, g, kernels) = (self.padded, self.g, self.kernels);
        let (len, chunk, channels) = (self.slice_len(), kernels.chunk(), kernels.channels);
        let groups = g.co.div_ceil(channels);
        scratch.resize(groups * channels * len, 0.0);
        let ci = g.ci.div_ceil(X::CHANNELS);
        let case = &volume[b * ci * padded.channel_len..][..ci * padded.channel_len];
        let first = padded.slice_start(z);
        let per_group = ci * padded.offsets.len() * channels;
        for group in 0..groups {
            let weights = &kernel[group * per_group..][..per_group];
            let out = &mut scratch[group * channels * len..][..channels * len];
            for start in (0..len).step_by(chunk) {
                // SAFETY: the CPU has the kernels' ISA (`forward`'s assert); the reads stay
                // inside each channel's padded volume, row and slack (`Padded::slice_len`);
                // `weights` and `out` hold what the chunk reads and writes.
                unsafe {
                    (kernels.forward_chunk)(
                        case[first + start..].as_ptr(),
                        padded.channel_len,
                        ci,
                        &padded.offsets,
                        weights.as_ptr(),
                        out[start..].as_mut_ptr(),
                        len,
                    )
                };
            }
        }
    }

    /// Copies the output voxels of a computed slice (those whose x and y lie inside the
    /// output) from `scratch` into slice `z` of case `b` of `out`.
    ///
    /// # Safety
    /// `out` must hold `batch * co * spatial` values, and no one else may touch slice `z`
    /// of case `b` meanwhile.
    unsafe fn write_slice(&self, scratch: &[f32], out: SharedOut, (b, z): (usize, usize)) {
        let g = self.g;
        let [_, oh, ow] = g.out;
        let len = self.slice_len();
        let spatial: usize = g.out.iter().product();
        for c in 0..g.co {
            let computed = &scratch[c * len..][..len];
            for y in 0..oh {
                let row = &computed[y * self.padded.dims[2]..][..ow];
                let at = (b * g.co + c) * spatial + (z * oh + y) * ow;
                // SAFETY: voxels of slice z of case b, channel c: inside `out`, and this
                // caller's alone (the function's contract).
                unsafe { std::ptr::copy_nonoverlapping(row.as_ptr(), out.0.add(at), ow) };
            }
        }
    }
}

/// The kernel `[co, ci, taps]` regrouped as `[co / channels, ci / X::CHANNELS, taps,
/// channels]` `X`s, so that the microkernel reads each tap's weights for a group of output
/// channels in a row (zero past the last output and input channel).
fn packed_kernel<X: Operand>(g: &Geometry, ws: &[f32], channels: usize) -> Vec<X> {
    let taps = g.kernel.iter().product::<usize>();
    let (groups, ci) = (g.co.div_ceil(channels), g.ci.div_ceil(X::CHANNELS));
    let mut packed = vec![X::default(); groups * ci * taps * channels];
    for (co, weights) in ws.chunks(g.ci * taps).enumerate() {
        let (group, lane) = (co / channels, co % channels);
        for c in 0..ci {
            let first = c * X::CHANNELS;
            for tap in 0..taps {
                let second = match first + 1 < g.ci && X::CHANNELS == 2 {
                    true => weights[(first + 1) * taps + tap],
                    false => 0.0,
                };
                let w = X::pack(weights[first * taps + tap], second);
                packed[((group * ci + c) * taps + tap) * channels + lane] = w;
            }
        }
    }
    packed
}
