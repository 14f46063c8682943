//! The convolution: per output slice, 8 output channels x 48 flat voxels at a time.

use std::arch::x86_64::{
    __m512, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps,
};

use rayon::prelude::*;

use super::{Padded, covers};
use crate::ops::conv::flex::{Geometry, SharedOut};

/// Output channels a microkernel call computes.
const CHANNELS: usize = 8;
/// Vectors of 16 voxels a microkernel call computes per channel.
const VECTORS: usize = 3;
/// Consecutive flat voxels a microkernel call computes.
const CHUNK: usize = VECTORS * 16;

/// `y[b, co, o] = sum over ci and taps of weight[co, ci, tap] * x[b, ci, o + tap - padding]`
/// (zero outside the input), for a geometry that [`covers`] accepts.
pub fn forward(g: &Geometry, xs: &[f32], ws: &[f32]) -> Vec<f32> {
    assert!(
        covers(g),
        "the direct convolution needs unit strides and AVX-512"
    );
    let spatial: usize = g.out.iter().product();
    let mut y = vec![0f32; g.batch * g.co * spatial];
    if spatial == 0 {
        return y;
    }
    let padded = Padded::new(g);
    let volume = padded.fill(g, xs);
    let kernel = packed_kernel(g, ws);
    let out = SharedOut(y.as_mut_ptr());
    (0..g.batch * g.out[0])
        .into_par_iter()
        .for_each_init(Vec::new, |scratch, item| {
            let (b, z) = (item / g.out[0], item % g.out[0]);
            slice(&padded, g, &volume, &kernel, (b, z), scratch);
            // SAFETY: item (b, z) writes only slice z of case b, for every channel.
            unsafe { write_slice(&padded, g, scratch, out, (b, z)) };
        });
    y
}

/// Computes output slice `z` of case `b` into `scratch`, `[channel groups * CHANNELS,
/// slice_len]`, on the padded layout's flat voxels.
fn slice(
    padded: &Padded,
    g: &Geometry,
    volume: &[f32],
    kernel: &[f32],
    (b, z): (usize, usize),
    scratch: &mut Vec<f32>,
) {
    let len = padded.slice_len(g, CHUNK);
    let groups = g.co.div_ceil(CHANNELS);
    scratch.resize(groups * CHANNELS * len, 0.0);
    let case = &volume[b * g.ci * padded.channel_len..][..g.ci * padded.channel_len];
    let first = padded.slice_start(z);
    let per_group = g.ci * padded.offsets.len() * CHANNELS;
    for group in 0..groups {
        let weights = &kernel[group * per_group..][..per_group];
        let out = &mut scratch[group * CHANNELS * len..][..CHANNELS * len];
        for start in (0..len).step_by(CHUNK) {
            // SAFETY: avx512f was detected (`covers`); the reads stay inside each channel's
            // padded volume, row and slack (`Padded::slice_len`); `weights` and `out` hold
            // what `chunk` reads and writes.
            unsafe {
                chunk(
                    case[first + start..].as_ptr(),
                    padded.channel_len,
                    g.ci,
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
/// `out` must hold `batch * co * spatial` values, and no one else may touch slice `z` of
/// case `b` meanwhile.
unsafe fn write_slice(
    padded: &Padded,
    g: &Geometry,
    scratch: &[f32],
    out: SharedOut,
    (b, z): (usize, usize),
) {
    let [_, oh, ow] = g.out;
    let len = padded.slice_len(g, CHUNK);
    let spatial: usize = g.out.iter().product();
    for c in 0..g.co {
        let computed = &scratch[c * len..][..len];
        for y in 0..oh {
            let row = &computed[y * padded.dims[2]..][..ow];
            let at = (b * g.co + c) * spatial + (z * oh + y) * ow;
            // SAFETY: voxels of slice z of case b, channel c: inside `out`, and this
            // caller's alone (the function's contract).
            unsafe { std::ptr::copy_nonoverlapping(row.as_ptr(), out.0.add(at), ow) };
        }
    }
}

/// The kernel `[co, ci, taps]` regrouped as `[co / CHANNELS, ci, taps, CHANNELS]`, so that
/// the microkernel reads each tap's 8 weights in a row (zero past the last output channel).
fn packed_kernel(g: &Geometry, ws: &[f32]) -> Vec<f32> {
    let taps = g.kernel.iter().product::<usize>();
    let groups = g.co.div_ceil(CHANNELS);
    let mut packed = vec![0f32; groups * g.ci * taps * CHANNELS];
    for (co, weights) in ws.chunks(g.ci * taps).enumerate() {
        let (group, lane) = (co / CHANNELS, co % CHANNELS);
        for (column, &w) in weights.iter().enumerate() {
            packed[(group * g.ci * taps + column) * CHANNELS + lane] = w;
        }
    }
    packed
}

/// `CHANNELS` output channels x `CHUNK` flat voxels from `x` (channel 0 of the case at the
/// chunk's first voxel, channels `channel_len` apart): for each input channel and tap,
/// 3 vectors at the tap's offset times 8 broadcast weights.
///
/// # Safety
/// The CPU has avx512f; `x` is readable for `(ci - 1) * channel_len + offsets.max() + CHUNK`
/// values, `weights` for `ci * offsets.len() * CHANNELS` and `out` writable for rows of
/// `CHUNK` values `out_stride` apart, `CHANNELS` of them.
#[target_feature(enable = "avx512f")]
unsafe fn chunk(
    x: *const f32,
    channel_len: usize,
    ci: usize,
    offsets: &[usize],
    weights: *const f32,
    out: *mut f32,
    out_stride: usize,
) {
    let mut acc: [[__m512; VECTORS]; CHANNELS] = [[_mm512_setzero_ps(); VECTORS]; CHANNELS];
    let mut w = weights;
    for c in 0..ci {
        // SAFETY (this block and the reads below): within the reads the contract allows.
        let channel = unsafe { x.add(c * channel_len) };
        for &offset in offsets {
            let mut v = [_mm512_setzero_ps(); VECTORS];
            for (k, v) in v.iter_mut().enumerate() {
                *v = unsafe { _mm512_loadu_ps(channel.add(offset + 16 * k)) };
            }
            for (lane, row) in acc.iter_mut().enumerate() {
                let weight = _mm512_set1_ps(unsafe { *w.add(lane) });
                for (a, &v) in row.iter_mut().zip(&v) {
                    *a = _mm512_fmadd_ps(weight, v, *a);
                }
            }
            w = unsafe { w.add(CHANNELS) };
        }
    }
    for (lane, row) in acc.iter().enumerate() {
        for (k, &a) in row.iter().enumerate() {
            // SAFETY: row `lane` of `out`, within the contract's rows.
            unsafe { _mm512_storeu_ps(out.add(lane * out_stride + 16 * k), a) };
        }
    }
}
