//! The two microkernels, once per vector ISA (AVX-512, and AVX2 with FMA for the CPUs
//! without it), with the blocking each ISA's registers allow: 32 vector registers hold 24
//! sums of 8 output channels; of 16, 8 sums of 4 (at 12 sums, 3 vectors of 4 channels or 3
//! columns, LLVM shuffled and spilled registers in the loop, and the AVX2 step took 1.21x
//! the im2col path's time on a Zen 4). One macro writes both sets, so that
//! each is compiled with its own target feature and its intrinsics inline (a generic body
//! called from a `#[target_feature]` wrapper was not inlined into it, in an earlier try
//! with pulp).

use std::ops::Range;
use std::sync::OnceLock;

use super::bf16_kernels::BF16_ISA;
use super::{Bf16, Bf16Pair};

/// `forward_chunk(x, channel_len, ci, offsets, weights, out, out_stride)`: `channels`
/// output channels x [`Kernels::chunk`] flat voxels from `x` (channel 0 of the case at the
/// chunk's first voxel, channels `channel_len` apart): for each of the `ci` input channels
/// and each tap (its flat offset), `vectors` vectors at the tap's offset times `channels`
/// broadcast weights, written to `out` (rows `out_stride` apart).
///
/// # Safety
/// The CPU has the ISA; `x` is readable for `(ci - 1) * channel_len + offsets.max() +
/// chunk` values, `weights` for `ci * offsets.len() * channels` and `out` writable for
/// `channels` rows of `chunk` values.
pub(super) type ForwardChunk<X> =
    unsafe fn(*const X, usize, usize, &[usize], *const X, *mut f32, usize);

/// `block_sums(dy, dy_stride, x, range, sums)`: adds `dy[c][i] * x[k][i]` for `i` in
/// `range` to a lane of the partial sum `sums[(c * columns + k) * lanes..]` (lane `i %
/// lanes` for f32), for the `channels` rows of `dy` (`dy_stride` apart) and the `columns`
/// columns of `x` (as many pointers from `x`).
///
/// # Safety
/// The CPU has the ISA; `range`'s bounds are multiples of [`Kernels::per_vector`]; `dy` is
/// readable for `(channels - 1) * dy_stride + range.end` values, each `x[k]` for
/// `range.end`, and `sums` for [`Kernels::block_len`].
pub(super) type BlockSums<D> = unsafe fn(*const D, usize, *const *const D, Range<usize>, *mut f32);

/// One ISA's microkernels and their blocking: the forward kernel reads `X`s (input and
/// kernel), the kernel-gradient kernel `D`s (input and output gradient), both f32 but
/// for the bf16 set ([`Operand`](super::Operand)).
pub(crate) struct Kernels<X: 'static = f32, D: 'static = f32> {
    /// The ISA, as `AUTOSEG_MAX_CPU_ISA` names it.
    pub(super) isa: &'static str,
    /// Whether this CPU has the ISA.
    pub(super) supported: fn() -> bool,
    /// f32 values in a vector.
    pub(super) lanes: usize,
    /// Output channels one call of either kernel covers.
    pub(super) channels: usize,
    /// Vectors of voxels a forward call computes per output channel.
    pub(super) vectors: usize,
    /// Columns (an input channel and a tap) a kernel-gradient call sums for.
    pub(super) columns: usize,
    /// `D` values in a vector: the step of a kernel-gradient call's range.
    pub(super) per_vector: usize,
    pub(super) forward_chunk: ForwardChunk<X>,
    pub(super) block_sums: BlockSums<D>,
}

impl<X, D> Kernels<X, D> {
    /// Flat voxels a forward call computes.
    pub(super) fn chunk(&self) -> usize {
        self.vectors * self.lanes
    }

    /// Partial sums one block of a kernel-gradient call keeps.
    pub(super) fn block_len(&self) -> usize {
        self.channels * self.columns * self.lanes
    }
}

/// Every ISA's kernels, widest first.
pub(super) static ALL: [&Kernels; 2] = [&avx512::KERNELS, &avx2::KERNELS];

/// The kernels of the widest ISA this CPU has, none where it has neither.
/// `AUTOSEG_MAX_CPU_ISA=avx2` (or `none`, the im2col path) caps the choice, as oneDNN's
/// `ONEDNN_MAX_CPU_ISA` does: to measure what a CPU without AVX-512 gets.
pub(super) fn detected() -> Option<&'static Kernels> {
    static DETECTED: OnceLock<Option<&'static Kernels>> = OnceLock::new();
    *DETECTED.get_or_init(|| {
        let allowed = allowed(cap()).unwrap_or(&ALL);
        allowed.iter().copied().find(|k| (k.supported)())
    })
}

/// The bf16 kernels, where this CPU has AVX-512 BF16 and the cap allows them (no cap, or
/// `AUTOSEG_MAX_CPU_ISA=avx512_bf16`).
pub(super) fn detected_bf16() -> Option<&'static Kernels<Bf16Pair, Bf16>> {
    static DETECTED: OnceLock<Option<&'static Kernels<Bf16Pair, Bf16>>> = OnceLock::new();
    *DETECTED.get_or_init(|| {
        let kernels = &super::bf16_kernels::KERNELS;
        let cap = cap();
        let allowed = cap.is_empty() || cap.eq_ignore_ascii_case(kernels.isa);
        (allowed && (kernels.supported)()).then_some(kernels)
    })
}

