//! Image preprocessing shared by training, validation and inference: reorient to RAS (the
//! caller's part), crop to the non-zero box, resample to the target spacing, normalise by
//! modality; and its inverse for predictions: class probabilities back to the crop's grid,
//! pasted into the RAS grid (decoded into classes by `regions::Decoding`).
//!
//! Arrays are `[channel, x, y, z]` with z fastest: PyTorch's (and MONAI's) layout, in which
//! network axes 2, 3, 4 are x, y, z and a 2D network's unit axis is z.

use crate::Volume;
use crate::regions::Decoding;
use autoseg_kernels::resample::{Order, image_orders, resample, separate_axis, target_shape};
use serde::{Deserialize, Serialize};

/// How intensities are normalised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Normalization {
    /// Per image and channel: z-score over the non-zero voxels (MRI and other modalities).
    ZScoreNonzero,
    /// CT: clip to the dataset's foreground percentiles, then z-score with the dataset's
    /// foreground mean and stdev (nnU-Net's `CTNormalization`).
    Ct {
        /// Foreground 0.5th percentile.
        lower: f32,
        /// Foreground 99.5th percentile.
        upper: f32,
        /// Foreground mean.
        mean: f32,
        /// Foreground standard deviation.
        std: f32,
    },
    /// Per image and channel: z-score over every voxel (nnU-Net's `ZScoreNormalization`
    /// when cropping to the non-zero box kept most of the image).
    ZScore,
    /// Auto3DSeg's CT rule: the foreground's `[lower, upper]` percentiles mapped to
    /// `[-1, 1]` without clipping, then squashed by a sigmoid.
    RangeSigmoid {
        /// Foreground 0.5th percentile.
        lower: f32,
        /// Foreground 99.5th percentile.
        upper: f32,
    },
    /// Intensities as they are.
    None,
}

/// What preprocessing does to every case of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreprocessPlan {
    /// Voxel size to resample to (x, y, z in mm); `None` keeps each case's own.
    pub target_spacing: Option<[f64; 3]>,
    /// Intensity normalisation.
    pub normalization: Normalization,
    /// The dataset's label ids in training order: id `labels[k]` becomes class `k`.
    pub labels: Vec<u16>,
    /// The label id of unannotated voxels (nnU-Net's `ignore` label), which becomes
    /// [`IGNORE_CLASS`]; absent from the plan's id (and its cache folder) when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_label: Option<u16>,
}

/// The class index prepared labels give the ignore label's voxels: past every class, as
/// an ignore label takes one of the 256 values a prepared label holds.
pub const IGNORE_CLASS: u8 = u8::MAX;

impl PreprocessPlan {
    /// Checks what serde cannot: a target spacing of finite positive millimetres.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(t) = self.target_spacing
            && !t.iter().all(|v| v.is_finite() && *v > 0.0)
        {
            return Err(format!(
                "preprocessing.target_spacing {t:?} must be finite and positive"
            ));
        }
        if let Some(id) = self.ignore_label {
            if self.labels.contains(&id) {
                return Err(format!(
                    "preprocessing.ignore_label {id} is also a class in preprocessing.labels: \
                     a voxel cannot be both unannotated and annotated"
                ));
            }
            if self.labels.len() > IGNORE_CLASS as usize {
                return Err(format!(
                    "preprocessing.ignore_label needs at most {} classes, background included; \
                     preprocessing.labels has {}",
                    IGNORE_CLASS,
                    self.labels.len()
                ));
            }
        }
        Ok(())
    }

    /// The class index unannotated voxels take, where the plan has an ignore label.
    pub fn ignore_class(&self) -> Option<u8> {
        self.ignore_label.map(|_| IGNORE_CLASS)
    }

    /// The class a voxel of label id `id` trains as: its index in `labels`, or
    /// [`IGNORE_CLASS`] for the ignore label; `None` for an id the plan does not know.
    pub fn class_of(&self, id: u16) -> Option<u8> {
        if Some(id) == self.ignore_label {
            return Some(IGNORE_CLASS);
        }
        self.labels.iter().position(|&l| l == id).map(|k| k as u8)
    }

    /// A short stable name for the plan, naming its cache folder: any change to the plan
    /// gets a folder of its own.
    pub fn id(&self) -> String {
        let text = serde_json::to_string(self).expect("plans serialise");
        crate::hash::fnv1a64_hex(text.as_bytes())
    }
}

