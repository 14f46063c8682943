//! Patch sampling: where in a case the next training patch comes from (random,
//! foreground-oversampled as nnU-Net does, or class-balanced as MONAI's
//! `RandCropByLabelClasses`), and its extraction, padded with zeros where it leaves the
//! volume, optionally through a rotation and scaling about its centre.

use crate::rng::Rng;
use serde::{Deserialize, Serialize};

use super::prepared::PreparedCase;

/// How patch centres are chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Sampling {
    /// A uniformly random position; with probability `foreground` instead centred on a
    /// random voxel of a random foreground class present in the case (nnU-Net: 0.33).
    Foreground {
        /// Probability of a foreground-centred patch.
        #[serde(default = "third")]
        foreground: f64,
    },
    /// Centred on a voxel of class `k` with probability `ratios[k]` (normalised), background
    /// included (MONAI's `RandCropByLabelClasses`); absent classes are skipped.
    ClassBalanced {
        /// One weight per class.
        ratios: Vec<f64>,
    },
}

fn third() -> f64 {
    0.33
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling::Foreground {
            foreground: third(),
        }
    }
}

/// Where each class's voxels are in a case (up to a cap per class, evenly strided), so a
/// centre can be drawn from a class without scanning the labels.
#[derive(Debug, Clone)]
pub struct ClassLocations {
    /// Per class, flat voxel indices (z fastest).
    pub voxels: Vec<Vec<u32>>,
}

/// nnU-Net keeps at most 10,000 locations per class.
const MAX_LOCATIONS: usize = 10_000;

impl ClassLocations {
    /// Indexes a case's labels.
    pub fn of(case: &PreparedCase) -> Self {
        let classes = case.header.class_voxels.len();
        let mut voxels = vec![Vec::new(); classes];
        for (k, list) in voxels.iter_mut().enumerate() {
            let stride = (case.header.class_voxels[k] as usize)
                .div_ceil(MAX_LOCATIONS)
                .max(1);
            list.extend(
                case.label()
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| **c as usize == k)
                    .step_by(stride)
                    .map(|(i, _)| i as u32),
            );
        }
        ClassLocations { voxels }
    }
}

impl Sampling {
    /// The centre of the next patch (voxel coordinates, x, y, z).
    pub fn centre(
        &self,
        case: &PreparedCase,
        locations: &ClassLocations,
        patch: [usize; 3],
        rng: &mut Rng,
    ) -> [f64; 3] {
        let dims = case.header.dims;
        let class = match self {
            Sampling::Foreground { foreground } => {
                let present: Vec<usize> = (1..locations.voxels.len())
                    .filter(|&k| !locations.voxels[k].is_empty())
                    .collect();
                (rng.uniform() < *foreground && !present.is_empty())
                    .then(|| present[rng.below(present.len())])
            }
            Sampling::ClassBalanced { ratios } => {
                let weights: Vec<f64> = (0..locations.voxels.len())
                    .map(|k| {
                        if locations.voxels[k].is_empty() {
                            0.0
                        } else {
                            ratios.get(k).copied().unwrap_or(0.0)
                        }
                    })
                    .collect();
                let total: f64 = weights.iter().sum();
                (total > 0.0).then(|| {
                    let mut pick = rng.uniform() * total;
                    weights
                        .iter()
                        .position(|&w| {
                            pick -= w;
                            pick < 0.0
                        })
                        .unwrap_or(weights.len() - 1)
                })
            }
        };
        match class {
            Some(k) => {
                let list = &locations.voxels[k];
                let i = list[rng.below(list.len())] as usize;
                let (nz, ny) = (dims[2], dims[1]);
                [
                    (i / (ny * nz)) as f64,
                    ((i / nz) % ny) as f64,
                    (i % nz) as f64,
                ]
            }
            // Anywhere the patch fits (centred when the volume is the smaller).
            None => std::array::from_fn(|a| {
                let slack = dims[a] as f64 - patch[a] as f64;
                let start = if slack > 0.0 {
                    (rng.uniform() * (slack + 1.0)).floor()
                } else {
                    slack / 2.0
                };
                start + (patch[a] as f64 - 1.0) / 2.0
            }),
        }
    }
}

/// A rotation and scaling about the patch centre: output offset `d` (voxels) samples the
/// volume at `centre + matrix · d`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PatchTransform {
    /// Row-major 3x3 matrix.
    pub matrix: [[f64; 3]; 3],
}

