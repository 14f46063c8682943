//! Synthetic phantom datasets: a body, an organ-like blob (class 1) and a lesion nested in it
//! (class 2), or for more classes that many organs side by side (many-class data such as
//! TotalSegmentator's), with CT- or MR-like intensities, noise and (MR) a smooth bias field.
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
use crate::geometry::Geometry;
use crate::orientation::{AxisDirection, Orientation};
use crate::rng::Rng;
use crate::task::Modality;
use crate::volume::{LabelVolume, Volume};

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
    /// Foreground classes, 2 to [`MAX_CLASSES`]: 2 is an organ with a nested lesion; more
    /// are that many organs of distinct intensities, later ones covering earlier ones.
    pub classes: usize,
    /// Sparse annotation: the labelled cases' odd axial slices (RAS z) hold the ignore
    /// label (see [`Self::ignore_label`]) instead of their classes, half of each class
    /// unannotated; the testing cases' labels stay whole, to measure against.
    pub sparse_labels: bool,
}

/// The most foreground classes a phantom has.
pub const MAX_CLASSES: usize = 255;

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
            classes: 2,
            sparse_labels: false,
        }
    }
}

impl PhantomSpec {
    /// The ignore label of sparse labels: the id after the last class.
    pub fn ignore_label(&self) -> Option<u16> {
        self.sparse_labels.then_some(self.classes as u16 + 1)
    }
}

/// Class names of the phantom's labels 1 and 2.
pub const CLASS_NAMES: [&str; 2] = ["organ", "lesion"];

