//! Synthetic phantom datasets: a body, an organ-like blob (class 1) and a lesion nested in it
//! (class 2), with CT- or MR-like intensities, noise and (MR) a smooth bias field.
//!
//! Deterministic by seed: case `i` draws from its own stream of the seed, so a dataset is the
//! same whatever the thread count. Cases are drawn in RAS, then (optionally) stored in a
//! random axis orientation, so reorienting to RAS gives back exactly the drawn arrays.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde_json::json;

use crate::affine::Affine;
use crate::error::DatasetError;
use crate::fsutil::write_bytes_atomic;
use crate::orientation::{AxisDirection, Orientation};
use crate::rng::Rng;
use crate::task::Modality;
use crate::volume::{Geometry, LabelVolume, Volume};

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct PhantomSpec {
    /// Labelled cases (the datalist's `training`).
    pub cases: usize,
    /// Extra cases listed under `testing` (their labels are written beside them).
    pub test_cases: usize,
    /// Voxels along x, y, z (in RAS).
    pub shape: [usize; 3],
    /// Voxel size in mm along x, y, z; e.g. `[1, 1, 3]` for thick slices.
    pub spacing: [f64; 3],
    /// CT (Hounsfield-like) or MRI (bias field, Rician noise) intensities.
    pub modality: Modality,
    /// Store each case in a random axis orientation (LPS, PIR, ...).
    pub random_orientation: bool,
    /// The seed.
    pub seed: u64,
}

impl Default for PhantomSpec {
    fn default() -> Self {
        PhantomSpec {
            cases: 12,
            test_cases: 2,
            shape: [32, 32, 32],
            spacing: [1.0, 1.0, 1.0],
            modality: Modality::Mri,
            random_orientation: false,
            seed: 0,
        }
    }
}

/// Class names of the phantom's labels 1 and 2.
pub const CLASS_NAMES: [&str; 2] = ["organ", "lesion"];

/// A phantom dataset written to disk.
#[derive(Debug, Clone)]
pub struct PhantomDataset {
    /// Its folder.
    pub root: PathBuf,
    /// `dataset.json`: the datalist.
    pub datalist: PathBuf,
    /// `task.yaml`: the task config pointing at it.
    pub task: PathBuf,
}

/// An ellipsoid bent by a low-frequency ripple: inside where `level(u) < 1`.
struct Blob {
    centre: [f64; 3],
    radii: [f64; 3],
    ripple: f64,
    frequency: [f64; 3],
    phase: f64,
}

impl Blob {
    fn random(rng: &mut Rng, centre: [f64; 3], radii: [f64; 3], ripple: f64) -> Blob {
        let frequency = [0, 1, 2].map(|_| rng.range(1.5, 3.5));
        Blob {
            centre,
            radii,
            ripple,
            frequency,
            phase: rng.range(0.0, std::f64::consts::TAU),
        }
    }

    fn level(&self, u: [f64; 3]) -> f64 {
        let mut r2 = 0.0;
        let mut wave = self.phase;
        for a in 0..3 {
            let d = (u[a] - self.centre[a]) / self.radii[a];
            r2 += d * d;
            wave += std::f64::consts::TAU * self.frequency[a] * u[a];
        }
        r2 + self.ripple * wave.sin()
    }
}

/// A soft inside-ness in [0, 1] for partial-volume edges.
fn inside(level: f64) -> f64 {
    1.0 / (1.0 + ((level - 1.0) * 14.0).exp())
}

/// Draws case `index` of `spec`: the image and its labels, in the case's stored orientation.
pub fn generate_case(spec: &PhantomSpec, index: usize) -> (Volume, LabelVolume) {
    let mut rng = Rng::stream(spec.seed, index as u64);
    let jitter = |rng: &mut Rng, v: f64, by: f64| v * rng.range(1.0 - by, 1.0 + by);
    let body_radii = [0.42, 0.38, 0.45].map(|r| jitter(&mut rng, r, 0.05));
    let body = Blob::random(&mut rng, [0.5; 3], body_radii, 0.03);
    let organ_centre = [0, 1, 2].map(|_| 0.5 + rng.range(-0.08, 0.08));
    let organ_radii = [0, 1, 2].map(|_| rng.range(0.16, 0.24));
    let organ = Blob::random(&mut rng, organ_centre, organ_radii, 0.12);
    let lesion_centre = [0, 1, 2].map(|a| organ_centre[a] + rng.range(-0.3, 0.3) * organ_radii[a]);
    let lesion_radii = organ_radii.map(|r| r * rng.range(0.35, 0.5));
    let lesion = Blob::random(&mut rng, lesion_centre, lesion_radii, 0.05);

    let (background, levels, noise) = match spec.modality {
        Modality::Ct => (-1000.0, [20.0, 80.0, 140.0], 18.0),
        _ => {
            let scale = rng.range(0.6, 1.6); // MR scales differ from scanner to scanner
            (
                0.0,
                [250.0 * scale, 450.0 * scale, 700.0 * scale],
                20.0 * scale,
            )
        }
    };
    let bias = [0, 1, 2].map(|_| rng.range(-0.3, 0.3));
    let [nx, ny, nz] = spec.shape;
    let mut image = Vec::with_capacity(nx * ny * nz);
    let mut labels = Vec::with_capacity(nx * ny * nz);
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                let u = [
                    (i as f64 + 0.5) / nx as f64,
                    (j as f64 + 0.5) / ny as f64,
                    (k as f64 + 0.5) / nz as f64,
                ];
                let (lb, lo, ll) = (body.level(u), organ.level(u), lesion.level(u));
                let (sb, so, sl) = (inside(lb), inside(lo), inside(ll) * inside(lo));
                let clean = background
                    + sb * (levels[0] - background)
                    + so * (levels[1] - levels[0])
                    + sl * (levels[2] - levels[1]);
                let value = match spec.modality {
                    Modality::Ct => clean + noise * rng.normal(),
                    _ => {
                        let field = (0..3).map(|a| bias[a] * (u[a] - 0.5)).sum::<f64>().exp();
                        let (re, im) = (clean * field + noise * rng.normal(), noise * rng.normal());
                        (re * re + im * im).sqrt() // Rician magnitude noise
                    }
                };
                image.push(value as f32);
                labels.push(if lo < 1.0 {
                    if ll < 1.0 { 2u16 } else { 1 }
                } else {
                    0
                });
            }
        }
    }
    let origin = [0, 1, 2].map(|a| -((spec.shape[a] - 1) as f64) / 2.0 * spec.spacing[a]);
    let geometry = Geometry {
        dims: spec.shape,
        affine: Affine::from_spacing_origin(spec.spacing, origin),
    };
    let volume = Volume::new(geometry, 1, image);
    let labels = volume.with_data(1, labels);
    if !spec.random_orientation {
        return (volume, labels);
    }
    let orientation = random_orientation(&mut rng);
    (volume.reorient(orientation), labels.reorient(orientation))
}