/// Where a preprocessed image sits in its RAS image: what inverting needs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PreparedGrid {
    /// Voxels along x, y, z after cropping and resampling.
    pub dims: [usize; 3],
    /// Voxel size after resampling.
    pub spacing: [f64; 3],
    /// The crop in the RAS grid before resampling: start and end voxel per axis.
    pub crop: [[usize; 2]; 3],
    /// Voxels of the RAS grid before cropping.
    pub ras_dims: [usize; 3],
    /// Voxel size of the RAS grid.
    pub ras_spacing: [f64; 3],
}

impl PreparedGrid {
    /// Voxels of the crop, before resampling.
    pub fn cropped_dims(&self) -> [usize; 3] {
        std::array::from_fn(|a| self.crop[a][1] - self.crop[a][0])
    }

    /// Resamples one x-fastest channel from the crop's grid to the prepared one, or back.
    fn resample(&self, data: Vec<f32>, order: Order, back: bool) -> Vec<f32> {
        let (from, to) = if back {
            (self.dims, self.cropped_dims())
        } else {
            (self.cropped_dims(), self.dims)
        };
        if from == to {
            return data;
        }
        resample(&data, from, to, self.orders(order))
    }

    /// Per axis, the order resampling between the crop and the prepared grid takes, in
    /// either direction: `order`, or nearest along nnU-Net's separate (anisotropic) axis.
    pub fn orders(&self, order: Order) -> [Order; 3] {
        image_orders(order, separate_axis(self.ras_spacing, self.spacing))
    }
}

/// An image ready for a network: channels `[c, x, y, z]`, z fastest.
#[derive(Debug, Clone)]
pub struct PreparedImage {
    /// The voxels.
    pub data: Vec<f32>,
    /// Channels.
    pub channels: usize,
    /// Where it came from.
    pub grid: PreparedGrid,
}

/// The most voxels a prepared image may have per channel (4 GiB of f32): a header's spacing
/// or a config's target spacing that would resample past it is an error, not an allocation
/// of petabytes.
pub const MAX_PREPARED_VOXELS: f64 = (1u64 << 30) as f64;

/// Why an image cannot be prepared for a network.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PrepareError {
    /// NaN or infinite intensities: a network would turn them into NaN probabilities.
    #[error("{count} voxels are NaN or infinite")]
    NonFinite {
        /// How many.
        count: usize,
    },
    /// A voxel size that is not a finite positive number.
    #[error("{which} spacing {spacing:?} mm is not finite and positive")]
    Spacing {
        /// "the image's" or "the target".
        which: &'static str,
        /// The spacing.
        spacing: [f64; 3],
    },
    /// Resampling would make the image too large to hold.
    #[error(
        "resampling {dims:?} voxels of {spacing:?} mm to {target:?} mm gives {voxels:.3e} voxels, more than the {max:.3e} allowed"
    )]
    TooLarge {
        /// The crop's voxels.
        dims: [usize; 3],
        /// Their spacing.
        spacing: [f64; 3],
        /// The target spacing.
        target: [f64; 3],
        /// The voxels that would result.
        voxels: f64,
        /// [`MAX_PREPARED_VOXELS`].
        max: f64,
    },
}

/// The crop's grid after resampling from `spacing` to `target`, checked before anything is
/// allocated for it.
pub fn checked_target_shape(
    dims: [usize; 3],
    spacing: [f64; 3],
    target: [f64; 3],
) -> Result<[usize; 3], PrepareError> {
    let valid = |s: [f64; 3]| s.iter().all(|v| v.is_finite() && *v > 0.0);
    if !valid(spacing) {
        let which = "the image's";
        return Err(PrepareError::Spacing { which, spacing });
    }
    if !valid(target) {
        let which = "the target";
        return Err(PrepareError::Spacing {
            which,
            spacing: target,
        });
    }
    let voxels: f64 = (0..3)
        .map(|a| (dims[a] as f64 * spacing[a] / target[a]).round().max(1.0))
        .product();
    if voxels.is_nan() || voxels > MAX_PREPARED_VOXELS {
        let max = MAX_PREPARED_VOXELS;
        return Err(PrepareError::TooLarge {
            dims,
            spacing,
            target,
            voxels,
            max,
        });
    }
    Ok(target_shape(dims, spacing, target))
}

