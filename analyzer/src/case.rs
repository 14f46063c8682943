//! One case's statistics: what MONAI's `ImageStats`, `FgImageStats` and `LabelStats` report,
//! what nnU-Net's fingerprint takes per case, and label geometry (bounding boxes, components).

use std::path::{Path, PathBuf};

use autoseg_datasets::orientation::AxisTransform;
use autoseg_datasets::{Case, DatasetError, LabelVolume, Orientation, Volume};
use autoseg_kernels::{Connectivity, label_components};
use serde::{Deserialize, Serialize};

use crate::grouped::{grouped_stats, sample_with_distribution};
use crate::sample::SampleStats;
use crate::sketch::{Moments, QuantileSketch};

/// Everything measured on one case, in RAS voxel order (x, y, z), as MONAI reorients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseStats {
    /// The case's id in the datalist.
    pub id: String,
    /// Image files as the datalist names them (relative to the data root when inside it).
    pub image_paths: Vec<String>,
    /// Label file, likewise.
    pub label_path: Option<String>,
    pub shape: [usize; 3],
    pub channels: usize,
    /// Per channel: MONAI's crop, the bounding box of voxels > 0 over axes y and z (MONAI's
    /// `CropForeground` on a channel's 3D array takes x for the channel axis and keeps it).
    pub cropped_shape: Vec<[usize; 3]>,
    pub spacing: [f64; 3],
    /// Shape times spacing, in mm.
    pub sizemm: [f64; 3],
    /// Per channel, over that channel's crop.
    pub intensity: Vec<SampleStats>,
    /// What the label adds (absent for an unlabelled case).
    pub label: Option<LabelFigures>,
    /// nnU-Net's crop: the bounding box of voxels != 0 in any channel, along all three axes.
    pub nonzero_crop_shape: [usize; 3],
}

/// Per-case figures that need the label map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelFigures {
    /// Per channel, over voxels with label > 0 (MONAI's `image_foreground_stats`).
    pub foreground_intensity: Vec<SampleStats>,
    /// Classes present, ascending.
    pub classes: Vec<ClassFigures>,
}

/// One class of one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassFigures {
    pub id: u16,
    pub voxels: u64,
    /// voxels / all voxels (MONAI's `foreground_percentage`, a fraction despite its name).
    pub foreground_percentage: f64,
    /// Per channel, over the class's voxels.
    pub intensity: Vec<SampleStats>,
    /// Smallest and largest (x, y, z) voxel index of the class (inclusive).
    pub bbox: [[usize; 3]; 2],
    /// Voxel counts of its 26-connected components, largest first.
    pub component_sizes: Vec<u64>,
}

/// Pooled-distribution summaries of one case, per channel, for the exact dataset figures.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseDistributions {
    /// Over the MONAI crop, per channel.
    pub image: Vec<Distribution>,
    /// Over label > 0, per channel (empty for an unlabelled case).
    pub foreground: Vec<Distribution>,
}

/// Exact moments and a quantile sketch of one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Distribution {
    pub moments: Moments,
    pub sketch: QuantileSketch,
}

impl Distribution {
    fn of(values: &[f32]) -> Distribution {
        Distribution {
            moments: Moments::of(values),
            sketch: QuantileSketch::of(values),
        }
    }
}

/// Why a case could not be analyzed.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error(transparent)]
    Data(#[from] DatasetError),
    #[error("{}: {count} voxels are NaN or infinite, the first at index {first}", path.display())]
    NonFinite {
        path: PathBuf,
        count: usize,
        first: usize,
    },
    #[error("{}: the case lists no image", .0)]
    NoImage(String),
}

