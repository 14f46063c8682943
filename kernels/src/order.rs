//! Order statistics helpers shared by the kernels and the analyzer.

/// numpy's default (linear) percentile (`q` in 0..=100) of a sample of size `n`, given its
/// order statistics: `at(r)` is the value at 0-based rank r. Ranks are f64 so weighted samples
/// (whose size is a total weight) use it too.
pub fn linear_percentile(n: f64, q: f64, mut at: impl FnMut(f64) -> f64) -> f64 {
    let pos = q / 100.0 * (n - 1.0).max(0.0);
    let k = pos.floor();
    let lo = at(k);
    let hi = at((k + 1.0).min((n - 1.0).max(0.0)));
    lo + (hi - lo) * (pos - k)
}

/// The bits of `v` made to order as the values do (negatives flipped, sign bit set on
/// positives), so integer comparison and radix buckets follow the float order. Branch-free
/// (the sign decides an XOR mask): it runs per voxel on data whose signs are random.
#[inline]
pub fn ordered_bits(v: f32) -> u32 {
    let bits = v.to_bits();
    let negative = ((bits as i32) >> 31) as u32; // all ones for a negative value
    bits ^ (negative | (1 << 31))
}

/// The float whose ordered bits are `o` (inverse of [`ordered_bits`]).
#[inline]
pub fn from_ordered_bits(o: u32) -> f32 {
    f32::from_bits(if o >> 31 == 1 { o & !(1 << 31) } else { !o })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_bits_follow_the_values_and_round_trip() {
        let values = [-1e30f32, -2.5, -0.0, 0.0, 1e-40, 3.0, f32::MAX];
        for pair in values.windows(2) {
            assert!(ordered_bits(pair[0]) < ordered_bits(pair[1]), "{pair:?}");
        }
        for v in values {
            assert_eq!(from_ordered_bits(ordered_bits(v)).to_bits(), v.to_bits());
        }
        assert_eq!(
            linear_percentile(4.0, 10.0, |r| [1.0, 2.0, 3.0, 4.0][r as usize]),
            1.3
        );
    }
}
