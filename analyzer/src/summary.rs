//! The dataset summary: MONAI's `stats_summary` keys with MONAI's definitions, then our own
//! exact per-channel figures and nnU-Net's fingerprint figures beside them.

use polars::prelude::PolarsResult;
use serde::{Deserialize, Serialize};

use crate::case::{CaseDistributions, CaseStats};
use crate::sample::{PERCENTILES, SampleStats};
use crate::sketch::{Distribution, Moments, QuantileSketch};
use crate::table::{describe, frame, pool_case_stats};

/// Summary statistics of an integer or real vector quantity (shape, spacing...), per axis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AxisStats {
    pub axes: Vec<SampleStats>,
    /// Whether the quantity is integer (MONAI then truncates max, min and percentiles).
    pub integer: bool,
}

/// Pooled figures of one channel over every voxel of every case (exact, not MONAI's means).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExactIntensity {
    pub channel: usize,
    pub voxels: f64,
    pub max: f64,
    pub mean: f64,
    pub min: f64,
    pub stdev: f64,
    /// Median and [`PERCENTILES`] from the quantile sketch, within relative error α.
    pub median: f64,
    pub percentile: [f64; 4],
}

/// One class over the cases that hold it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassSummary {
    pub id: u16,
    /// Cases in which the class appears.
    pub cases: usize,
    pub foreground_percentage: SampleStats,
    /// MONAI's pooling of channel 0's per-case figures.
    pub image_intensity: Option<SampleStats>,
    /// Components per case.
    pub components: SampleStats,
}

/// nnU-Net v2's dataset fingerprint figures, in RAS axis order (x, y, z); nnU-Net itself
/// lists axes in the reverse of the file's voxel order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub median_spacing: [f64; 3],
    pub spacing_percentile_10: [f64; 3],
    /// Largest over smallest median spacing.
    pub anisotropy: f64,
    pub median_shape_after_crop: [f64; 3],
    pub median_relative_size_after_cropping: f64,
    /// Per channel, over foreground voxels with every case weighted equally (what nnU-Net's
    /// equal-sized random sample per case estimates).
    pub foreground_intensity_properties_per_channel: Vec<ExactIntensity>,
}

/// Everything the summary holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetSummary {
    pub n_cases: usize,
    pub shape: AxisStats,
    pub channels: SampleStats,
    pub cropped_shape: AxisStats,
    pub spacing: AxisStats,
    pub sizemm: AxisStats,
    /// MONAI's pooling of channel 0's per-case figures over the crop.
    pub intensity: Option<SampleStats>,
    /// The same pooling per channel.
    pub intensity_by_channel: Vec<SampleStats>,
    pub intensity_exact: Vec<ExactIntensity>,
    pub foreground_intensity: Option<SampleStats>,
    pub foreground_intensity_by_channel: Vec<SampleStats>,
    pub foreground_intensity_exact: Vec<ExactIntensity>,
    pub labels: Vec<u16>,
    pub classes: Vec<ClassSummary>,
    pub fingerprint: Fingerprint,
}

/// nnU-Net takes 10^8 foreground samples over the whole dataset, split equally over cases.
const NNUNET_FOREGROUND_SAMPLES: f64 = 1e8;

/// Summarises the analysed cases (`cases` and `dists` in the same order).
pub fn summarize(cases: &[CaseStats], dists: &[CaseDistributions]) -> PolarsResult<DatasetSummary> {
    let per_channel_rows = |f: fn(&CaseStats, usize) -> [usize; 3]| -> Vec<[f64; 3]> {
        cases
            .iter()
            .flat_map(|c| (0..c.channels).map(move |ch| f(c, ch).map(|v| v as f64)))
            .collect()
    };
    let shape = axis_stats(&per_channel_rows(|c, _| c.shape), true)?;
    let cropped_shape = axis_stats(&per_channel_rows(|c, ch| c.cropped_shape[ch]), true)?;
    let spacing = axis_stats(&cases.iter().map(|c| c.spacing).collect::<Vec<_>>(), false)?;
    let sizemm = axis_stats(&cases.iter().map(|c| c.sizemm).collect::<Vec<_>>(), false)?;
    let channel_counts = cases.iter().map(|c| c.channels as f64).collect();
    let channels = describe(&frame(vec![("channels".into(), channel_counts)])?)?[0];
    let channel_count = cases.iter().map(|c| c.channels).max().unwrap_or(0);
    let labelled: Vec<&CaseStats> = cases.iter().filter(|c| c.label.is_some()).collect();
    let intensity_of = |c: &CaseStats, ch: usize| c.intensity.get(ch).copied();
    let foreground_of = |c: &CaseStats, ch: usize| {
        c.label
            .as_ref()
            .and_then(|l| l.foreground_intensity.get(ch).copied())
    };
    Ok(DatasetSummary {
        n_cases: cases.len(),
        shape,
        channels,
        cropped_shape,
        spacing,
        sizemm,
        intensity: pool_channel(cases, 0, intensity_of)?,
        intensity_by_channel: by_channel(cases, channel_count, intensity_of)?,
        intensity_exact: exact(dists, channel_count, |d| &d.image, |_| 1.0),
        foreground_intensity: pool_channel(cases, 0, foreground_of)?,
        foreground_intensity_by_channel: by_channel(cases, channel_count, foreground_of)?,
        foreground_intensity_exact: exact(dists, channel_count, |d| &d.foreground, |_| 1.0),
        labels: label_union(&labelled),
        classes: class_summaries(&labelled)?,
        fingerprint: fingerprint(cases, dists, channel_count)?,
    })
}

