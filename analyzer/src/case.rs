//! One case's statistics: what MONAI's `ImageStats`, `FgImageStats` and `LabelStats` report,
//! what nnU-Net's fingerprint takes per case, and label geometry (bounding boxes, components).

use std::path::{Path, PathBuf};

use autoseg_datasets::orientation::AxisTransform;
use autoseg_datasets::{Case, DatasetError, LabelVolume, Orientation, Volume};
use autoseg_kernels::runs::equal_runs;
use autoseg_kernels::{Components, Connectivity, KernelDevice};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::grouped::{ChannelSamples, ChannelStats};
use crate::sample::SampleStats;
use crate::scan::Scan;
use crate::sketch::Distribution;

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
pub fn analyze_case(
    case: &Case,
    root: &Path,
    device: &KernelDevice,
) -> Result<(CaseStats, CaseDistributions), CaseError> {
    if case.images.is_empty() {
        return Err(CaseError::NoImage(case.locator()));
    }
    // The label is read while the image is; the channels are measured while the label's
    // components are found. A case is then several tasks, so the last case of a run does not
    // leave the other workers idle.
    let (image, label) = rayon::join(
        || Volume::read_channels(&case.images),
        || case.label.as_deref().map(LabelVolume::read).transpose(),
    );
    let image = image?;
    let to_ras = AxisTransform::between(image.geometry().orientation(), Orientation::RAS);
    let (image, mirrored) = if to_ras.permutes() {
        (image.into_ras(), [false; 3])
    } else {
        (image, to_ras.flip)
    };
    let scan = Scan::of(&image);
    check_finite(&image, &scan, &case.images[0])?;
    let label = match (label?, &case.label) {
        (Some(label), Some(path)) => Some(label_onto(label, path, &case.images[0], &image)?),
        _ => None,
    };
    let dims = image.dims();
    let spacing = image.spacing();
    let labelled = label
        .as_ref()
        .map(|label| (label.data(), Classes::of(label.data())));
    let measure = |c: usize| {
        let (shape, rows) = monai_crop(dims, scan.positive_rows[c]);
        let labelled = labelled
            .as_ref()
            .map(|(labels, classes)| (*labels, classes));
        (
            shape,
            measure_channel(image.channel(c), labelled, dims[0], &rows),
        )
    };
    let (components, measured) = rayon::join(
        || {
            labelled
                .as_ref()
                .map(|(labels, _)| device.label_components(labels, dims, Connectivity::TwentySix))
        },
        || {
            (0..image.channels())
                .into_par_iter()
                .map(measure)
                .collect::<Vec<_>>()
        },
    );
    let (cropped_shape, mut channels): (Vec<_>, Vec<_>) = measured.into_iter().unzip();
    let intensity = channels.iter().map(|m| m.rows).collect();
    let label = labelled
        .zip(components)
        .map(|((_, classes), components)| classes.figures(&components, &channels, dims, mirrored));
    let foreground = match label {
        Some(_) => channels
            .iter_mut()
            .map(|m| m.union_distributions.remove(0))
            .collect(),
        None => Vec::new(),
    };
    let image_dist = channels.into_iter().map(|m| m.rows_distribution).collect();
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
        nonzero_crop_shape: scan.nonzero_box.map(|[lo, hi]| hi - lo),
    };
    let dists = CaseDistributions {
        image: image_dist,
        foreground,
    };
    Ok((stats, dists))
}

fn label_onto(
    label: LabelVolume,
    path: &Path,
    image_path: &Path,
    image: &Volume,
) -> Result<LabelVolume, CaseError> {
    label.into_onto(image.geometry()).map_err(|mismatch| {
        DatasetError::Geometry {
            path: path.to_path_buf(),
            against: image_path.to_path_buf(),
            mismatch: Box::new(mismatch),
        }
        .into()
    })
}

fn check_finite(image: &Volume, scan: &Scan, path: &Path) -> Result<(), CaseError> {
    if scan.non_finite == 0 {
        return Ok(());
    }
    let first = image.data().iter().position(|v| !v.is_finite());
    Err(CaseError::NonFinite {
        path: path.to_path_buf(),
        count: scan.non_finite,
        first: first.unwrap_or(0),
    })
}

