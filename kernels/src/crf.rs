//! Dense CRF refinement of class scores by mean-field iterations, as MONAI's `CRF` block does
//! it: each iteration takes the softmax of the current scores, filters every class's map with
//! an appearance kernel (a bilateral filter over position and image intensity) and a
//! smoothness kernel (a Gaussian over position), and adds the weighted messages to the unary
//! scores. The bilateral messages use the bilateral grid ([`crate::bilateral`]), where MONAI
//! uses a permutohedral lattice; both approximate the same normalised kernels.

use rayon::prelude::*;

use crate::bilateral::{BilateralSigmas, GuidedGrid};

/// MONAI's `CRF` parameters and defaults (sigmas in voxels and intensity units).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CrfParams {
    pub iterations: usize,
    pub bilateral_weight: f32,
    pub gaussian_weight: f32,
    pub bilateral: BilateralSigmas,
    pub gaussian_sigma: f64,
    pub update_factor: f32,
}

impl Default for CrfParams {
    fn default() -> Self {
        CrfParams {
            iterations: 5,
            bilateral_weight: 1.0,
            gaussian_weight: 1.0,
            bilateral: BilateralSigmas {
                spatial: 5.0,
                range: 0.5,
            },
            gaussian_sigma: 5.0,
            update_factor: 3.0,
        }
    }
}

/// Refines `scores` (class-major: `classes` maps of the volume, x fastest) guided by `image`
/// (one channel over the same voxels); returns refined scores in the same layout.
pub fn dense_crf(
    scores: &[f32],
    image: &[f32],
    dims: [usize; 3],
    classes: usize,
    params: &CrfParams,
) -> Vec<f32> {
    let n = image.len();
    assert_eq!(
        scores.len(),
        n * classes,
        "scores are not {classes} maps of the image"
    );
    let mut output = scores.to_vec();
    let grid = GuidedGrid::new(image, dims, params.bilateral);
    for _ in 0..params.iterations {
        let probabilities = softmax(&output, classes, n);
        let messages: Vec<Vec<f32>> = probabilities
            .par_chunks(n)
            .map(|p| {
                let appearance = grid.filter(p);
                let smoothness = gaussian_blur(p, dims, params.gaussian_sigma);
                appearance
                    .iter()
                    .zip(&smoothness)
                    .map(|(a, s)| params.bilateral_weight * a + params.gaussian_weight * s)
                    .collect()
            })
            .collect();
        for ((out, unary), message) in output.iter_mut().zip(scores).zip(messages.iter().flatten())
        {
            *out = unary + params.update_factor * message;
        }
    }
    output
}

/// Softmax over classes at every voxel (class-major layout).
pub fn softmax(scores: &[f32], classes: usize, n: usize) -> Vec<f32> {
    let mut out = vec![0f32; scores.len()];
    for i in 0..n {
        let top = (0..classes)
            .map(|c| scores[c * n + i])
            .fold(f32::NEG_INFINITY, f32::max);
        let total: f32 = (0..classes).map(|c| (scores[c * n + i] - top).exp()).sum();
        for c in 0..classes {
            out[c * n + i] = (scores[c * n + i] - top).exp() / total;
        }
    }
    out
}

/// A normalised Gaussian blur (sigma in voxels, truncated at 3 sigma): separable, and divided
/// at each voxel by the weight that falls inside the volume, so borders are not darkened.
/// That weight is separable too, so each axis's pass divides by its own in-bounds share.
pub fn gaussian_blur(values: &[f32], dims: [usize; 3], sigma: f64) -> Vec<f32> {
    let kernel = gaussian_taps(sigma);
    let mut v = values.to_vec();
    for axis in 0..3 {
        v = blur_line(&v, dims, axis, &kernel);
    }
    v
}

/// The blur's taps: exp(-d^2 / 2 sigma^2) for d in -ceil(3 sigma)..=ceil(3 sigma), unnormalised
/// (the blur divides by the weight of the taps inside the volume). Shared with the CUDA path.
pub(crate) fn gaussian_taps(sigma: f64) -> Vec<f32> {
    let radius = (3.0 * sigma).ceil() as isize;
    (-radius..=radius)
        .map(|d| (-(d * d) as f64 / (2.0 * sigma * sigma)).exp() as f32)
        .collect()
}

