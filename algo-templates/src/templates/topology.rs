//! nnU-Net's network topology rule (`get_pool_and_conv_props`): from a patch size and a
//! voxel spacing, the strides and kernel sizes of each stage and the patch padded to what
//! the strides divide.
//!
//! Axes are downsampled together while their spacing is within 2x of the finest and their
//! feature map keeps at least `2 x min_feature_map` voxels (`3x` when a lone axis is left);
//! a kernel is 3 along an axis once its spacing is within 2x of the finest, else 1; the
//! bottleneck's kernel is 3 everywhere.

use crate::networks::Triple;

/// Strides and kernels per stage, and the patch they fit.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    /// Stride per stage (the first is 1s).
    pub strides: Vec<Triple>,
    /// Kernel per stage (the last is the bottleneck's, 3s).
    pub kernel_sizes: Vec<Triple>,
    /// The patch, padded up to a multiple of `divisible_by`.
    pub patch: Triple,
    /// What each patch axis must be a multiple of (2^downsamplings).
    pub divisible_by: Triple,
}

/// nnU-Net v2's `get_pool_and_conv_props(spacing, patch, min_feature_map, max_numpool)`.
pub fn pool_and_conv(
    spacing: [f64; 3],
    patch: Triple,
    min_feature_map: usize,
    max_pools: usize,
) -> Topology {
    let mut current_spacing = spacing;
    let mut size = patch.map(|p| p as f64);
    let mut strides = vec![[1; 3]];
    let mut kernel_sizes = Vec::new();
    let mut pools = [0usize; 3];
    let mut kernel = [1usize; 3];
    let min_map = min_feature_map as f64;
    loop {
        let big_enough: Vec<usize> = (0..3).filter(|&a| size[a] >= 2.0 * min_map).collect();
        if big_enough.is_empty() {
            break;
        }
        let spacings_of_axes: Vec<f64> = big_enough.iter().map(|&a| current_spacing[a]).collect();
        let finest_valid = spacings_of_axes.iter().cloned().fold(f64::MAX, f64::min);
        let valid: Vec<usize> = big_enough
            .into_iter()
            .filter(|&a| current_spacing[a] / finest_valid < 2.0 && pools[a] < max_pools)
            .collect();
        if valid.len() == 1 && size[valid[0]] < 3.0 * min_map {
            break;
        }
        if valid.is_empty() {
            break;
        }
        let finest = current_spacing.iter().cloned().fold(f64::MAX, f64::min);
        for (d, k) in kernel.iter_mut().enumerate() {
            // nnU-Net indexes the spacings of the size-valid axes by the axis number here.
            if *k != 3 && spacings_of_axes.get(d).is_some_and(|s| s / finest < 2.0) {
                *k = 3;
            }
        }
        let mut stride = [1; 3];
        for &a in &valid {
            stride[a] = 2;
            pools[a] += 1;
            current_spacing[a] *= 2.0;
            size[a] = (size[a] / 2.0).ceil();
        }
        strides.push(stride);
        kernel_sizes.push(kernel);
    }
    kernel_sizes.push([3; 3]);
    let divisible_by = pools.map(|p| 1usize << p);
    let padded = std::array::from_fn(|a| patch[a].next_multiple_of(divisible_by[a]));
    Topology {
        strides,
        kernel_sizes,
        patch: padded,
        divisible_by,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task04_gets_nnunets_plan() {
        // Dataset004: median shape 36x50x35 at 1 mm -> patch 40x56x40, 4 stages, all 3s
        // (nnU-Net v2.8.1's nnUNetPlans.json in ../shared/data/reference-outputs).
        let t = pool_and_conv([1.0; 3], [36, 50, 35], 4, 999_999);
        assert_eq!(t.patch, [40, 56, 40]);
        assert_eq!(t.strides, vec![[1; 3], [2; 3], [2; 3], [2; 3]]);
        assert_eq!(t.kernel_sizes, vec![[3; 3]; 4]);
        assert_eq!(t.divisible_by, [8; 3]);
    }

    #[test]
    fn thick_slices_are_kept_until_the_plane_catches_up() {
        // 0.8 x 0.8 x 3 mm: z is neither pooled nor convolved across until the in-plane
        // spacing has doubled twice.
        let t = pool_and_conv([0.8, 0.8, 3.0], [192, 160, 48], 4, 999_999);
        assert_eq!(t.strides[1], [2, 2, 1]);
        assert_eq!(t.kernel_sizes[0], [3, 3, 1]);
        assert_eq!(t.strides[3], [2, 2, 2]);
        assert_eq!(*t.kernel_sizes.last().unwrap(), [3; 3]);
        for a in 0..3 {
            assert_eq!(t.patch[a] % t.divisible_by[a], 0);
        }
    }
}
