//! Preprocessing, once per dataset plan, cached on disk: reorient to RAS, crop to the
//! non-zero box, resample to the target spacing, normalise by modality, remap labels to
//! contiguous ids, and store raw little-endian arrays that training memory-maps, so a patch
//! is read without decompressing anything.
//!
//! Arrays are `[channel, x, y, z]` with z fastest: PyTorch's (and MONAI's) layout, in which
//! network axes 2, 3, 4 are x, y, z and a 2D network's unit axis is z.

use std::fs::File;
use std::path::{Path, PathBuf};

use autoseg_kernels::resample::{Order, image_orders, resample_labels, separate_axis};
use memmap2::Mmap;
use serde::{Deserialize, Serialize};

use super::DataError;
use crate::fsutil;
use crate::transforms::preprocess::{
    PreparedGrid, PreprocessPlan, crop_channel, prepare_image, to_z_fastest,
};
use crate::{Case, LabelVolume, Volume};

/// A preprocessed case's description, stored in front of its arrays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseHeader {
    /// The case's id in the dataset.
    pub id: String,
    /// Voxels along x, y, z after cropping and resampling.
    pub dims: [usize; 3],
    /// Image channels.
    pub channels: usize,
    /// Voxel size after resampling.
    pub spacing: [f64; 3],
    /// The crop in the RAS grid before resampling: start and end voxel per axis.
    pub crop: [[usize; 2]; 3],
    /// Voxels of the RAS grid before cropping.
    pub ras_dims: [usize; 3],
    /// Voxels of each class (index = class), for class-balanced sampling and weights.
    pub class_voxels: Vec<u64>,
}

/// A preprocessed case on disk, memory-mapped: image and label arrays read in place.
pub struct PreparedCase {
    /// What the arrays hold.
    pub header: CaseHeader,
    map: Mmap,
    image_offset: usize,
}

const MAGIC: &[u8; 8] = b"ASEGPRE1";

impl PreparedCase {
    /// Voxels per channel.
    pub fn voxels(&self) -> usize {
        self.header.dims.iter().product()
    }

    /// The image, `[channel, x, y, z]`, z fastest.
    pub fn image(&self) -> &[f32] {
        let bytes = &self.map
            [self.image_offset..self.image_offset + 4 * self.header.channels * self.voxels()];
        // The writer aligns the image to 8 bytes; the map is page-aligned.
        bytemuck_f32(bytes)
    }

    /// Class ids `[x, y, z]`, z fastest.
    pub fn label(&self) -> &[u8] {
        let start = self.image_offset + 4 * self.header.channels * self.voxels();
        &self.map[start..start + self.voxels()]
    }

    /// Opens a stored case.
    pub fn open(path: &Path) -> Result<PreparedCase, DataError> {
        let bad = |reason: String| DataError::Cache {
            path: path.to_path_buf(),
            reason,
        };
        let file = File::open(path).map_err(|e| bad(e.to_string()))?;
        // SAFETY: cache files are written once by rename and never modified in place.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| bad(e.to_string()))?;
        if map.len() < 16 || &map[..8] != MAGIC {
            return Err(bad("not a preprocessed case".into()));
        }
        let header_len = u64::from_le_bytes(map[8..16].try_into().expect("8 bytes")) as usize;
        let header_end = 16 + header_len;
        let header: CaseHeader = map
            .get(16..header_end)
            .ok_or_else(|| bad("truncated header".into()))
            .and_then(|h| serde_json::from_slice(h).map_err(|e| bad(e.to_string())))?;
        let image_offset = header_end.next_multiple_of(8);
        let voxels: usize = header.dims.iter().product();
        if map.len() != image_offset + voxels * (4 * header.channels + 1) {
            return Err(bad(format!(
                "{} bytes, expected {}",
                map.len(),
                image_offset + voxels * (4 * header.channels + 1)
            )));
        }
        Ok(PreparedCase {
            header,
            map,
            image_offset,
        })
    }
}