fn axis_stats(rows: &[[f64; 3]], integer: bool) -> PolarsResult<AxisStats> {
    let columns = (0..3)
        .map(|a| (format!("axis{a}"), rows.iter().map(|r| r[a]).collect()))
        .collect();
    let mut axes = describe(&frame(columns)?)?;
    if integer {
        for s in &mut axes {
            // MONAI casts the percentiles of an integer array back to its dtype (truncation).
            s.percentile = s.percentile.map(f64::trunc);
        }
    }
    Ok(AxisStats { axes, integer })
}

fn pool_channel(
    cases: &[CaseStats],
    channel: usize,
    get: impl Fn(&CaseStats, usize) -> Option<SampleStats>,
) -> PolarsResult<Option<SampleStats>> {
    let stats: Vec<SampleStats> = cases.iter().filter_map(|c| get(c, channel)).collect();
    pool_case_stats(&stats)
}

fn by_channel(
    cases: &[CaseStats],
    channels: usize,
    get: impl Fn(&CaseStats, usize) -> Option<SampleStats> + Copy,
) -> PolarsResult<Vec<SampleStats>> {
    (0..channels)
        .filter_map(|ch| pool_channel(cases, ch, get).transpose())
        .collect()
}

/// Merges one distribution per case and channel, each case's weights scaled by `scale`.
fn exact(
    dists: &[CaseDistributions],
    channels: usize,
    pick: impl Fn(&CaseDistributions) -> &Vec<Distribution>,
    scale: impl Fn(&Distribution) -> f64,
) -> Vec<ExactIntensity> {
    (0..channels)
        .map(|channel| {
            let mut moments = Moments::default();
            let mut sketch = QuantileSketch::new();
            for d in dists.iter().filter_map(|d| pick(d).get(channel)) {
                let s = scale(d);
                moments.merge_scaled(&d.moments, s);
                sketch.merge_scaled(&d.sketch, s);
            }
            ExactIntensity {
                channel,
                voxels: moments.weight,
                max: if moments.weight > 0.0 {
                    moments.max
                } else {
                    0.0
                },
                mean: moments.mean,
                min: if moments.weight > 0.0 {
                    moments.min
                } else {
                    0.0
                },
                stdev: moments.stdev(),
                median: sketch.percentile(50.0),
                percentile: PERCENTILES.map(|q| sketch.percentile(q)),
            }
        })
        .collect()
}

fn label_union(cases: &[&CaseStats]) -> Vec<u16> {
    let mut ids: Vec<u16> = cases
        .iter()
        .flat_map(|c| c.label.iter().flat_map(|l| l.classes.iter().map(|k| k.id)))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

fn class_summaries(cases: &[&CaseStats]) -> PolarsResult<Vec<ClassSummary>> {
    label_union(cases)
        .into_iter()
        .map(|id| {
            let present: Vec<_> = cases
                .iter()
                .filter_map(|c| c.label.as_ref()?.classes.iter().find(|k| k.id == id))
                .collect();
            let column = |f: &dyn Fn(&crate::case::ClassFigures) -> f64| {
                present.iter().map(|k| f(k)).collect::<Vec<f64>>()
            };
            let described = describe(&frame(vec![
                ("pct".into(), column(&|k| k.foreground_percentage)),
                (
                    "components".into(),
                    column(&|k| k.component_sizes.len() as f64),
                ),
            ])?)?;
            let channel0: Vec<SampleStats> = present
                .iter()
                .filter_map(|k| k.intensity.first().copied())
                .collect();
            Ok(ClassSummary {
                id,
                cases: present.len(),
                foreground_percentage: described[0],
                image_intensity: pool_case_stats(&channel0)?,
                components: described[1],
            })
        })
        .collect()
}

fn fingerprint(
    cases: &[CaseStats],
    dists: &[CaseDistributions],
    channels: usize,
) -> PolarsResult<Fingerprint> {
    let spacing = describe(&frame(
        (0..3)
            .map(|a| {
                (
                    format!("s{a}"),
                    cases.iter().map(|c| c.spacing[a]).collect(),
                )
            })
            .collect(),
    )?)?;
    let crops = describe(&frame(
        (0..3)
            .map(|a| {
                (
                    format!("c{a}"),
                    cases
                        .iter()
                        .map(|c| c.nonzero_crop_shape[a] as f64)
                        .collect(),
                )
            })
            .collect(),
    )?)?;
    let relative: Vec<f64> = cases
        .iter()
        .map(|c| {
            let kept: usize = c.nonzero_crop_shape.iter().product();
            kept as f64 / c.shape.iter().product::<usize>() as f64
        })
        .collect();
    let relative = describe(&frame(vec![("r".into(), relative)])?)?[0];
    let median_spacing: [f64; 3] = std::array::from_fn(|a| spacing[a].median);
    let with_foreground = dists
        .iter()
        .filter(|d| d.foreground.iter().any(|f| f.moments.weight > 0.0))
        .count();
    let per_case = NNUNET_FOREGROUND_SAMPLES / with_foreground.max(1) as f64;
    Ok(Fingerprint {
        median_spacing,
        spacing_percentile_10: std::array::from_fn(|a| spacing[a].percentile[1]),
        anisotropy: median_spacing.iter().cloned().fold(f64::MIN, f64::max)
            / median_spacing.iter().cloned().fold(f64::MAX, f64::min),
        median_shape_after_crop: std::array::from_fn(|a| crops[a].median),
        median_relative_size_after_cropping: relative.median,
        foreground_intensity_properties_per_channel: exact(
            dists,
            channels,
            |d| &d.foreground,
            |d| {
                if d.moments.weight > 0.0 {
                    per_case / d.moments.weight
                } else {
                    0.0
                }
            },
        ),
    })
}
