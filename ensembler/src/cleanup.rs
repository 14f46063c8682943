//! Clean-ups of a prediction that cross-validation can choose (nnU-Net's
//! `determine_postprocessing`, widened): refine the probabilities by a dense CRF guided by
//! the image (MONAI's `CRF`), then per class keep the largest component, or remove the
//! components smaller than a size its true structures never are.
//!
//! One [`Cleanups`] serves both the choice on cross-validation predictions and prediction
//! with the chosen ensemble, so what was measured is what is applied.

use autoseg_datasets::regions::Decoding;
use autoseg_kernels::components::Connectivity;
use autoseg_kernels::postprocess::{keep_largest, remove_small_of_class};
use autoseg_kernels::{CrfParams, dense_crf};

/// The most class scores (classes x voxels) a CRF refines in one case: the mean-field update
/// holds about five copies of them (scores, output, probabilities, messages), so 16M scores
/// stay near 320 MB. Larger cases are neither tried nor refined.
pub const CRF_MAX_SCORES: usize = 1 << 24;

/// How many probability channels there are and how they decode into classes.
pub type Channels = (usize, Decoding);

/// Clean-ups by class index (0 is background), applied in the listed order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cleanups {
    /// Refine the probabilities by a dense CRF with MONAI's defaults before the argmax.
    pub crf: bool,
    /// Classes whose largest 26-connected component alone is kept.
    pub keep_largest: Vec<u8>,
    /// Classes whose 26-connected components under so many voxels become background.
    pub remove_small: Vec<(u8, u64)>,
}

impl Cleanups {
    /// The class of each voxel from `probabilities` (`channels` maps on a `dims` grid, x
    /// fastest): [`Self::winners`], then the component clean-ups.
    pub fn classes_of(
        &self,
        probabilities: &[f32],
        channels: Channels,
        image: &[f32],
        dims: [usize; 3],
    ) -> Vec<u16> {
        let mut labels = self.winners(probabilities, channels, image, dims);
        self.apply(&mut labels, dims);
        labels
    }

    /// The decoded class of each voxel, after the CRF's refinement when chosen (guided by
    /// `image`, one channel on the same grid), the case is small enough for it, and the
    /// channels are classes (a CRF weighs exclusive classes, not overlapping regions).
    pub fn winners(
        &self,
        probabilities: &[f32],
        (channels, decoding): Channels,
        image: &[f32],
        dims: [usize; 3],
    ) -> Vec<u16> {
        let winners = if self.crf && decoding == Decoding::Argmax && crf_fits(probabilities.len()) {
            decoding.classes(&crf_scores(probabilities, channels, image, dims), channels)
        } else {
            decoding.classes(probabilities, channels)
        };
        winners.into_iter().map(u16::from).collect()
    }

    /// Applies every component clean-up to `labels` (class indices on a `dims` grid).
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
        !self.crf && self.keep_largest.is_empty() && self.remove_small.is_empty()
    }
}

/// Whether a case of so many class scores is refined by the CRF ([`CRF_MAX_SCORES`]).
pub fn crf_fits(scores: usize) -> bool {
    scores <= CRF_MAX_SCORES
}

/// The CRF's refined class scores: its unary terms are the probabilities' logarithms, its
/// appearance kernel compares intensities of the image standardised over the volume (MONAI's
/// range sigma of 0.5 is then half a standard deviation).
fn crf_scores(probabilities: &[f32], classes: usize, image: &[f32], dims: [usize; 3]) -> Vec<f32> {
    let unary: Vec<f32> = probabilities.iter().map(|p| p.max(1e-6).ln()).collect();
    dense_crf(
        &unary,
        &standardised(image),
        dims,
        classes,
        &CrfParams::default(),
    )
}

/// `values` less their mean, over their standard deviation (all zeros for a constant image).
fn standardised(values: &[f32]) -> Vec<f32> {
    let n = values.len().max(1) as f64;
    let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = values
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    let scale = if var > 0.0 { 1.0 / var.sqrt() } else { 0.0 };
    values
        .iter()
        .map(|&v| ((v as f64 - mean) * scale) as f32)
        .collect()
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
            remove_small: vec![(1, 2)],
            ..Cleanups::default()
        };
        cleanups.apply(&mut labels, [8, 1, 1]);
        assert_eq!(labels, [1, 1, 1, 0, 0, 0, 0, 2]);
        assert_eq!(size_thresholds(40), [10, 20, 40]);
        assert_eq!(size_thresholds(3), [3]);
    }
}