impl PatchTransform {
    /// Rotation by `angles` (radians, about x, y, z in turn) and isotropic zoom `scale`
    /// (> 1 shows more of the volume, so structures look smaller).
    pub fn new(angles: [f64; 3], scale: f64) -> Self {
        let (sx, cx) = angles[0].sin_cos();
        let (sy, cy) = angles[1].sin_cos();
        let (sz, cz) = angles[2].sin_cos();
        let rx = [[1.0, 0.0, 0.0], [0.0, cx, -sx], [0.0, sx, cx]];
        let ry = [[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]];
        let rz = [[cz, -sz, 0.0], [sz, cz, 0.0], [0.0, 0.0, 1.0]];
        let m = mul(rz, mul(ry, rx));
        PatchTransform {
            matrix: m.map(|row| row.map(|v| v * scale)),
        }
    }
}

fn mul(a: [[f64; 3]; 3], b: [[f64; 3]; 3]) -> [[f64; 3]; 3] {
    std::array::from_fn(|i| std::array::from_fn(|j| (0..3).map(|k| a[i][k] * b[k][j]).sum()))
}

/// A training patch: image `[c, x, y, z]` and class ids `[x, y, z]`, z fastest.
#[derive(Debug, Clone, PartialEq)]
pub struct Patch {
    /// Voxels along x, y, z.
    pub size: [usize; 3],
    /// Image channels.
    pub channels: usize,
    /// Intensities, channel-major.
    pub image: Vec<f32>,
    /// Class ids.
    pub label: Vec<u8>,
}

/// Extracts the patch of `size` centred at `centre`; zeros outside the volume. Without a
/// transform voxels are copied; with one, the image is interpolated trilinearly and the
/// labels take the nearest voxel.
pub fn extract(
    case: &PreparedCase,
    centre: [f64; 3],
    size: [usize; 3],
    transform: Option<&PatchTransform>,
) -> Patch {
    let dims = case.header.dims;
    let channels = case.header.channels;
    let n: usize = size.iter().product();
    let voxels = case.voxels();
    let (image, label) = (case.image(), case.label());
    let mut out = Patch {
        size,
        channels,
        image: vec![0.0; channels * n],
        label: vec![0; n],
    };
    let half: [f64; 3] = std::array::from_fn(|a| (size[a] as f64 - 1.0) / 2.0);
    let index = |p: [usize; 3]| (p[0] * dims[1] + p[1]) * dims[2] + p[2];
    let mut o = 0;
    for x in 0..size[0] {
        for y in 0..size[1] {
            for z in 0..size[2] {
                let d = [x as f64 - half[0], y as f64 - half[1], z as f64 - half[2]];
                let source: [f64; 3] = match transform {
                    None => std::array::from_fn(|a| (centre[a] + d[a]).round()),
                    Some(t) => std::array::from_fn(|a| {
                        centre[a] + (0..3).map(|k| t.matrix[a][k] * d[k]).sum::<f64>()
                    }),
                };
                let nearest: [f64; 3] = source.map(f64::round);
                if (0..3).all(|a| nearest[a] >= 0.0 && nearest[a] < dims[a] as f64) {
                    out.label[o] = label[index(nearest.map(|v| v as usize))];
                }
                match transform {
                    None if out_of(&nearest, dims) => {}
                    None => {
                        let i = index(nearest.map(|v| v as usize));
                        for c in 0..channels {
                            out.image[c * n + o] = image[c * voxels + i];
                        }
                    }
                    Some(_) => {
                        for c in 0..channels {
                            out.image[c * n + o] =
                                trilinear(&image[c * voxels..(c + 1) * voxels], dims, source);
                        }
                    }
                }
                o += 1;
            }
        }
    }
    out
}

fn out_of(p: &[f64; 3], dims: [usize; 3]) -> bool {
    (0..3).any(|a| p[a] < 0.0 || p[a] >= dims[a] as f64)
}

/// Trilinear interpolation of a z-fastest volume; zero outside.
fn trilinear(data: &[f32], dims: [usize; 3], p: [f64; 3]) -> f32 {
    let base = p.map(f64::floor);
    let frac: [f64; 3] = std::array::from_fn(|a| p[a] - base[a]);
    let mut sum = 0.0;
    for corner in 0..8 {
        let offset = [corner & 1, (corner >> 1) & 1, (corner >> 2) & 1];
        let q: [f64; 3] = std::array::from_fn(|a| base[a] + offset[a] as f64);
        if out_of(&q, dims) {
            continue;
        }
        let w: f64 = (0..3)
            .map(|a| {
                if offset[a] == 1 {
                    frac[a]
                } else {
                    1.0 - frac[a]
                }
            })
            .product();
        let i = (q[0] as usize * dims[1] + q[1] as usize) * dims[2] + q[2] as usize;
        sum += w * data[i] as f64;
    }
    sum as f32
}