/// Reads one case and measures it in RAS voxel order.
///
/// An image whose axes only run opposite to RAS's is measured as it is stored, and only its
/// bounding boxes are mirrored into RAS: every other figure is the same in either order, and
/// flipping two or three volumes a case was a tenth of the analyzer's time on BraTS. An image
/// with its axes in another order is reoriented first.
pub fn analyze_case(case: &Case, root: &Path) -> Result<(CaseStats, CaseDistributions), CaseError> {
    if case.images.is_empty() {
        return Err(CaseError::NoImage(case.locator()));
    }
    let image = Volume::read_channels(&case.images)?;
    let to_ras = AxisTransform::between(image.geometry().orientation(), Orientation::RAS);
    let (image, mirrored) = if to_ras.permutes() {
        (image.into_ras(), [false; 3])
    } else {
        (image, to_ras.flip)
    };
    check_finite(&image, &case.images[0])?;
    let label = match &case.label {
        Some(path) => Some(read_label_onto(path, &case.images[0], &image)?),
        None => None,
    };
    let dims = image.dims();
    let spacing = image.spacing();
    let mut cropped_shape = Vec::new();
    let mut intensity = Vec::new();
    let mut image_dist = Vec::new();
    for c in 0..image.channels() {
        let (shape, rows) = monai_crop(image.channel(c), dims);
        cropped_shape.push(shape);
        let (stats, moments, sketch) = sample_with_distribution(&rows);
        image_dist.push(Distribution { moments, sketch });
        intensity.push(stats);
    }
    let (label, foreground) = match &label {
        Some(label) => {
            let (figures, dists) = label_figures(&image, label.data(), mirrored);
            (Some(figures), dists)
        }
        None => (None, Vec::new()),
    };
    let stats = CaseStats {
        id: case.id.clone(),
        image_paths: case.images.iter().map(|p| relative(p, root)).collect(),
        label_path: case.label.as_deref().map(|p| relative(p, root)),
        shape: dims,
        channels: image.channels(),
        cropped_shape,
        spacing,
        sizemm: std::array::from_fn(|a| dims[a] as f64 * spacing[a]),
        intensity,
        label,
        nonzero_crop_shape: image.nonzero_box().map(|[lo, hi]| hi - lo),
    };
    let dists = CaseDistributions {
        image: image_dist,
        foreground,
    };
    Ok((stats, dists))
}

fn read_label_onto(
    path: &Path,
    image_path: &Path,
    image: &Volume,
) -> Result<LabelVolume, CaseError> {
    let label = LabelVolume::read(path)?;
    label.into_onto(image.geometry()).map_err(|mismatch| {
        DatasetError::Geometry {
            path: path.to_path_buf(),
            against: image_path.to_path_buf(),
            mismatch,
        }
        .into()
    })
}

fn check_finite(image: &Volume, path: &Path) -> Result<(), CaseError> {
    let bad = image.data().iter().filter(|v| !v.is_finite()).count();
    if bad == 0 {
        return Ok(());
    }
    let first = image
        .data()
        .iter()
        .position(|v| !v.is_finite())
        .unwrap_or(0);
    Err(CaseError::NonFinite {
        path: path.to_path_buf(),
        count: bad,
        first,
    })
}

/// MONAI's per-channel crop: the y/z bounding box of voxels > 0, all of x. Returns the crop's
/// shape and its rows (x runs), empty when no voxel is > 0.
fn monai_crop(channel: &[f32], dims: [usize; 3]) -> ([usize; 3], Vec<&[f32]>) {
    let [nx, ny, nz] = dims;
    let row = |y: usize, z: usize| &channel[(z * ny + y) * nx..][..nx];
    let (mut y0, mut y1, mut z0, mut z1) = (usize::MAX, 0, usize::MAX, 0);
    for z in 0..nz {
        for y in 0..ny {
            if row(y, z).iter().any(|&v| v > 0.0) {
                (y0, y1, z0, z1) = (y0.min(y), y1.max(y), z0.min(z), z1.max(z));
            }
        }
    }
    if y0 == usize::MAX {
        return ([nx, 0, 0], Vec::new());
    }
    let rows = (z0..=z1).flat_map(|z| (y0..=y1).map(move |y| (y, z)));
    (
        [nx, y1 - y0 + 1, z1 - z0 + 1],
        rows.map(|(y, z)| row(y, z)).collect(),
    )
}

/// Foreground and per-class figures, plus the foreground distributions; bounding boxes are
/// mirrored along the `mirrored` axes (to give them in RAS order).
fn label_figures(
    image: &Volume,
    labels: &[u16],
    mirrored: [bool; 3],
) -> (LabelFigures, Vec<Distribution>) {
    let components = label_components(labels, image.dims(), Connectivity::TwentySix);
    let mut present: Vec<u16> = components.components.iter().map(|c| c.class).collect();
    present.sort_unstable();
    present.dedup();
    // Dense index of each present class, and the union of the non-zero ones: the foreground.
    let mut dense = vec![0usize; present.last().map_or(0, |&id| id as usize + 1)];
    for (i, &id) in present.iter().enumerate() {
        dense[id as usize] = i;
    }
    let foreground = vec![
        present
            .iter()
            .enumerate()
            .filter(|(_, id)| **id > 0)
            .map(|(i, _)| i)
            .collect(),
    ];
    let per_channel: Vec<Vec<SampleStats>> = (0..image.channels())
        .map(|c| {
            grouped_stats(
                image.channel(c),
                labels,
                present.len(),
                |label| Some(dense[label as usize]),
                &foreground,
            )
        })
        .collect();
    let dists = (0..image.channels())
        .map(|c| Distribution::of(&gather(image.channel(c), labels, |l| l > 0)))
        .collect();
    let classes = present
        .iter()
        .enumerate()
        .map(|(k, &id)| {
            let parts: Vec<_> = components.of_class(id).collect();
            let voxels: u64 = parts.iter().map(|p| p.size).sum();
            let mut component_sizes: Vec<u64> = parts.iter().map(|p| p.size).collect();
            component_sizes.sort_unstable_by(|a, b| b.cmp(a));
            let bbox = mirror_box(
                [
                    std::array::from_fn(|a| parts.iter().map(|p| p.bbox_min[a]).min().unwrap_or(0)),
                    std::array::from_fn(|a| parts.iter().map(|p| p.bbox_max[a]).max().unwrap_or(0)),
                ],
                image.dims(),
                mirrored,
            );
            ClassFigures {
                id,
                voxels,
                foreground_percentage: voxels as f64 / labels.len() as f64,
                intensity: per_channel.iter().map(|stats| stats[k]).collect(),
                bbox,
                component_sizes,
            }
        })
        .collect();
    let figures = LabelFigures {
        foreground_intensity: per_channel
            .iter()
            .map(|stats| stats[present.len()])
            .collect(),
        classes,
    };
    (figures, dists)
}