/// The names of labels 1 to `classes`: [`CLASS_NAMES`] for 2, else `organ_1`, `organ_2`, ...
pub fn class_names(classes: usize) -> Vec<String> {
    if classes <= 2 {
        CLASS_NAMES[..classes]
            .iter()
            .map(|n| n.to_string())
            .collect()
    } else {
        (1..=classes).map(|c| format!("organ_{c}")).collect()
    }
}

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

    /// Whether `u` may be inside or on the soft edge (within 1.6 radii on every axis; beyond,
    /// the level passes 2.4 and the inside-ness is nil).
    fn near(&self, u: [f64; 3]) -> bool {
        (0..3).all(|a| (u[a] - self.centre[a]).abs() < 1.6 * self.radii[a])
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

/// What lies inside the body.
enum Anatomy {
    /// Class 1 with class 2 nested in it.
    OrganAndLesion { organ: Blob, lesion: Blob },
    /// Classes 1, 2, ... side by side, a later one covering an earlier one where they meet.
    Organs(Vec<Blob>),
}

impl Anatomy {
    fn random(rng: &mut Rng, classes: usize, body_radii: [f64; 3]) -> Anatomy {
        if classes <= 2 {
            let organ_centre = [0, 1, 2].map(|_| 0.5 + rng.range(-0.08, 0.08));
            let organ_radii = [0, 1, 2].map(|_| rng.range(0.16, 0.24));
            let organ = Blob::random(rng, organ_centre, organ_radii, 0.12);
            let lesion_centre =
                [0, 1, 2].map(|a| organ_centre[a] + rng.range(-0.3, 0.3) * organ_radii[a]);
            let lesion_radii = organ_radii.map(|r| r * rng.range(0.35, 0.5));
            let lesion = Blob::random(rng, lesion_centre, lesion_radii, 0.05);
            return Anatomy::OrganAndLesion { organ, lesion };
        }
        // Together about the organ-and-lesion phantom's share of the body, whatever the count.
        let radius = 0.3 / (classes as f64).cbrt();
        let organs = (0..classes)
            .map(|_| {
                let centre = body_radii.map(|r| 0.5 + rng.range(-0.55, 0.55) * r);
                let radii = [0, 1, 2].map(|_| radius * rng.range(0.7, 1.3));
                Blob::random(rng, centre, radii, 0.08)
            })
            .collect();
        Anatomy::Organs(organs)
    }
}

impl Anatomy {
    /// The noiseless intensity at `u` over the body's `body_value`, with soft edges, and the
    /// label there. `levels`: the body's, then each class's.
    fn at(&self, u: [f64; 3], body_value: f64, levels: &[f64]) -> (f64, u16) {
        match self {
            Anatomy::OrganAndLesion { organ, lesion } => {
                let (lo, ll) = (organ.level(u), lesion.level(u));
                let (so, sl) = (inside(lo), inside(ll) * inside(lo));
                let value =
                    body_value + so * (levels[1] - levels[0]) + sl * (levels[2] - levels[1]);
                let label = match (lo < 1.0, ll < 1.0) {
                    (true, true) => 2,
                    (true, false) => 1,
                    _ => 0,
                };
                (value, label)
            }
            Anatomy::Organs(organs) => {
                let (mut value, mut label) = (body_value, 0);
                for (k, organ) in organs.iter().enumerate().filter(|(_, o)| o.near(u)) {
                    let level = organ.level(u);
                    value += inside(level) * (levels[k + 1] - value);
                    if level < 1.0 {
                        label = k as u16 + 1;
                    }
                }
                (value, label)
            }
        }
    }
}

/// Intensities: the background, the body, then one per class.
fn intensity_levels(rng: &mut Rng, modality: &Modality, classes: usize) -> (f64, Vec<f64>, f64) {
    // Organ k's level: spread over a band by the golden ratio, so neighbours in the count differ.
    let spread = |k: usize| ((k as f64 + 1.0) * 0.618_034).fract();
    match modality {
        Modality::Ct if classes <= 2 => (-1000.0, vec![20.0, 80.0, 140.0], 18.0),
        Modality::Ct => {
            let organs = (0..classes).map(|k| -80.0 + 250.0 * spread(k));
            (-1000.0, std::iter::once(20.0).chain(organs).collect(), 18.0)
        }
        _ => {
            let scale = rng.range(0.6, 1.6); // MR scales differ from scanner to scanner
            let levels = if classes <= 2 {
                vec![250.0, 450.0, 700.0]
            } else {
                let organs = (0..classes).map(|k| 300.0 + 500.0 * spread(k));
                std::iter::once(250.0).chain(organs).collect()
            };
            (
                0.0,
                levels.iter().map(|l| l * scale).collect(),
                20.0 * scale,
            )
        }
    }
}

/// Draws case `index` of `spec`: the image and its labels, in the case's stored orientation.
pub fn generate_case(spec: &PhantomSpec, index: usize) -> (Volume, LabelVolume) {
    let mut rng = Rng::stream(spec.seed, index as u64);
    let jitter = |rng: &mut Rng, v: f64, by: f64| v * rng.range(1.0 - by, 1.0 + by);
    let body_radii = [0.42, 0.38, 0.45].map(|r| jitter(&mut rng, r, 0.05));
    let body = Blob::random(&mut rng, [0.5; 3], body_radii, 0.03);
    let anatomy = Anatomy::random(&mut rng, spec.classes, body_radii);
    let (background, levels, noise) = intensity_levels(&mut rng, &spec.modality, spec.classes);
    let bias = [0, 1, 2].map(|_| rng.range(-0.3, 0.3));
    let [nx, ny, nz] = spec.shape;
    let mut image = Vec::with_capacity(nx * ny * nz);
    let mut labels = Vec::with_capacity(nx * ny * nz);
    let ignore = spec.ignore_label().filter(|_| index < spec.cases);
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                let u = [
                    (i as f64 + 0.5) / nx as f64,
                    (j as f64 + 0.5) / ny as f64,
                    (k as f64 + 0.5) / nz as f64,
                ];
                let body_value = background + inside(body.level(u)) * (levels[0] - background);
                let (clean, label) = anatomy.at(u, body_value, &levels);
                let value = match spec.modality {
                    Modality::Ct => clean + noise * rng.normal(),
                    _ => {
                        let field = (0..3).map(|a| bias[a] * (u[a] - 0.5)).sum::<f64>().exp();
                        let (re, im) = (clean * field + noise * rng.normal(), noise * rng.normal());
                        (re * re + im * im).sqrt() // Rician magnitude noise
                    }
                };
                image.push(value as f32);
                labels.push(match ignore {
                    Some(id) if k % 2 == 1 => id,
                    _ => label,
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
    let names = class_names(spec.classes);
    let mut labels = serde_json::Map::new();
    labels.insert("0".into(), json!("background"));
    for (id, name) in names.iter().enumerate() {
        labels.insert((id + 1).to_string(), json!(name));
    }
    if let Some(id) = spec.ignore_label() {
        labels.insert(id.to_string(), json!("ignore"));
    }
    let anatomy = if spec.classes <= 2 {
        "an organ (1) with a nested lesion (2)".to_string()
    } else {
        format!("{} organs side by side (1-{})", spec.classes, spec.classes)
    };
    let datalist = json!({
        "name": "autoseg-phantom",
        "description": format!("synthetic phantoms, seed {}: {anatomy}", spec.seed),
        "licence": "CC0 (generated)",
        "tensorImageSize": "3D",
        "modality": { "0": spec.modality.to_string() },
        "labels": labels,
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
    let mut task = format!(
        "name: autoseg-phantom\nmodality: {}\ndatalist: dataset.json\ndataroot: .\nclass_names: [{}]\n",
        spec.modality,
        names.join(", ")
    );
    if let Some(id) = spec.ignore_label() {
        task.push_str(&format!("ignore_label: {id}\n"));
    }
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
    fn many_classes_are_organs_of_their_own_intensity() {
        let spec = PhantomSpec {
            shape: [40, 40, 40],
            modality: Modality::Ct,
            classes: 12,
            ..PhantomSpec::default()
        };
        let (image, labels) = generate_case(&spec, 0);
        let mut sums = vec![(0.0f64, 0usize); 13];
        for (&v, &l) in image.data().iter().zip(labels.data()) {
            sums[l as usize].0 += v as f64;
            sums[l as usize].1 += 1;
        }
        let present: Vec<usize> = (1..13).filter(|&c| sums[c].1 > 0).collect();
        // Later organs may cover an earlier one, rarely all of it.
        assert!(present.len() >= 10, "classes present: {present:?}");
        let means: Vec<f64> = present
            .iter()
            .map(|&c| sums[c].0 / sums[c].1 as f64)
            .collect();
        for m in &means {
            assert!((-100.0..200.0).contains(m), "an organ's mean HU {m}");
        }
        let distinct = means
            .windows(2)
            .filter(|w| (w[0] - w[1]).abs() > 10.0)
            .count();
        assert!(
            distinct + 2 >= means.len(),
            "organ means too alike: {means:?}"
        );
        assert_eq!(class_names(12)[11], "organ_12");
        assert_eq!(class_names(2), CLASS_NAMES);
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
