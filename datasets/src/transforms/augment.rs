//! Training augmentation with nnU-Net's default probabilities and ranges, every draw from
//! a seeded stream so a run is reproducible: rotation and scaling (applied while the patch
//! is extracted), mirroring, Gaussian noise and blur, brightness, contrast, low-resolution
//! simulation and gamma.

use crate::rng::Rng;
use serde::{Deserialize, Serialize};

use crate::training::sampler::{Patch, PatchTransform};

/// Probabilities and ranges of each augmentation (nnU-Net's defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AugmentConfig {
    /// Probability of a rotation.
    pub p_rotation: f64,
    /// Largest rotation about each axis, degrees.
    pub max_rotation_degrees: f64,
    /// Probability of a zoom.
    pub p_scale: f64,
    /// Zoom range.
    pub scale: [f64; 2],
    /// Probability of mirroring along each axis (independently).
    pub p_mirror: f64,
    /// Probability of additive Gaussian noise.
    pub p_noise: f64,
    /// Largest noise variance.
    pub noise_variance: f64,
    /// Probability of Gaussian blur.
    pub p_blur: f64,
    /// Blur sigma range, voxels.
    pub blur_sigma: [f64; 2],
    /// Probability of a brightness factor.
    pub p_brightness: f64,
    /// Brightness factor range.
    pub brightness: [f64; 2],
    /// Probability of a contrast change.
    pub p_contrast: f64,
    /// Contrast factor range.
    pub contrast: [f64; 2],
    /// Probability of low-resolution simulation.
    pub p_low_resolution: f64,
    /// Downsampling factor range of that simulation.
    pub low_resolution: [f64; 2],
    /// Probability of a gamma change.
    pub p_gamma: f64,
    /// Probability of a gamma change of the inverted image.
    pub p_gamma_inverted: f64,
    /// Gamma range.
    pub gamma: [f64; 2],
}

impl Default for AugmentConfig {
    fn default() -> Self {
        Self {
            p_rotation: 0.2,
            max_rotation_degrees: 30.0,
            p_scale: 0.2,
            scale: [0.7, 1.4],
            p_mirror: 0.5,
            p_noise: 0.1,
            noise_variance: 0.1,
            p_blur: 0.2,
            blur_sigma: [0.5, 1.0],
            p_brightness: 0.15,
            brightness: [0.75, 1.25],
            p_contrast: 0.15,
            contrast: [0.75, 1.25],
            p_low_resolution: 0.25,
            low_resolution: [0.5, 1.0],
            p_gamma: 0.3,
            p_gamma_inverted: 0.1,
            gamma: [0.7, 1.5],
        }
    }
}

impl AugmentConfig {
    /// No augmentation at all (validation, tests of the pipeline itself).
    pub fn none() -> Self {
        Self {
            p_rotation: 0.0,
            p_scale: 0.0,
            p_mirror: 0.0,
            p_noise: 0.0,
            p_blur: 0.0,
            p_brightness: 0.0,
            p_contrast: 0.0,
            p_low_resolution: 0.0,
            p_gamma: 0.0,
            p_gamma_inverted: 0.0,
            ..Self::default()
        }
    }

    /// The rotation and zoom of the next patch, if any. `planar` rotates about z only (2D).
    pub fn spatial(&self, rng: &mut Rng, planar: bool) -> Option<PatchTransform> {
        let rotate = rng.uniform() < self.p_rotation;
        let zoom = rng.uniform() < self.p_scale;
        if !rotate && !zoom {
            return None;
        }
        let max = self.max_rotation_degrees.to_radians();
        let mut angles = [0.0; 3];
        if rotate {
            for (a, angle) in angles.iter_mut().enumerate() {
                if !planar || a == 2 {
                    *angle = rng.range(-max, max);
                }
            }
        }
        let scale = if zoom {
            rng.range(self.scale[0], self.scale[1])
        } else {
            1.0
        };
        Some(PatchTransform::new(angles, scale))
    }