/// One axis's pass: each voxel's taps that fall inside the volume, over their total weight.
fn blur_line(values: &[f32], dims: [usize; 3], axis: usize, kernel: &[f32]) -> Vec<f32> {
    let stride = [1, dims[0], dims[0] * dims[1]][axis];
    let n = dims[axis];
    let radius = kernel.len() / 2;
    // Per position along the axis: the first and last tap inside, and 1 / their weight.
    let spans: Vec<(usize, usize, f32)> = (0..n)
        .map(|k| {
            let (first, last) = (
                radius.saturating_sub(k),
                (radius + n - 1 - k).min(2 * radius),
            );
            (first, last, 1.0 / kernel[first..=last].iter().sum::<f32>())
        })
        .collect();
    (0..values.len())
        .into_par_iter()
        .map(|i| {
            let k = (i / stride) % n;
            let (first, last, norm) = spans[k];
            // Tap t reads position k + t - radius, inside the volume from `first` to `last`.
            let start = i - k * stride + (k + first - radius) * stride;
            let sum: f32 = (kernel[first..=last].iter().enumerate())
                .map(|(j, w)| w * values[start + j * stride])
                .sum();
            sum * norm
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Lcg;

    #[test]
    fn the_crf_cleans_noisy_scores_along_the_image_edges() {
        // Image: two regions split at x = 10; truth = the region. Scores: the truth plus noise
        // strong enough to flip about a fifth of the voxels.
        let dims = [20, 12, 8];
        let n: usize = dims.iter().product();
        let truth: Vec<usize> = (0..n).map(|i| usize::from(i % dims[0] >= 10)).collect();
        let image: Vec<f32> = truth.iter().map(|&t| t as f32).collect();
        let mut rng = Lcg(9);
        let mut scores = vec![0f32; 2 * n];
        for i in 0..n {
            for c in 0..2 {
                let signal = if truth[i] == c { 1.0 } else { 0.0 };
                scores[c * n + i] = signal + ((rng.next_unit() - 0.5) * 2.4) as f32;
            }
        }
        let accuracy = |s: &[f32]| {
            (0..n)
                .filter(|&i| usize::from(s[n + i] > s[i]) == truth[i])
                .count() as f64
                / n as f64
        };
        let params = CrfParams {
            bilateral: BilateralSigmas {
                spatial: 2.0,
                range: 0.3,
            },
            gaussian_sigma: 1.0,
            ..CrfParams::default()
        };
        let refined = dense_crf(&scores, &image, dims, 2, &params);
        let (before, after) = (accuracy(&scores), accuracy(&refined));
        assert!(before < 0.9, "the noise should matter: {before}");
        assert!(after > 0.99, "CRF accuracy {after} (before {before})");
    }

    #[test]
    fn the_separable_blur_is_the_direct_normalised_gaussian() {
        let dims = [7, 5, 4];
        let n: usize = dims.iter().product();
        let mut rng = Lcg(3);
        let values: Vec<f32> = (0..n).map(|_| rng.next_unit() as f32).collect();
        let sigma = 1.2f64;
        let r = (3.0 * sigma).ceil() as isize;
        let at = |i: usize| [i % 7, (i / 7) % 5, i / 35].map(|c| c as isize);
        for (i, blurred) in gaussian_blur(&values, dims, sigma).iter().enumerate() {
            let p = at(i);
            let (mut sum, mut weight) = (0.0, 0.0);
            for (j, v) in values.iter().enumerate() {
                let q = at(j);
                if (0..3).all(|a| (p[a] - q[a]).abs() <= r) {
                    let d2: isize = (0..3).map(|a| (p[a] - q[a]).pow(2)).sum();
                    let w = (-(d2 as f64) / (2.0 * sigma * sigma)).exp();
                    (sum, weight) = (sum + w * *v as f64, weight + w);
                }
            }
            assert!((*blurred as f64 - sum / weight).abs() < 1e-5, "voxel {i}");
        }
    }

    #[test]
    fn blur_keeps_constants_and_softmax_sums_to_one() {
        let dims = [5, 4, 3];
        let ones = vec![2.5f32; 60];
        assert!(
            gaussian_blur(&ones, dims, 1.5)
                .iter()
                .all(|&v| (v - 2.5).abs() < 1e-5)
        );
        let p = softmax(&[1.0, 2.0, 3.0, 0.0], 2, 2);
        assert!((p[0] + p[2] - 1.0).abs() < 1e-6 && (p[1] + p[3] - 1.0).abs() < 1e-6);
    }
}