/// An inclusive box of voxel indices with the `mirrored` axes of a grid of `dims` reversed.
fn mirror_box([lo, hi]: [[usize; 3]; 2], dims: [usize; 3], mirrored: [bool; 3]) -> [[usize; 3]; 2] {
    let last = dims.map(|n| n.saturating_sub(1));
    [
        std::array::from_fn(|a| if mirrored[a] { last[a] - hi[a] } else { lo[a] }),
        std::array::from_fn(|a| if mirrored[a] { last[a] - lo[a] } else { hi[a] }),
    ]
}

fn gather(channel: &[f32], labels: &[u16], keep: impl Fn(u16) -> bool) -> Vec<f32> {
    channel
        .iter()
        .zip(labels)
        .filter(|&(_, &l)| keep(l))
        .map(|(&v, _)| v)
        .collect()
}

/// `path` relative to `root` when it lies inside, else as it is.
fn relative(path: &Path, root: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use autoseg_datasets::datalist::Split;
    use autoseg_datasets::phantom::{PhantomSpec, generate_case};
    use serde_json::Value;

    /// `image` and `label` written in `codes` orientation into `dir`, as a datalist case.
    fn stored(dir: &Path, image: &Volume, label: &LabelVolume, codes: &str) -> Case {
        let orientation = Orientation::parse(codes).unwrap();
        let paths = ["image", "label"].map(|what| dir.join(format!("{what}_{codes}.nii.gz")));
        image.reorient(orientation).write(&paths[0]).unwrap();
        label.reorient(orientation).write(&paths[1]).unwrap();
        let [image_path, label_path] = paths;
        Case {
            id: "case".into(),
            split: Split::Training,
            index: 0,
            images: vec![image_path],
            label: Some(label_path),
            fold: None,
            extra: Default::default(),
        }
    }

    /// Equal but for rounding (sums taken in another voxel order) and the file names.
    fn assert_same_figures(a: &Value, b: &Value, at: &str) {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => {
                let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                assert!((x - y).abs() <= 1e-9 * x.abs().max(1.0), "{at}: {x} vs {y}");
            }
            (Value::Array(x), Value::Array(y)) => {
                assert_eq!(x.len(), y.len(), "{at}");
                for (i, (x, y)) in x.iter().zip(y).enumerate() {
                    assert_same_figures(x, y, &format!("{at}[{i}]"));
                }
            }
            (Value::Object(x), Value::Object(y)) => {
                assert_eq!(x.len(), y.len(), "{at}");
                for (key, x) in x.iter().filter(|(k, _)| !k.contains("path")) {
                    assert_same_figures(x, &y[key], &format!("{at}.{key}"));
                }
            }
            _ => assert_eq!(a, b, "{at}"),
        }
    }

    #[test]
    fn a_flipped_or_permuted_case_has_the_figures_of_its_ras_copy() {
        let spec = PhantomSpec {
            shape: [20, 17, 14],
            seed: 3,
            ..PhantomSpec::default()
        };
        let (image, label) = generate_case(&spec, 0);
        let (image, label) = (image.to_ras(), label.to_ras());
        let dir = tempfile::tempdir().unwrap();
        let figures = |codes: &str| {
            let case = stored(dir.path(), &image, &label, codes);
            let (stats, _) = analyze_case(&case, dir.path()).unwrap();
            serde_json::to_value(stats).unwrap()
        };
        let ras = figures("RAS");
        let classes = ras["label"]["classes"].as_array().unwrap();
        assert!(
            classes.len() >= 3,
            "background and two classes: {classes:?}"
        );
        // Flips only (measured as stored, boxes mirrored), and a permutation (reoriented).
        for codes in ["LPS", "RAI", "LAI", "ASL"] {
            assert_same_figures(&ras, &figures(codes), codes);
        }
    }
}