    /// Applies the mirror and intensity augmentations to an extracted patch.
    pub fn apply(&self, patch: &mut Patch, rng: &mut Rng) {
        for axis in 0..3 {
            if rng.uniform() < self.p_mirror {
                mirror(patch, axis);
            }
        }
        let n: usize = patch.size.iter().product();
        for c in 0..patch.channels {
            let channel = &mut patch.image[c * n..(c + 1) * n];
            if rng.uniform() < self.p_noise {
                let sd = rng.range(0.0, self.noise_variance).sqrt();
                channel
                    .iter_mut()
                    .for_each(|v| *v += (rng.normal() * sd) as f32);
            }
            if rng.uniform() < self.p_blur {
                blur(
                    channel,
                    patch.size,
                    rng.range(self.blur_sigma[0], self.blur_sigma[1]),
                );
            }
            if rng.uniform() < self.p_brightness {
                let f = rng.range(self.brightness[0], self.brightness[1]) as f32;
                channel.iter_mut().for_each(|v| *v *= f);
            }
            if rng.uniform() < self.p_contrast {
                contrast(
                    channel,
                    rng.range(self.contrast[0], self.contrast[1]) as f32,
                );
            }
            if rng.uniform() < self.p_low_resolution {
                low_resolution(
                    channel,
                    patch.size,
                    rng.range(self.low_resolution[0], self.low_resolution[1]),
                );
            }
            for inverted in [true, false] {
                let p = if inverted {
                    self.p_gamma_inverted
                } else {
                    self.p_gamma
                };
                if rng.uniform() < p {
                    gamma(
                        channel,
                        rng.range(self.gamma[0], self.gamma[1]) as f32,
                        inverted,
                    );
                }
            }
        }
    }
}

/// Flat index of `(x, y, z)` in a z-fastest patch.
fn at(size: [usize; 3], p: [usize; 3]) -> usize {
    (p[0] * size[1] + p[1]) * size[2] + p[2]
}

fn mirror(patch: &mut Patch, axis: usize) {
    let size = patch.size;
    let n: usize = size.iter().product();
    for c in 0..patch.channels {
        flip_axis(&mut patch.image[c * n..(c + 1) * n], size, axis);
    }
    flip_axis(&mut patch.label, size, axis);
}

fn flip_axis<T>(data: &mut [T], size: [usize; 3], axis: usize) {
    for x in 0..size[0] {
        for y in 0..size[1] {
            for z in 0..size[2] {
                let p = [x, y, z];
                if p[axis] * 2 >= size[axis] {
                    continue;
                }
                let mut q = p;
                q[axis] = size[axis] - 1 - p[axis];
                data.swap(at(size, p), at(size, q));
            }
        }
    }
}

/// Separable Gaussian blur, kernel truncated at 3 sigma, edges clamped.
fn blur(data: &mut [f32], size: [usize; 3], sigma: f64) {
    let radius = (3.0 * sigma).ceil() as isize;
    let kernel: Vec<f32> = (-radius..=radius)
        .map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp() as f32)
        .collect();
    let total: f32 = kernel.iter().sum();
    let kernel: Vec<f32> = kernel.iter().map(|k| k / total).collect();
    for axis in 0..3 {
        let source = data.to_vec();
        for x in 0..size[0] {
            for y in 0..size[1] {
                for z in 0..size[2] {
                    let p = [x, y, z];
                    let mut sum = 0.0;
                    for (t, k) in kernel.iter().enumerate() {
                        let mut q = p;
                        q[axis] = (p[axis] as isize + t as isize - radius)
                            .clamp(0, size[axis] as isize - 1)
                            as usize;
                        sum += k * source[at(size, q)];
                    }
                    data[at(size, p)] = sum;
                }
            }
        }
    }
}

fn contrast(data: &mut [f32], factor: f32) {
    let mean = data.iter().sum::<f32>() / data.len().max(1) as f32;
    let (lo, hi) = data
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    data.iter_mut()
        .for_each(|v| *v = ((*v - mean) * factor + mean).clamp(lo, hi));
}

