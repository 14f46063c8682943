//! Index arithmetic on x-fastest volumes, shared by the neighbourhood loops.

/// The linear index of the voxel at `at + delta`, or `None` when it lies outside `dims`.
#[inline]
pub(crate) fn neighbour(dims: [usize; 3], at: [isize; 3], delta: [isize; 3]) -> Option<usize> {
    let p: [isize; 3] = std::array::from_fn(|a| at[a] + delta[a]);
    if (0..3).any(|a| p[a] < 0 || p[a] >= dims[a] as isize) {
        return None;
    }
    Some((p[2] as usize * dims[1] + p[1] as usize) * dims[0] + p[0] as usize)
}
