//! The values the microkernels read: f32, or bf16 (autocast's operands, on CPUs with
//! AVX-512 BF16).
//!
//! AVX-512 BF16's one multiply, `vdpbf16ps`, adds to each f32 lane the products of a *pair*
//! of bf16 values from each operand: twice the multiply-adds of an f32 FMA in one
//! instruction. The pair must run along the sum, so each kernel gets its own bf16 layout:
//! the forward kernel sums over input channels, and reads [`Bf16Pair`]s of two channels'
//! values at one voxel; the kernel's gradient sums over voxels, and reads [`Bf16`] values in
//! the voxels' own order, two neighbours making a pair.

/// A value of a padded volume or kernel as a microkernel reads it.
pub(crate) trait Operand: Copy + Default + Send + Sync + 'static {
    /// Consecutive input channels one value holds.
    const CHANNELS: usize;
    /// The value of channel `first` and, for two-channel operands, of the next one
    /// (`second`, zero past the last channel).
    fn pack(first: f32, second: f32) -> Self;
    /// The first channel's value.
    fn first(self) -> f32;
}

impl Operand for f32 {
    const CHANNELS: usize = 1;
    fn pack(first: f32, _: f32) -> f32 {
        first
    }
    fn first(self) -> f32 {
        self
    }
}

/// One bf16 value (its bits).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(transparent)]
pub(crate) struct Bf16(pub u16);

impl Operand for Bf16 {
    const CHANNELS: usize = 1;
    fn pack(first: f32, _: f32) -> Bf16 {
        Bf16(bf16_bits(first) as u16)
    }
    fn first(self) -> f32 {
        f32::from_bits((self.0 as u32) << 16)
    }
}

/// Two channels' bf16 values at one voxel: the first in the low half, as `vdpbf16ps`
/// pairs them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(transparent)]
pub(crate) struct Bf16Pair(pub u32);

impl Operand for Bf16Pair {
    const CHANNELS: usize = 2;
    fn pack(first: f32, second: f32) -> Bf16Pair {
        Bf16Pair(bf16_bits(first) | bf16_bits(second) << 16)
    }
    fn first(self) -> f32 {
        f32::from_bits(self.0 << 16)
    }
}

/// The bits of `value` rounded to the nearest bf16 (ties to even; a NaN stays a NaN), as
/// `half::bf16::from_f32` rounds, without its branches: the copies into the bf16 layouts
/// run at memory speed.
#[inline]
fn bf16_bits(value: f32) -> u32 {
    let bits = value.to_bits();
    let rounded = bits.wrapping_add(0x7FFF + ((bits >> 16) & 1)) >> 16;
    let quiet_nan = (bits >> 16) | 0x40;
    if bits & 0x7FFF_FFFF > 0x7F80_0000 {
        quiet_nan
    } else {
        rounded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_as_the_half_crate_does() {
        let specials = [
            0.0,
            -0.0,
            1.0,
            f32::MAX,
            f32::MIN_POSITIVE,
            1e-40,
            f32::INFINITY,
        ];
        let drawn = (0..200_000u32).map(|i| f32::from_bits(i.wrapping_mul(2_654_435_761)));
        for value in specials.into_iter().chain(drawn) {
            let want = half::bf16::from_f32(value);
            let got = half::bf16::from_bits(Bf16::pack(value, 0.0).0);
            if value.is_nan() {
                assert!(got.is_nan(), "{value:e}");
            } else {
                assert_eq!(got.to_bits(), want.to_bits(), "{value:e}");
            }
        }
        let pair = Bf16Pair::pack(1.0, -2.0);
        assert_eq!((pair.0, pair.first()), (0xC000_3F80, 1.0));
        assert_eq!(Bf16::pack(-2.0, 0.0).first(), -2.0);
    }
}
