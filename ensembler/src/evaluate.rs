//! Evaluation of label maps against references: per case and class, Dice, IoU, HD95, the
//! symmetric average surface distance, normalised surface Dice and volumes, with MONAI's
//! definitions; then a summary per class, as MONAI's `MetricsSaver` and nnU-Net's
//! `summary.json` give it.
//!
//! NaN rules (stated in the summary too): a class absent from both prediction and
//! reference has no Dice, IoU or distances (NaN: nnU-Net leaves such cases out rather than
//! reward an empty prediction); a class in only one of them has Dice, IoU and surface Dice
//! 0 and infinite distances. Summaries are over the finite values, with the NaN and
//! infinite ones counted beside them. Where both hold the class, every figure equals
//! MONAI's (`tests/evaluate_cli.rs`, fixture from `fixtures/evaluate/make.sh`).

use std::path::{Path, PathBuf};

use autoseg_datasets::LabelVolume;
use autoseg_datasets::regions::RegionPlan;
use autoseg_kernels::KernelDevice;
use serde::{Deserialize, Serialize};

/// Why a case could not be evaluated; names the files.
#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    /// A label map could not be read (boxed: the dataset error is large).
    #[error(transparent)]
    Read(Box<autoseg_datasets::DatasetError>),
    /// Prediction and reference do not lie on one grid.
    #[error("{pred} does not lie on the grid of {reference}: {reason}")]
    Geometry {
        /// The prediction.
        pred: PathBuf,
        /// The reference.
        reference: PathBuf,
        /// How they differ.
        reason: String,
    },
}

impl From<autoseg_datasets::DatasetError> for EvaluateError {
    fn from(error: autoseg_datasets::DatasetError) -> Self {
        EvaluateError::Read(Box::new(error))
    }
}

/// One class of one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// The case.
    pub case: String,
    /// The label id, or for a region its number (1 for the first).
    pub label: u16,
    /// The region's name, when regions are scored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// 2TP / (2TP + FP + FN).
    pub dice: f64,
    /// TP / (TP + FP + FN).
    pub iou: f64,
    /// 95th-percentile Hausdorff distance, mm.
    pub hd95: f64,
    /// Average surface distance over both surfaces, mm.
    pub asd: f64,
    /// Share of both surfaces within the tolerance of the other.
    pub nsd: f64,
    /// Predicted volume, ml.
    pub volume_pred_ml: f64,
    /// Reference volume, ml.
    pub volume_ref_ml: f64,
    /// Predicted minus reference volume, ml.
    pub volume_difference_ml: f64,
}

/// The metric names, in column order.
pub const METRICS: [&str; 8] = [
    "dice",
    "iou",
    "hd95",
    "asd",
    "nsd",
    "volume_pred_ml",
    "volume_ref_ml",
    "volume_difference_ml",
];

impl ClassMetrics {
    /// The values in [`METRICS`] order.
    pub fn values(&self) -> [f64; 8] {
        [
            self.dice,
            self.iou,
            self.hd95,
            self.asd,
            self.nsd,
            self.volume_pred_ml,
            self.volume_ref_ml,
            self.volume_difference_ml,
        ]
    }
}

/// Reads a prediction and its reference, the prediction brought onto the reference's grid
/// (it may be stored in another axis order, as long as it lies on the same grid).
pub fn read_pair(
    pred_path: &Path,
    ref_path: &Path,
) -> Result<(LabelVolume, LabelVolume), EvaluateError> {
    let reference = LabelVolume::read(ref_path)?;
    let pred = LabelVolume::read(pred_path)?
        .into_onto(reference.geometry())
        .map_err(|m| EvaluateError::Geometry {
            pred: pred_path.to_path_buf(),
            reference: ref_path.to_path_buf(),
            reason: m.to_string(),
        })?;
    Ok((pred, reference))
}

/// Which labels a pair is measured on, and how.
#[derive(Debug, Clone, Default)]
pub struct Scoring {
    /// Label ids to measure (the reference's foreground ids when empty).
    pub labels: Vec<u16>,
    /// Tolerance of the normalised surface Dice, in mm.
    pub nsd_tolerance_mm: f64,
    /// The reference's label of unannotated voxels (nnU-Net's `ignore`): no metric sees
    /// what is predicted there.
    pub ignore: Option<u16>,
    /// Regions to measure instead of labels: each the union of its label ids, in the
    /// prediction and in the reference alike (nnU-Net's region evaluation).
    pub regions: Option<RegionPlan>,
    /// Where the confusion matrices and surface distances are computed.
    pub device: KernelDevice,
}

/// What one row measures: a label id, or a region's label ids.
struct Measured<'a> {
    label: u16,
    region: Option<&'a str>,
    ids: &'a [u16],
}