fn bytemuck_f32(bytes: &[u8]) -> &[f32] {
    assert!(bytes.as_ptr().align_offset(4) == 0 && bytes.len().is_multiple_of(4));
    // SAFETY: aligned, sized to whole f32s, and every bit pattern is a valid f32.
    unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<f32>(), bytes.len() / 4) }
}

/// Writes a case atomically (temporary file, then rename).
fn store(path: &Path, header: &CaseHeader, image: &[f32], label: &[u8]) -> Result<(), DataError> {
    let text = serde_json::to_vec(header).expect("headers serialise");
    let mut head = Vec::with_capacity(16 + text.len() + 8);
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&(text.len() as u64).to_le_bytes());
    head.extend_from_slice(&text);
    head.resize(head.len().next_multiple_of(8), 0);
    fsutil::write_atomic(path, |file| {
        file.write_all(&head)?;
        image
            .iter()
            .try_for_each(|v| file.write_all(&v.to_le_bytes()))?;
        file.write_all(label)
    })
    .map_err(|e| DataError::Cache {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// The cache file of `case` under a plan's folder.
pub fn cache_path(folder: &Path, case: &Case) -> PathBuf {
    folder.join(format!("{}.bin", case.id))
}

/// Preprocesses one labelled case into `folder` (skipped when already there) and opens it.
pub fn prepare(
    case: &Case,
    plan: &PreprocessPlan,
    folder: &Path,
) -> Result<PreparedCase, DataError> {
    let path = cache_path(folder, case);
    if let Ok(prepared) = PreparedCase::open(&path) {
        return Ok(prepared);
    }
    let (header, image, label) = preprocess(case, plan)?;
    store(&path, &header, &image, &label)?;
    PreparedCase::open(&path)
}

/// Reads and preprocesses a case: header, image `[c, x, y, z]` and labels, z fastest.
pub fn preprocess(
    case: &Case,
    plan: &PreprocessPlan,
) -> Result<(CaseHeader, Vec<f32>, Vec<u8>), DataError> {
    let image = Volume::read_channels(&case.images)?.into_ras();
    let label_path = case
        .label
        .as_ref()
        .ok_or_else(|| DataError::Unlabelled(case.locator()))?;
    let label = LabelVolume::read(label_path)?
        .into_onto(image.geometry())
        .map_err(|m| DataError::Geometry {
            path: label_path.clone(),
            reason: m.to_string(),
        })?;
    let prepared = prepare_image(&image, plan).map_err(|source| DataError::Prepare {
        path: case.images[0].clone(),
        source,
    })?;
    let PreparedGrid {
        dims: new_dims,
        spacing: new_spacing,
        crop,
        ras_dims,
        ras_spacing: spacing,
    } = prepared.grid;
    let cropped = prepared.grid.cropped_dims();
    let separate = separate_axis(spacing, new_spacing);
    let data = prepared.data;
    let mut ids = crop_channel(label.data(), ras_dims, crop);
    if new_dims != cropped {
        ids = resample_labels(
            &ids,
            cropped,
            new_dims,
            image_orders(Order::Linear, separate),
        );
    }
    let mut class_voxels = vec![0u64; plan.labels.len()];
    let classes: Vec<u8> = ids
        .iter()
        .map(|&id| {
            let class = plan.class_of(id).ok_or(id)?;
            if let Some(count) = class_voxels.get_mut(class as usize) {
                *count += 1;
            }
            Ok(class)
        })
        .collect::<Result<_, u16>>()
        .map_err(|id| DataError::UnknownLabel {
            path: label_path.clone(),
            id,
        })?;
    let header = CaseHeader {
        id: case.id.clone(),
        dims: new_dims,
        channels: image.channels(),
        spacing: new_spacing,
        crop,
        ras_dims,
        class_voxels,
    };
    Ok((header, data, to_z_fastest(&classes, new_dims)))
}