/// MONAI's per-channel crop: the y/z bounding box of voxels > 0 (`positive_rows`, from the
/// scan), all of x. Returns the crop's shape and which rows (x runs) it holds, none when no
/// voxel is > 0.
fn monai_crop(dims: [usize; 3], positive_rows: Option<[[usize; 2]; 2]>) -> ([usize; 3], Vec<bool>) {
    let [nx, ny, nz] = dims;
    let Some([[y0, y1], [z0, z1]]) = positive_rows else {
        return ([nx, 0, 0], vec![false; ny * nz]);
    };
    let rows = (0..ny * nz)
        .map(|r| (y0..=y1).contains(&(r % ny)) && (z0..=z1).contains(&(r / ny)))
        .collect();
    ([nx, y1 - y0 + 1, z1 - z0 + 1], rows)
}

/// One channel's samples: MONAI's crop (the `rows` marked, of `row_len` voxels each) and,
/// with a label map, every present class and the foreground.
fn measure_channel(
    values: &[f32],
    labelled: Option<(&[u16], &Classes)>,
    row_len: usize,
    rows: &[bool],
) -> ChannelStats {
    let classes = labelled.map(|(_, classes)| classes);
    ChannelSamples {
        values,
        labels: labelled.map(|(labels, _)| labels),
        row_len,
        rows,
        groups: classes.map_or(0, |c| c.present.len()),
        sample_of: |label| classes.map(|c| c.sample[label as usize]),
        unions: classes.map_or(&[], |c| std::slice::from_ref(&c.foreground)),
    }
    .measure()
}

/// The classes of a label map: the classes present, and the sample each class's voxels go to.
struct Classes {
    /// Classes present, ascending; class `present[k]` is sample k.
    present: Vec<u16>,
    /// Per class id up to the largest present, its sample.
    sample: Vec<usize>,
    /// The samples of the non-zero classes: the foreground, as one union.
    foreground: Vec<usize>,
    /// Voxels in the map.
    voxels: usize,
}

impl Classes {
    fn of(labels: &[u16]) -> Classes {
        let mut seen = vec![false; 1 << 16];
        equal_runs(labels, |id, _| seen[id as usize] = true);
        let present: Vec<u16> = (0..=u16::MAX).filter(|&id| seen[id as usize]).collect();
        let mut sample = vec![0usize; present.last().map_or(0, |&id| id as usize + 1)];
        for (k, &id) in present.iter().enumerate() {
            sample[id as usize] = k;
        }
        let foreground = (0..present.len()).filter(|&k| present[k] > 0).collect();
        Classes {
            present,
            sample,
            foreground,
            voxels: labels.len(),
        }
    }

    /// The foreground and per-class figures from the map's components and each channel's
    /// measured samples; bounding boxes are mirrored along the `mirrored` axes (to give them
    /// in RAS order).
    fn figures(
        &self,
        components: &Components,
        channels: &[ChannelStats],
        dims: [usize; 3],
        mirrored: [bool; 3],
    ) -> LabelFigures {
        let classes = self
            .present
            .iter()
            .enumerate()
            .map(|(k, &id)| {
                let parts: Vec<_> = components.of_class(id).collect();
                let voxels: u64 = parts.iter().map(|p| p.size).sum();
                let mut component_sizes: Vec<u64> = parts.iter().map(|p| p.size).collect();
                component_sizes.sort_unstable_by(|a, b| b.cmp(a));
                let bbox = mirror_box(
                    [
                        std::array::from_fn(|a| {
                            parts.iter().map(|p| p.bbox_min[a]).min().unwrap_or(0)
                        }),
                        std::array::from_fn(|a| {
                            parts.iter().map(|p| p.bbox_max[a]).max().unwrap_or(0)
                        }),
                    ],
                    dims,
                    mirrored,
                );
                ClassFigures {
                    id,
                    voxels,
                    foreground_percentage: voxels as f64 / self.voxels as f64,
                    intensity: channels.iter().map(|m| m.labelled[k]).collect(),
                    bbox,
                    component_sizes,
                }
            })
            .collect();
        LabelFigures {
            foreground_intensity: channels
                .iter()
                .map(|m| m.labelled[self.present.len()])
                .collect(),
            classes,
        }
    }
}

/// An inclusive box of voxel indices with the `mirrored` axes of a grid of `dims` reversed.
fn mirror_box([lo, hi]: [[usize; 3]; 2], dims: [usize; 3], mirrored: [bool; 3]) -> [[usize; 3]; 2] {
    let last = dims.map(|n| n.saturating_sub(1));
    [
        std::array::from_fn(|a| if mirrored[a] { last[a] - hi[a] } else { lo[a] }),
        std::array::from_fn(|a| if mirrored[a] { last[a] - lo[a] } else { hi[a] }),
    ]
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
            let (stats, _) = analyze_case(&case, dir.path(), &KernelDevice::Cpu).unwrap();
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