/// Crops, resamples (cubic, nnU-Net's order 3) and normalises a RAS image. Refuses NaN or
/// infinite voxels, and spacings that are not numbers or would resample past
/// [`MAX_PREPARED_VOXELS`].
pub fn prepare_image(image: &Volume, plan: &PreprocessPlan) -> Result<PreparedImage, PrepareError> {
    let grid = prepared_grid(image, plan)?;
    let (ras_dims, crop, dims) = (grid.ras_dims, grid.crop, grid.dims);
    let mut data = Vec::with_capacity(image.channels() * dims.iter().product::<usize>());
    for c in 0..image.channels() {
        let channel = crop_channel(image.channel(c), ras_dims, crop);
        let mut channel = grid.resample(channel, Order::Cubic, false);
        normalize(&mut channel, &plan.normalization);
        data.extend(to_z_fastest(&channel, dims));
    }
    Ok(PreparedImage {
        data,
        channels: image.channels(),
        grid,
    })
}

/// Where [`prepare_image`] puts a RAS image: its crop to the non-zero box and the grid the
/// crop is resampled to, checked before anything is allocated for it (NaN or infinite
/// voxels, spacings that are not numbers or would resample past [`MAX_PREPARED_VOXELS`]).
pub fn prepared_grid(image: &Volume, plan: &PreprocessPlan) -> Result<PreparedGrid, PrepareError> {
    let count = image.data().iter().filter(|v| !v.is_finite()).count();
    if count > 0 {
        return Err(PrepareError::NonFinite { count });
    }
    let crop = image.nonzero_box();
    let cropped: [usize; 3] = std::array::from_fn(|a| crop[a][1] - crop[a][0]);
    let ras_spacing = image.spacing();
    let (spacing, dims) = match plan.target_spacing {
        Some(target) => (target, checked_target_shape(cropped, ras_spacing, target)?),
        None => (ras_spacing, cropped),
    };
    Ok(PreparedGrid {
        dims,
        spacing,
        crop,
        ras_dims: image.dims(),
        ras_spacing,
    })
}

/// Channel probabilities on the RAS grid, `[channels, x, y, z]` x fastest, from those on
/// the prepared grid (`[channels, x, y, z]`, z fastest): each channel resampled back to the
/// crop (linear, as nnU-Net resamples logits) and pasted into the RAS grid, where outside
/// the crop the background is certain ([`Decoding::outside`]).
pub fn restore_probabilities(
    probabilities: &[f32],
    channels: usize,
    decoding: Decoding,
    grid: &PreparedGrid,
) -> Vec<f32> {
    let n_ras: usize = grid.ras_dims.iter().product();
    let mut out = Vec::with_capacity(channels * n_ras);
    for k in 0..channels {
        out.extend(restore_class(probabilities, k, decoding, grid));
    }
    out
}

/// Channel `k` of probabilities on the prepared grid, on the RAS grid (x fastest):
/// resampled back to the crop and pasted in; outside the crop, `decoding`'s certain
/// background.
pub fn restore_class(
    probabilities: &[f32],
    k: usize,
    decoding: Decoding,
    grid: &PreparedGrid,
) -> Vec<f32> {
    let n: usize = grid.dims.iter().product();
    let [rx, ry, rz] = grid.ras_dims;
    let mut target = vec![decoding.outside(k); rx * ry * rz];
    let channel = from_z_fastest(&probabilities[k * n..(k + 1) * n], grid.dims);
    let mut values = grid.resample(channel, Order::Linear, true).into_iter();
    for z in grid.crop[2][0]..grid.crop[2][1] {
        for y in grid.crop[1][0]..grid.crop[1][1] {
            let row = (z * ry + y) * rx;
            for x in grid.crop[0][0]..grid.crop[0][1] {
                target[row + x] = values.next().expect("the crop's voxels");
            }
        }
    }
    target
}

/// Copies the `crop` of an x-fastest channel.
pub fn crop_channel<T: Copy>(data: &[T], dims: [usize; 3], crop: [[usize; 2]; 3]) -> Vec<T> {
    let mut out = Vec::with_capacity((0..3).map(|a| crop[a][1] - crop[a][0]).product());
    for z in crop[2][0]..crop[2][1] {
        for y in crop[1][0]..crop[1][1] {
            let row = (z * dims[1] + y) * dims[0];
            out.extend_from_slice(&data[row + crop[0][0]..row + crop[0][1]]);
        }
    }
    out
}

/// x-fastest `[x, y, z]` to z-fastest.
pub fn to_z_fastest<T: Copy + Default>(data: &[T], dims: [usize; 3]) -> Vec<T> {
    let [nx, ny, nz] = dims;
    let mut out = vec![T::default(); data.len()];
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                out[(x * ny + y) * nz + z] = data[(z * ny + y) * nx + x];
            }
        }
    }
    out
}

/// z-fastest `[x, y, z]` to x-fastest.
pub fn from_z_fastest<T: Copy + Default>(data: &[T], dims: [usize; 3]) -> Vec<T> {
    let [nx, ny, nz] = dims;
    let mut out = vec![T::default(); data.len()];
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                out[(z * ny + y) * nx + x] = data[(x * ny + y) * nz + z];
            }
        }
    }
    out
}

