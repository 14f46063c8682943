//! The two microkernels on bf16 operands (AVX-512 BF16), with the AVX-512 set's blocking:
//! each `vdpbf16ps` adds two products to each of 16 f32 sums, so a call does the
//! multiply-adds of two f32 calls in the same instructions. The sums stay f32, as
//! autocast's do.
//!
//! - forward: 8 output channels x 3 vectors of 16 voxels; for each pair of input channels
//!   and each tap, 3 vectors of [`Bf16Pair`]s times 8 broadcast pairs of weights;
//! - kernel gradient: 8 output channels x 3 columns, summed over 32 voxels (16 pairs of
//!   neighbours) a vector, [`Bf16`] values in the voxels' order.

use std::arch::x86_64::{
    __m512, __m512bh, __m512i, _mm512_dpbf16_ps, _mm512_loadu_ps, _mm512_loadu_si512,
    _mm512_set1_epi32, _mm512_setzero_ps, _mm512_storeu_ps,
};
use std::ops::Range;

use super::{Bf16, Bf16Pair, Kernels};

/// The ISA's name, as `AUTOSEG_MAX_CPU_ISA` takes it.
pub(super) const BF16_ISA: &str = "avx512_bf16";

const CHANNELS: usize = 8;
const LANES: usize = 16;
const VECTORS: usize = 3;
const COLUMNS: usize = 3;

pub(super) static KERNELS: Kernels<Bf16Pair, Bf16> = Kernels {
    isa: BF16_ISA,
    supported,
    lanes: LANES,
    channels: CHANNELS,
    vectors: VECTORS,
    columns: COLUMNS,
    per_vector: 2 * LANES,
    forward_chunk,
    block_sums,
};

fn supported() -> bool {
    std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bf16")
}

/// 32 bf16 values from `at` (16 pairs).
///
/// # Safety
/// The CPU has AVX-512; `at` is readable for 64 bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn load(at: *const u8) -> __m512bh {
    // SAFETY: the caller's contract; a vector of 32 bf16 has the bits of 16 u32.
    unsafe { std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(at.cast())) }
}

/// A pair of bf16 values in every lane.
#[inline]
#[target_feature(enable = "avx512f,avx512bf16")]
fn splat(pair: Bf16Pair) -> __m512bh {
    // SAFETY: a vector of 32 bf16 has the bits of 16 u32.
    unsafe { std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(pair.0 as i32)) }
}

/// See [`super::kernels::ForwardChunk`]: `x` and `weights` hold pairs of input channels,
/// `ci` counts the pairs.
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn forward_chunk(
    x: *const Bf16Pair,
    channel_len: usize,
    ci: usize,
    offsets: &[usize],
    weights: *const Bf16Pair,
    out: *mut f32,
    out_stride: usize,
) {
    let mut acc = [[_mm512_setzero_ps(); VECTORS]; CHANNELS];
    let mut w = weights;
    for c in 0..ci {
        // SAFETY (this block and the reads below): within the reads the contract allows.
        let channel = unsafe { x.add(c * channel_len) };
        for &offset in offsets {
            let v: [__m512bh; VECTORS] =
                std::array::from_fn(|k| unsafe { load(channel.add(offset + LANES * k).cast()) });
            for (lane, row) in acc.iter_mut().enumerate() {
                let weight = splat(unsafe { *w.add(lane) });
                for (a, &v) in row.iter_mut().zip(&v) {
                    *a = _mm512_dpbf16_ps(*a, v, weight);
                }
            }
            w = unsafe { w.add(CHANNELS) };
        }
    }
    for (lane, row) in acc.iter().enumerate() {
        for (k, &a) in row.iter().enumerate() {
            // SAFETY: row `lane` of `out`, within the contract's rows.
            unsafe { _mm512_storeu_ps(out.add(lane * out_stride + LANES * k), a) };
        }
    }
}

/// See [`super::kernels::BlockSums`]: lane `l` of a sum gathers voxels `i` with `i % 32`
/// in `{2l, 2l + 1}`.
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn block_sums(
    dy: *const Bf16,
    dy_stride: usize,
    x: *const *const Bf16,
    range: Range<usize>,
    sums: *mut f32,
) {
    let mut acc: [[__m512; COLUMNS]; CHANNELS] = [[_mm512_setzero_ps(); COLUMNS]; CHANNELS];
    for (c, row) in acc.iter_mut().enumerate() {
        for (k, a) in row.iter_mut().enumerate() {
            // SAFETY (this block and the reads below): within the contract's reads and
            // writes.
            *a = unsafe { _mm512_loadu_ps(sums.add((c * COLUMNS + k) * LANES)) };
        }
    }
    let x: [*const Bf16; COLUMNS] = std::array::from_fn(|k| unsafe { *x.add(k) });
    for i in range.step_by(2 * LANES) {
        let v: [__m512bh; COLUMNS] = std::array::from_fn(|k| unsafe { load(x[k].add(i).cast()) });
        for (c, row) in acc.iter_mut().enumerate() {
            let d = unsafe { load(dy.add(c * dy_stride + i).cast()) };
            for (a, &v) in row.iter_mut().zip(&v) {
                *a = _mm512_dpbf16_ps(*a, d, v);
            }
        }
    }
    for (c, row) in acc.iter().enumerate() {
        for (k, &a) in row.iter().enumerate() {
            unsafe { _mm512_storeu_ps(sums.add((c * COLUMNS + k) * LANES), a) };
        }
    }
}