/// Downsample by nearest neighbour to `zoom` of the size, then back up (nnU-Net's
/// `SimulateLowResolutionTransform`).
fn low_resolution(data: &mut [f32], size: [usize; 3], zoom: f64) {
    let small: [usize; 3] = size.map(|s| ((s as f64 * zoom).round() as usize).max(1));
    let source = data.to_vec();
    for x in 0..size[0] {
        for y in 0..size[1] {
            for z in 0..size[2] {
                let p = [x, y, z];
                // The small grid's voxel, then back to the nearest voxel it came from.
                let q: [usize; 3] = std::array::from_fn(|a| {
                    let s =
                        ((p[a] as f64 + 0.5) * small[a] as f64 / size[a] as f64).floor() as usize;
                    let back =
                        ((s as f64 + 0.5) * size[a] as f64 / small[a] as f64).floor() as usize;
                    back.min(size[a] - 1)
                });
                data[at(size, p)] = source[at(size, q)];
            }
        }
    }
}

/// Gamma on the intensities rescaled to [0, 1], keeping the original mean and stdev
/// (nnU-Net's `GammaTransform` with `retain_stats`).
fn gamma(data: &mut [f32], gamma: f32, inverted: bool) {
    let sign = if inverted { -1.0 } else { 1.0 };
    data.iter_mut().for_each(|v| *v *= sign);
    let n = data.len().max(1) as f32;
    let mean = data.iter().sum::<f32>() / n;
    let sd = (data.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n).sqrt();
    let (lo, hi) = data
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let range = (hi - lo).max(1e-7);
    data.iter_mut()
        .for_each(|v| *v = ((*v - lo) / range).powf(gamma) * range + lo);
    let new_mean = data.iter().sum::<f32>() / n;
    let new_sd = (data
        .iter()
        .map(|v| (v - new_mean) * (v - new_mean))
        .sum::<f32>()
        / n)
        .sqrt()
        .max(1e-7);
    data.iter_mut()
        .for_each(|v| *v = sign * ((*v - new_mean) / new_sd * sd + mean));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch() -> Patch {
        let size = [3, 4, 5];
        let n = 60;
        Patch {
            size,
            channels: 1,
            image: (0..n).map(|v| v as f32).collect(),
            label: (0..n).map(|v| (v % 3) as u8).collect(),
        }
    }

    #[test]
    fn mirroring_twice_is_identity_and_keeps_image_and_labels_aligned() {
        let original = patch();
        let mut p = original.clone();
        mirror(&mut p, 1);
        assert_ne!(p, original);
        for (v, l) in p.image.iter().zip(&p.label) {
            assert_eq!((*v as usize % 3) as u8, *l, "image and label moved apart");
        }
        mirror(&mut p, 1);
        assert_eq!(p, original);
    }

    #[test]
    fn same_seed_same_augmentation() {
        let config = AugmentConfig {
            p_noise: 1.0,
            p_gamma: 1.0,
            p_blur: 1.0,
            ..AugmentConfig::default()
        };
        let run = |seed| {
            let mut p = patch();
            config.apply(&mut p, &mut Rng::new(seed));
            p
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }

    #[test]
    fn gamma_keeps_mean_and_stdev() {
        let mut data: Vec<f32> = (0..50)
            .map(|v| (v as f32 * 0.37).sin() * 3.0 + 1.0)
            .collect();
        let stats = |d: &[f32]| {
            let m = d.iter().sum::<f32>() / d.len() as f32;
            (
                m,
                (d.iter().map(|v| (v - m) * (v - m)).sum::<f32>() / d.len() as f32).sqrt(),
            )
        };
        let before = stats(&data);
        gamma(&mut data, 1.4, false);
        let after = stats(&data);
        assert!((before.0 - after.0).abs() < 1e-4 && (before.1 - after.1).abs() < 1e-4);
    }
}