fn normalize(channel: &mut [f32], normalization: &Normalization) {
    match normalization {
        Normalization::None => {}
        Normalization::Ct {
            lower,
            upper,
            mean,
            std,
        } => {
            let std = std.max(1e-8);
            channel
                .iter_mut()
                .for_each(|v| *v = (v.clamp(*lower, *upper) - mean) / std);
        }
        Normalization::RangeSigmoid { lower, upper } => {
            let half = ((upper - lower) / 2.0).max(1e-8);
            let centre = (lower + upper) / 2.0;
            channel
                .iter_mut()
                .for_each(|v| *v = 1.0 / (1.0 + (-(*v - centre) / half).exp()));
        }
        // nnU-Net's ZScore with use_mask_for_norm: only non-zero voxels count and change.
        Normalization::ZScoreNonzero => z_score(channel, |v| v != 0.0),
        Normalization::ZScore => z_score(channel, |_| true),
    }
}

/// Standardises the voxels `selected` picks by their own mean and deviation.
fn z_score(channel: &mut [f32], selected: impl Fn(f32) -> bool) {
    let (mut n, mut sum, mut sq) = (0f64, 0f64, 0f64);
    for &v in channel.iter().filter(|v| selected(**v)) {
        n += 1.0;
        sum += v as f64;
        sq += (v as f64) * (v as f64);
    }
    if n == 0.0 {
        return;
    }
    let mean = sum / n;
    let std = ((sq / n - mean * mean).max(0.0)).sqrt().max(1e-8);
    channel
        .iter_mut()
        .filter(|v| selected(**v))
        .for_each(|v| *v = ((*v as f64 - mean) / std) as f32);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ignore_label_becomes_the_ignore_class_and_may_not_be_a_class() {
        let mut plan = PreprocessPlan {
            target_spacing: None,
            normalization: Normalization::None,
            labels: vec![0, 1, 4],
            ignore_label: Some(9),
        };
        assert_eq!(plan.validate(), Ok(()));
        let classes: Vec<Option<u8>> = [0, 4, 9, 5].map(|id| plan.class_of(id)).to_vec();
        assert_eq!(classes, [Some(0), Some(2), Some(IGNORE_CLASS), None]);
        plan.ignore_label = Some(4);
        let err = plan.validate().unwrap_err();
        assert!(err.contains("ignore_label 4 is also a class"), "{err}");
        plan.ignore_label = Some(999);
        plan.labels = (0..256).collect();
        let err = plan.validate().unwrap_err();
        assert!(err.contains("at most 255 classes"), "{err}");
        // No ignore label: the plan (and its cache folder's name) is what it was.
        plan.ignore_label = None;
        assert!(!serde_json::to_string(&plan).unwrap().contains("ignore"));
    }

    #[test]
    fn z_fastest_round_trips() {
        let dims = [3, 4, 5];
        let data: Vec<u32> = (0..60).collect();
        assert_eq!(from_z_fastest(&to_z_fastest(&data, dims), dims), data);
    }

    #[test]
    fn restored_one_hot_probabilities_put_the_classes_into_the_crop() {
        // A 2x2x2 crop at (1..3, 0..2, 2..4) of a 4x3x5 grid, not resampled.
        let grid = PreparedGrid {
            dims: [2, 2, 2],
            spacing: [1.0; 3],
            crop: [[1, 3], [0, 2], [2, 4]],
            ras_dims: [4, 3, 5],
            ras_spacing: [1.0; 3],
        };
        let classes_xfast: Vec<u8> = vec![0, 1, 2, 1, 0, 2, 2, 1];
        let zfast = to_z_fastest(&classes_xfast, grid.dims);
        let mut probabilities = vec![0f32; 3 * 8];
        for (i, &k) in zfast.iter().enumerate() {
            probabilities[k as usize * 8 + i] = 1.0;
        }
        let argmax = Decoding::Argmax;
        let out = argmax.classes(&restore_probabilities(&probabilities, 3, argmax, &grid), 3);
        assert_eq!(out.iter().filter(|&&c| c != 0).count(), 6);
        let at = |x: usize, y: usize, z: usize| out[(z * 3 + y) * 4 + x];
        assert_eq!(at(2, 0, 2), 1);
        assert_eq!(at(1, 1, 2), 2);
        assert_eq!(at(2, 1, 3), 1);
        assert_eq!(at(0, 0, 2), 0);
    }
}