/// Measures a pair as `scoring` says.
pub fn evaluate_labels(
    case: &str,
    pred: &LabelVolume,
    reference: &LabelVolume,
    scoring: &Scoring,
) -> Vec<ClassMetrics> {
    if let Some(plan) = &scoring.regions {
        let measured: Vec<Measured> = (plan.regions.iter().enumerate())
            .map(|(i, r)| Measured {
                label: i as u16 + 1,
                region: Some(&r.name),
                ids: &r.labels,
            })
            .collect();
        return measure(case, pred, reference, &measured, scoring);
    }
    let labels = if scoring.labels.is_empty() {
        let mut ids = foreground_ids(reference);
        ids.retain(|&id| Some(id) != scoring.ignore);
        ids
    } else {
        scoring.labels.clone()
    };
    evaluate(case, pred, reference, &labels, scoring)
}

/// [`read_pair`], then [`evaluate_labels`].
pub fn evaluate_files(
    case: &str,
    pred_path: &Path,
    ref_path: &Path,
    scoring: &Scoring,
) -> Result<Vec<ClassMetrics>, EvaluateError> {
    let (pred, reference) = read_pair(pred_path, ref_path)?;
    Ok(evaluate_labels(case, &pred, &reference, scoring))
}

/// The foreground ids present in a label map.
fn foreground_ids(labels: &LabelVolume) -> Vec<u16> {
    let mut present = vec![false; 1 << 16];
    labels
        .data()
        .iter()
        .for_each(|&v| present[v as usize] = true);
    (1..=u16::MAX).filter(|&v| present[v as usize]).collect()
}

/// Measures `labels` of a prediction against a reference on the same grid (the other
/// fields of `scoring` apply).
pub fn evaluate(
    case: &str,
    pred: &LabelVolume,
    reference: &LabelVolume,
    labels: &[u16],
    scoring: &Scoring,
) -> Vec<ClassMetrics> {
    let measured: Vec<Measured> = (labels.iter())
        .map(|label| Measured {
            label: *label,
            region: None,
            ids: std::slice::from_ref(label),
        })
        .collect();
    measure(case, pred, reference, &measured, scoring)
}

/// Measures each of `measured` (a label or a region) of a prediction against a reference.
fn measure(
    case: &str,
    pred: &LabelVolume,
    reference: &LabelVolume,
    measured: &[Measured],
    scoring: &Scoring,
) -> Vec<ClassMetrics> {
    let spacing = reference.spacing();
    let dims = reference.dims();
    let voxel_ml = spacing.iter().product::<f64>() / 1000.0;
    let nsd_tolerance_mm = scoring.nsd_tolerance_mm;
    let annotated = |r: u16| Some(r) != scoring.ignore;
    measured
        .iter()
        .map(|m| {
            let p: Vec<bool> = (pred.data().iter().zip(reference.data()))
                .map(|(v, &r)| m.ids.contains(v) && annotated(r))
                .collect();
            let r: Vec<bool> = reference.data().iter().map(|v| m.ids.contains(v)).collect();
            let binary = |m: &[bool]| m.iter().map(|&b| b as u16).collect::<Vec<_>>();
            let confusion = scoring.device.confusion_matrix(&binary(&p), &binary(&r), 2);
            let count = |m: &[bool]| m.iter().filter(|&&b| b).count();
            let (np, nr) = (count(&p), count(&r));
            let (hd95, asd, nsd) = match (np, nr) {
                (0, 0) => (f64::NAN, f64::NAN, f64::NAN),
                (0, _) | (_, 0) => (f64::INFINITY, f64::INFINITY, 0.0),
                _ => {
                    let surfaces = scoring.device.surface_distances(&p, &r, dims, spacing);
                    (
                        surfaces.hausdorff(Some(95.0)),
                        surfaces.average(true),
                        surfaces.surface_dice(nsd_tolerance_mm),
                    )
                }
            };
            let (vp, vr) = (np as f64 * voxel_ml, nr as f64 * voxel_ml);
            ClassMetrics {
                case: case.to_string(),
                label: m.label,
                region: m.region.map(str::to_string),
                dice: confusion.dice(1),
                iou: confusion.iou(1),
                hd95,
                asd,
                nsd,
                volume_pred_ml: vp,
                volume_ref_ml: vr,
                volume_difference_ml: vp - vr,
            }
        })
        .collect()
}

/// Summary statistics of one metric of one class over the cases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    /// Cases with a finite value.
    pub n: usize,
    /// Cases left out as NaN (class in neither map).
    pub nan: usize,
    /// Cases left out as infinite (class in one map only).
    pub infinite: usize,
    /// Mean of the finite values.
    pub mean: f64,
    /// Median.
    pub median: f64,
    /// Standard deviation (population, numpy's default).
    pub stdev: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
    /// 5th, 25th, 75th and 95th percentiles (linear, numpy's default).
    pub percentile_05_25_75_95: [f64; 4],
}

