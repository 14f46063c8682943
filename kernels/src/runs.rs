//! Runs of voxels that repeat one value (and one label): medical images hold long runs of
//! background, and the analyzer (and the component labelling) handles a run once instead of
//! voxel by voxel.
//!
//! A run is extended a block of [`BLOCK`] voxels at a time, each block checked by one
//! comparison the compiler vectorises, so a volume that is mostly background costs a fraction
//! of a voxel-by-voxel loop; a voxel unlike its neighbour costs one scalar comparison more.

/// Voxels compared at once while a run goes on.
const BLOCK: usize = 16;

/// Calls `f(item, start..end)` for each maximal run of equal items, in order.
pub fn equal_runs<T: Copy + PartialEq>(items: &[T], mut f: impl FnMut(T, std::ops::Range<usize>)) {
    let mut start = 0;
    while start < items.len() {
        let item = items[start];
        let end = run_end(
            items.len(),
            start,
            |i| items[i] == item,
            |i| same_items(&items[i..i + BLOCK], item),
        );
        f(item, start..end);
        start = end;
    }
}

/// Calls `f(value, count)` for each maximal run of voxels with the same bits, in order.
pub fn value_runs(values: &[f32], mut f: impl FnMut(f32, u32)) {
    let mut start = 0;
    while start < values.len() {
        let bits = values[start].to_bits();
        let end = run_end(
            values.len(),
            start,
            |i| values[i].to_bits() == bits,
            |i| same_bits(&values[i..i + BLOCK], bits),
        );
        f(values[start], run_length(start, end));
        start = end;
    }
}

/// Calls `f(key, value, count)` for each maximal run of voxels with the same key and the same
/// value bits, in order. `keys` is parallel to `values`.
///
/// # Panics
/// If the slices' lengths differ.
pub fn keyed_runs<K: Copy + PartialEq>(values: &[f32], keys: &[K], mut f: impl FnMut(K, f32, u32)) {
    assert_eq!(values.len(), keys.len(), "one key per value");
    let mut start = 0;
    while start < values.len() {
        let (bits, key) = (values[start].to_bits(), keys[start]);
        let end = run_end(
            values.len(),
            start,
            |i| values[i].to_bits() == bits && keys[i] == key,
            |i| same_bits(&values[i..i + BLOCK], bits) & same_items(&keys[i..i + BLOCK], key),
        );
        f(key, values[start], run_length(start, end));
        start = end;
    }
}

/// The end of the run that starts at `start` among `n` voxels: `same(i)` says voxel i
/// continues it, `same_block(i)` that voxels i..i + BLOCK all do.
#[inline(always)]
fn run_end(
    n: usize,
    start: usize,
    same: impl Fn(usize) -> bool,
    same_block: impl Fn(usize) -> bool,
) -> usize {
    let mut end = start + 1;
    if end < n && same(end) {
        end += 1;
        while end + BLOCK <= n && same_block(end) {
            end += BLOCK;
        }
        while end < n && same(end) {
            end += 1;
        }
    }
    end
}

#[inline(always)]
fn same_items<T: Copy + PartialEq>(block: &[T], item: T) -> bool {
    block.iter().fold(true, |all, &x| all & (x == item))
}

#[inline(always)]
fn same_bits(block: &[f32], bits: u32) -> bool {
    block
        .iter()
        .fold(true, |all, v| all & (v.to_bits() == bits))
}

#[inline(always)]
fn run_length(start: usize, end: usize) -> u32 {
    u32::try_from(end - start).expect("a run of fewer than 2^32 voxels")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs by the obvious loop, for comparison.
    fn naive<K: Copy + PartialEq>(values: &[f32], keys: &[K]) -> Vec<(K, u32, u32)> {
        let mut out: Vec<(K, u32, u32)> = Vec::new();
        for (&v, &k) in values.iter().zip(keys) {
            match out.last_mut() {
                Some((pk, pv, count)) if *pk == k && *pv == v.to_bits() => *count += 1,
                _ => out.push((k, v.to_bits(), 1)),
            }
        }
        out
    }

    #[test]
    fn runs_equal_the_obvious_loop() {
        // Runs shorter than, equal to and longer than a block, broken by value or by key
        // alone, at the ends too; -0.0 and 0.0 are different bits; NaN bits repeat.
        let mut values = vec![0.0f32; 70];
        values.extend([1.0, 1.0, -0.0, 0.0, 2.5]);
        values.extend(vec![f32::NAN; 17]);
        values.extend((0..40).map(|i| (i / 3) as f32));
        values.extend(vec![7.0; 33]);
        let keys: Vec<u16> = (0..values.len())
            .map(|i| {
                if (20..37).contains(&i) {
                    1
                } else {
                    (i / 50) as u16
                }
            })
            .collect();
        let mut got = Vec::new();
        keyed_runs(&values, &keys, |k, v, c| got.push((k, v.to_bits(), c)));
        assert_eq!(got, naive(&values, &keys));
        let mut got = Vec::new();
        value_runs(&values, |v, c| got.push(((), v.to_bits(), c)));
        assert_eq!(got, naive(&values, &vec![(); values.len()]));
        let total: u32 = got.iter().map(|r| r.2).sum();
        assert_eq!(total as usize, values.len());
        let mut got = Vec::new();
        equal_runs(&keys, |k, range| got.push((k, range)));
        let mut want: Vec<(u16, std::ops::Range<usize>)> = Vec::new();
        for (i, &k) in keys.iter().enumerate() {
            match want.last_mut() {
                Some((pk, range)) if *pk == k => range.end = i + 1,
                _ => want.push((k, i..i + 1)),
            }
        }
        assert_eq!(got, want);
        value_runs(&[], |_, _| panic!("no runs in nothing"));
    }
}