fn random_orientation(rng: &mut Rng) -> Orientation {
    let mut axes = [0usize, 1, 2];
    rng.shuffle(&mut axes);
    Orientation(axes.map(|world_axis| AxisDirection {
        world_axis,
        positive: rng.uniform() < 0.5,
    }))
}

/// Writes the phantom dataset into `dir`: `imagesTr/`, `labelsTr/`, `imagesTs/`,
/// `labelsTs/`, `dataset.json` and `task.yaml`. Cases are written in parallel.
pub fn write_dataset(spec: &PhantomSpec, dir: &Path) -> Result<PhantomDataset, DatasetError> {
    let total = spec.cases + spec.test_cases;
    let entries: Vec<serde_json::Value> = (0..total)
        .into_par_iter()
        .map(|i| {
            let (image, labels) = generate_case(spec, i);
            let (images, labels_dir) = if i < spec.cases { ("imagesTr", "labelsTr") } else { ("imagesTs", "labelsTs") };
            let name = format!("phantom_{i:03}.nii.gz");
            image.write(&dir.join(images).join(&name))?;
            labels.write(&dir.join(labels_dir).join(&name))?;
            Ok(json!({ "image": format!("./{images}/{name}"), "label": format!("./{labels_dir}/{name}") }))
        })
        .collect::<Result<_, DatasetError>>()?;
    let (training, testing) = entries.split_at(spec.cases);
    let datalist = json!({
        "name": "autoseg-phantom",
        "description": format!("synthetic phantoms, seed {}: an organ (1) with a nested lesion (2)", spec.seed),
        "licence": "CC0 (generated)",
        "tensorImageSize": "3D",
        "modality": { "0": spec.modality.to_string() },
        "labels": { "0": "background", "1": CLASS_NAMES[0], "2": CLASS_NAMES[1] },
        "numTraining": spec.cases,
        "numTest": spec.test_cases,
        "training": training,
        "testing": testing,
    });
    let datalist_path = dir.join("dataset.json");
    let text = serde_json::to_string_pretty(&datalist).expect("JSON of plain values");
    write_bytes_atomic(&datalist_path, text.as_bytes()).map_err(|source| DatasetError::Io {
        path: datalist_path.clone(),
        source,
    })?;
    let task_path = dir.join("task.yaml");
    let task = format!(
        "name: autoseg-phantom\nmodality: {}\ndatalist: dataset.json\ndataroot: .\nclass_names: [{}]\n",
        spec.modality,
        CLASS_NAMES.join(", ")
    );
    write_bytes_atomic(&task_path, task.as_bytes()).map_err(|source| DatasetError::Io {
        path: task_path.clone(),
        source,
    })?;
    Ok(PhantomDataset {
        root: dir.to_path_buf(),
        datalist: datalist_path,
        task: task_path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_case_and_classes_are_nested() {
        let spec = PhantomSpec {
            shape: [24, 20, 16],
            ..PhantomSpec::default()
        };
        let (a, la) = generate_case(&spec, 3);
        let (b, lb) = generate_case(&spec, 3);
        assert_eq!(a.data(), b.data());
        assert_eq!(la.data(), lb.data());
        let (c, _) = generate_case(&spec, 4);
        assert_ne!(a.data(), c.data());
        let count = |id| la.data().iter().filter(|&&v| v == id).count();
        let n = la.data().len();
        // The organ is a few percent of the volume, the lesion a fraction of that.
        assert!(
            count(1) > n / 100 && count(2) > n / 1000 && count(2) < count(1),
            "{} {}",
            count(1),
            count(2)
        );
    }

    #[test]
    fn random_orientation_stores_the_same_anatomy() {
        let plain = PhantomSpec {
            shape: [12, 10, 8],
            ..PhantomSpec::default()
        };
        let turned = PhantomSpec {
            random_orientation: true,
            ..plain.clone()
        };
        let (a, la) = generate_case(&plain, 1);
        let (b, lb) = generate_case(&turned, 1);
        assert_ne!(
            b.geometry().orientation(),
            Orientation::RAS,
            "case 1 should be turned for this seed"
        );
        assert_eq!(b.to_ras().data(), a.data());
        assert_eq!(lb.to_ras().data(), la.data());
        assert!(b.to_ras().affine().max_abs_diff(a.affine()) < 1e-9);
    }
}