impl MetricSummary {
    /// Summarises values, leaving NaN and infinite ones out (and counting them).
    pub fn of(values: &[f64]) -> MetricSummary {
        let mut finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        finite.sort_by(f64::total_cmp);
        let n = finite.len();
        let mean = finite.iter().sum::<f64>() / n as f64;
        let variance = finite.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
        let q = |p: f64| percentile(&finite, p);
        MetricSummary {
            n,
            nan: values.iter().filter(|v| v.is_nan()).count(),
            infinite: values.iter().filter(|v| v.is_infinite()).count(),
            mean,
            median: q(50.0),
            stdev: variance.sqrt(),
            min: finite.first().copied().unwrap_or(f64::NAN),
            max: finite.last().copied().unwrap_or(f64::NAN),
            percentile_05_25_75_95: [q(5.0), q(25.0), q(75.0), q(95.0)],
        }
    }
}

/// numpy's linear percentile of sorted values (NaN when empty).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = p / 100.0 * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    let (a, b, t) = (sorted[lo], sorted[hi], rank - lo as f64);
    // numpy's _lerp: from the nearer end, so the result is exact at both ends.
    if t >= 0.5 {
        b - (b - a) * (1.0 - t)
    } else {
        a + (b - a) * t
    }
}

/// What `evaluate` writes as `summary.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// How NaN and infinite values arise and are treated.
    pub rules: String,
    /// Cases evaluated.
    pub cases: usize,
    /// The surface-Dice tolerance, mm.
    pub nsd_tolerance_mm: f64,
    /// Per label id, per metric.
    pub classes: Vec<ClassSummary>,
    /// nnU-Net's `foreground_mean`: the mean over classes of each class's mean Dice.
    pub foreground_mean_dice: f64,
}

/// One class's summaries, a metric each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassSummary {
    /// The label id, or for a region its number (1 for the first).
    pub label: u16,
    /// The region's name, when regions are scored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Dice.
    pub dice: MetricSummary,
    /// IoU.
    pub iou: MetricSummary,
    /// HD95, mm.
    pub hd95: MetricSummary,
    /// Symmetric average surface distance, mm.
    pub asd: MetricSummary,
    /// Normalised surface Dice.
    pub nsd: MetricSummary,
    /// Predicted volume, ml.
    pub volume_pred_ml: MetricSummary,
    /// Reference volume, ml.
    pub volume_ref_ml: MetricSummary,
    /// Predicted minus reference volume, ml.
    pub volume_difference_ml: MetricSummary,
}

/// The rules, in words, for the summary file.
pub const RULES: &str = "a class in neither prediction nor reference: Dice, IoU, HD95, ASD and \
    NSD are NaN and the case is left out of that class's summary (nnU-Net: an empty \
    prediction is not rewarded); a class in one only: Dice, IoU and NSD 0 (a false positive \
    counts against the prediction, as in nnU-Net, where MONAI gives NaN), HD95 and ASD \
    infinite, left out of the distance summaries and counted under `infinite`";

/// Summarises the rows of every case.
pub fn summarize(rows: &[ClassMetrics], cases: usize, nsd_tolerance_mm: f64) -> Summary {
    let mut labels: Vec<u16> = rows.iter().map(|r| r.label).collect();
    labels.sort_unstable();
    labels.dedup();
    let classes: Vec<ClassSummary> = labels
        .iter()
        .map(|&label| {
            let rows_of = || rows.iter().filter(|r| r.label == label);
            let of_class: Vec<[f64; 8]> = rows_of().map(ClassMetrics::values).collect();
            let region = rows_of().find_map(|r| r.region.clone());
            let metric =
                |m: usize| MetricSummary::of(&of_class.iter().map(|v| v[m]).collect::<Vec<_>>());
            ClassSummary {
                label,
                region,
                dice: metric(0),
                iou: metric(1),
                hd95: metric(2),
                asd: metric(3),
                nsd: metric(4),
                volume_pred_ml: metric(5),
                volume_ref_ml: metric(6),
                volume_difference_ml: metric(7),
            }
        })
        .collect();
    let class_means: Vec<f64> = classes.iter().map(|c| c.dice.mean).collect();
    Summary {
        rules: RULES.into(),
        cases,
        nsd_tolerance_mm,
        foreground_mean_dice: class_means.iter().sum::<f64>() / class_means.len() as f64,
        classes,
    }
}