/// `AUTOSEG_MAX_CPU_ISA`'s value, empty (no cap) when unset or naming no ISA (said once).
fn cap() -> &'static str {
    static CAP: OnceLock<String> = OnceLock::new();
    CAP.get_or_init(|| {
        let cap = std::env::var("AUTOSEG_MAX_CPU_ISA").unwrap_or_default();
        if allowed(&cap).is_none() {
            eprintln!(
                "AUTOSEG_MAX_CPU_ISA={cap:?} is none of avx512_bf16, avx512, avx2, none: ignored"
            );
            return String::new();
        }
        cap
    })
}

/// The f32 kernels a cap (`AUTOSEG_MAX_CPU_ISA`'s value, any case) allows, widest first;
/// all for an empty cap or `avx512_bf16`, `None` for one that names no ISA.
pub(super) fn allowed(cap: &str) -> Option<&'static [&'static Kernels]> {
    match ALL.iter().position(|k| k.isa.eq_ignore_ascii_case(cap)) {
        Some(widest) => Some(&ALL[widest..]),
        None if cap.eq_ignore_ascii_case("none") => Some(&[]),
        None if cap.is_empty() || cap.eq_ignore_ascii_case(BF16_ISA) => Some(&ALL),
        None => None,
    }
}

macro_rules! microkernels {
    ($module:ident, $isa:literal, $feature:tt, [$($detect:tt),+], $lanes:literal,
     [$channels:literal x $vectors:literal, $columns:literal], $vector:ident, $zero:ident,
     $load:ident, $splat:ident, $fma:ident, $store:ident) => {
        mod $module {
            use std::arch::x86_64::{$fma, $load, $splat, $store, $vector, $zero};
            use std::ops::Range;

            use super::Kernels;

            const CHANNELS: usize = $channels;
            const LANES: usize = $lanes;
            const VECTORS: usize = $vectors;
            const COLUMNS: usize = $columns;

            pub(in super::super) static KERNELS: Kernels = Kernels {
                isa: $isa,
                supported,
                lanes: LANES,
                channels: CHANNELS,
                vectors: VECTORS,
                columns: COLUMNS,
                per_vector: LANES,
                forward_chunk,
                block_sums,
            };

            fn supported() -> bool {
                true $(&& std::is_x86_feature_detected!($detect))+
            }

            /// See [`super::ForwardChunk`].
            #[target_feature(enable = $feature)]
            unsafe fn forward_chunk(
                x: *const f32,
                channel_len: usize,
                ci: usize,
                offsets: &[usize],
                weights: *const f32,
                out: *mut f32,
                out_stride: usize,
            ) {
                let mut acc: [[$vector; VECTORS]; CHANNELS] = [[$zero(); VECTORS]; CHANNELS];
                let mut w = weights;
                for c in 0..ci {
                    // SAFETY (this block and the reads below): within the reads the
                    // contract allows.
                    let channel = unsafe { x.add(c * channel_len) };
                    for &offset in offsets {
                        let mut v = [$zero(); VECTORS];
                        for (k, v) in v.iter_mut().enumerate() {
                            *v = unsafe { $load(channel.add(offset + LANES * k)) };
                        }
                        for (lane, row) in acc.iter_mut().enumerate() {
                            let weight = $splat(unsafe { *w.add(lane) });
                            for (a, &v) in row.iter_mut().zip(&v) {
                                *a = $fma(weight, v, *a);
                            }
                        }
                        w = unsafe { w.add(CHANNELS) };
                    }
                }
                for (lane, row) in acc.iter().enumerate() {
                    for (k, &a) in row.iter().enumerate() {
                        // SAFETY: row `lane` of `out`, within the contract's rows.
                        unsafe { $store(out.add(lane * out_stride + LANES * k), a) };
                    }
                }
            }

            /// See [`super::BlockSums`].
            #[target_feature(enable = $feature)]
            unsafe fn block_sums(
                dy: *const f32,
                dy_stride: usize,
                x: *const *const f32,
                range: Range<usize>,
                sums: *mut f32,
            ) {
                let mut acc: [[$vector; COLUMNS]; CHANNELS] = [[$zero(); COLUMNS]; CHANNELS];
                for (c, row) in acc.iter_mut().enumerate() {
                    for (k, a) in row.iter_mut().enumerate() {
                        // SAFETY (this block and the reads below): within the contract's
                        // reads and writes.
                        *a = unsafe { $load(sums.add((c * COLUMNS + k) * LANES)) };
                    }
                }
                let x: [*const f32; COLUMNS] = std::array::from_fn(|k| unsafe { *x.add(k) });
                for i in range.step_by(LANES) {
                    let mut v = [$zero(); COLUMNS];
                    for (v, x) in v.iter_mut().zip(x) {
                        *v = unsafe { $load(x.add(i)) };
                    }
                    for (c, row) in acc.iter_mut().enumerate() {
                        let d = unsafe { $load(dy.add(c * dy_stride + i)) };
                        for (a, &v) in row.iter_mut().zip(&v) {
                            *a = $fma(d, v, *a);
                        }
                    }
                }
                for (c, row) in acc.iter().enumerate() {
                    for (k, &a) in row.iter().enumerate() {
                        unsafe { $store(sums.add((c * COLUMNS + k) * LANES), a) };
                    }
                }
            }
        }
    };
}

microkernels!(
    avx512,
    "avx512",
    "avx512f",
    ["avx512f"],
    16,
    [8 x 3, 3],
    __m512,
    _mm512_setzero_ps,
    _mm512_loadu_ps,
    _mm512_set1_ps,
    _mm512_fmadd_ps,
    _mm512_storeu_ps
);
microkernels!(
    avx2,
    "avx2",
    "avx2,fma",
    ["avx2", "fma"],
    8,
    [4 x 2, 2],
    __m256,
    _mm256_setzero_ps,
    _mm256_loadu_ps,
    _mm256_set1_ps,
    _mm256_fmadd_ps,
    _mm256_storeu_ps
);
