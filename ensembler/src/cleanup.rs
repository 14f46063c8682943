//! Clean-ups of a predicted label map that cross-validation can choose per class (nnU-Net's
//! `determine_postprocessing`, widened): keep a class's largest component, or remove the
//! components of a class smaller than a size its true structures never are.
//!
//! One [`Cleanups`] serves both the choice on cross-validation predictions and prediction
//! with the chosen ensemble, so what was measured is what is applied.

use autoseg_kernels::components::Connectivity;
use autoseg_kernels::postprocess::{keep_largest, remove_small_of_class};

/// Clean-ups by class index (0 is background), applied in the listed order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cleanups {
    /// Classes whose largest 26-connected component alone is kept.
    pub keep_largest: Vec<u8>,
    /// Classes whose 26-connected components under so many voxels become background.
    pub remove_small: Vec<(u8, u64)>,
}

impl Cleanups {
    /// Applies every clean-up to `labels` (class indices on a `dims` grid, x fastest).
    pub fn apply(&self, labels: &mut [u16], dims: [usize; 3]) {
        for &class in &self.keep_largest {
            keep_largest(labels, dims, class as u16, Connectivity::TwentySix);
        }
        for &(class, min_size) in &self.remove_small {
            let class = class as u16;
            remove_small_of_class(labels, dims, class, min_size, Connectivity::TwentySix);
        }
    }

    /// Whether there is nothing to apply.
    pub fn is_empty(&self) -> bool {
        self.keep_largest.is_empty() && self.remove_small.is_empty()
    }
}

/// The sizes to try for a class whose smallest true component has `smallest` voxels:
/// a quarter, a half and all of it (a threshold of `smallest` never removes a component
/// the size of a true one).
pub fn size_thresholds(smallest: u64) -> Vec<u64> {
    let mut sizes: Vec<u64> = [smallest / 4, smallest / 2, smallest]
        .into_iter()
        .filter(|&s| s >= 2)
        .collect();
    sizes.dedup();
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removing_small_components_touches_only_that_class() {
        // Class 1: a 3-voxel structure and a stray voxel; class 2: a single voxel.
        let mut labels = vec![1, 1, 1, 0, 0, 1, 0, 2];
        let cleanups = Cleanups {
            keep_largest: Vec::new(),
            remove_small: vec![(1, 2)],
        };
        cleanups.apply(&mut labels, [8, 1, 1]);
        assert_eq!(labels, [1, 1, 1, 0, 0, 0, 0, 2]);
        assert_eq!(size_thresholds(40), [10, 20, 40]);
        assert_eq!(size_thresholds(3), [3]);
    }
}