/// The per-case table as CSV: `case,label,` (or `case,region,` for regions) then
/// [`METRICS`].
pub fn csv(rows: &[ClassMetrics]) -> String {
    let regions = rows.iter().any(|r| r.region.is_some());
    let key = if regions { "region" } else { "label" };
    let mut out = format!("case,{key},{}\n", METRICS.join(","));
    for r in rows {
        let values: Vec<String> = r.values().iter().map(|v| v.to_string()).collect();
        let what = r.region.clone().unwrap_or_else(|| r.label.to_string());
        out.push_str(&format!("{},{what},{}\n", r.case, values.join(",")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use autoseg_datasets::{Affine, Geometry};

    fn volume(dims: [usize; 3], fill: impl Fn(usize, usize, usize) -> u16) -> LabelVolume {
        let mut data = Vec::new();
        for z in 0..dims[2] {
            for y in 0..dims[1] {
                for x in 0..dims[0] {
                    data.push(fill(x, y, z));
                }
            }
        }
        let affine = Affine::from_spacing_origin([2.0, 1.0, 1.0], [0.0; 3]);
        LabelVolume::new(Geometry { dims, affine }, 1, data)
    }

    #[test]
    fn unannotated_voxels_change_no_metric() {
        // Reference: the cube of label 1 with its upper half (z >= 9) unannotated (7).
        let inside = |x: usize, y: usize, z: usize| {
            (5..13).contains(&x) && (5..13).contains(&y) && (5..13).contains(&z)
        };
        let reference = volume([20; 3], |x, y, z| match (z >= 9, inside(x, y, z)) {
            (true, _) => 7,
            (false, cube) => cube as u16,
        });
        let scoring = Scoring {
            nsd_tolerance_mm: 1.0,
            ignore: Some(7),
            ..Scoring::default()
        };
        // Two predictions that agree on the annotated half only.
        let right = volume([20; 3], |x, y, z| inside(x, y, z) as u16);
        let wild = volume([20; 3], |x, y, z| (z >= 9 || inside(x, y, z)) as u16);
        let a = evaluate_labels("a", &right, &reference, &scoring);
        let b = evaluate_labels("b", &wild, &reference, &scoring);
        assert_eq!(a.len(), 1, "the ignore label is no class: {a:?}");
        assert_eq!((a[0].dice, b[0].dice), (1.0, 1.0));
        assert_eq!(a[0].volume_pred_ml, b[0].volume_pred_ml);
        assert_eq!(a[0].hd95, b[0].hd95);
    }

    #[test]
    fn the_shifted_cube_gives_monais_figures_and_absent_classes_follow_the_rules() {
        // MONAI's golden case (fixtures/metrics): an 8^3 cube shifted 2 voxels on x.
        let cube = |lo: usize| {
            move |x: usize, y: usize, z: usize| {
                ((lo..lo + 8).contains(&x) && (5..13).contains(&y) && (5..13).contains(&z)) as u16
            }
        };
        let reference = volume([20; 3], cube(5));
        let pred = volume([20; 3], cube(7));
        let scoring = Scoring {
            nsd_tolerance_mm: 1.0,
            ..Scoring::default()
        };
        let rows = evaluate("c", &pred, &reference, &[1, 2], &scoring);
        assert_eq!(rows[0].dice, 0.75);
        assert_eq!(rows[0].hd95, 4.0); // 2 voxels of 2 mm
        assert_eq!(rows[0].volume_difference_ml, 0.0);
        assert!((rows[0].volume_ref_ml - 512.0 * 2.0 / 1000.0).abs() < 1e-12);
        assert!(rows[1].dice.is_nan() && rows[1].hd95.is_nan());
        let empty = volume([20; 3], |_, _, _| 0);
        let missed = evaluate("d", &empty, &reference, &[1], &scoring);
        assert_eq!(missed[0].dice, 0.0);
        assert!(missed[0].hd95.is_infinite());
        let summary = summarize(&[rows, missed].concat(), 2, 1.0);
        let class1 = &summary.classes[0];
        assert_eq!(class1.dice.n, 2);
        assert_eq!(class1.dice.mean, 0.375);
        assert_eq!(class1.hd95.infinite, 1);
        assert_eq!(summary.classes[1].dice.nan, 1);
    }

    #[test]
    fn percentiles_are_numpys() {
        let s = MetricSummary::of(&[1.0, 2.0, 3.0, 4.0, f64::NAN]);
        assert_eq!(s.median, 2.5);
        // numpy: [1.15, 1.75, 3.25, 3.8499999999999996], to the last bit.
        assert_eq!(
            s.percentile_05_25_75_95,
            [1.15, 1.75, 3.25, 3.8499999999999996]
        );
        assert!((s.stdev - 1.25f64.sqrt()).abs() < 1e-12);
        assert_eq!(s.nan, 1);
    }
}
