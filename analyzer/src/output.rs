//! The datastats files in MONAI's layout (`stats_summary`, `stats_by_cases`), so tools that read
//! MONAI's files read ours. Our own figures sit under keys MONAI does not use.

use serde_yaml::Value;

use crate::FailedCase;
use crate::case::{CaseStats, ClassFigures};
use crate::sample::SampleStats;
use crate::summary::{AxisStats, DatasetSummary, ExactIntensity};

const PERCENTILE_KEYS: [&str; 4] = [
    "percentile_00_5",
    "percentile_10_0",
    "percentile_90_0",
    "percentile_99_5",
];

/// Builds a mapping from key/value pairs, in order.
fn map<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Mapping(
        pairs
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

fn insert(value: &mut Value, key: &str, item: Value) {
    if let Value::Mapping(m) = value {
        m.insert(Value::from(key), item);
    }
}

fn number(v: f64, integer: bool) -> Value {
    if integer {
        Value::from(v as i64)
    } else {
        Value::from(v)
    }
}

/// One sample's figures, as MONAI's `SampleOperations.evaluate` lays them out.
fn sample(s: &SampleStats, integer: bool) -> Value {
    let mut m = map([
        ("max", number(s.max, integer)),
        ("mean", Value::from(s.mean)),
        ("median", Value::from(s.median)),
        ("min", number(s.min, integer)),
        ("stdev", Value::from(s.stdev)),
        (
            "percentile",
            Value::Sequence(s.percentile.iter().map(|&p| number(p, integer)).collect()),
        ),
    ]);
    for (key, p) in PERCENTILE_KEYS.iter().zip(s.percentile) {
        insert(&mut m, key, number(p, integer));
    }
    m
}

/// Adds `percentile_00_5` ... `percentile_99_5`.
fn with_percentile_keys(mut m: Value, percentile: [f64; 4]) -> Value {
    for (key, p) in PERCENTILE_KEYS.iter().zip(percentile) {
        insert(&mut m, key, Value::from(p));
    }
    m
}

/// Per-case figures pooled as MONAI's `SummaryOperations` lays them out (no `percentile` list).
fn pooled(s: &SampleStats) -> Value {
    let m = map([
        ("max", Value::from(s.max)),
        ("mean", Value::from(s.mean)),
        ("median", Value::from(s.median)),
        ("min", Value::from(s.min)),
        ("stdev", Value::from(s.stdev)),
    ]);
    with_percentile_keys(m, s.percentile)
}

fn pooled_or_zero(s: &Option<SampleStats>) -> Value {
    pooled(&s.unwrap_or(SampleStats::of(&mut [])))
}

/// A per-axis quantity: every figure a list over the axes.
fn axes(a: &AxisStats) -> Value {
    let list = |f: &dyn Fn(&SampleStats) -> Value| Value::Sequence(a.axes.iter().map(f).collect());
    let int = a.integer;
    let mut m = map([
        ("max", list(&|s| number(s.max, int))),
        ("mean", list(&|s| Value::from(s.mean))),
        ("median", list(&|s| Value::from(s.median))),
        ("min", list(&|s| number(s.min, int))),
        ("stdev", list(&|s| Value::from(s.stdev))),
        (
            "percentile",
            Value::Sequence(
                (0..4)
                    .map(|i| list(&|s| number(s.percentile[i], int)))
                    .collect(),
            ),
        ),
    ]);
    for (i, key) in PERCENTILE_KEYS.iter().enumerate() {
        insert(&mut m, key, list(&|s| number(s.percentile[i], int)));
    }
    m
}

fn exact(list: &[ExactIntensity]) -> Value {
    Value::Sequence(
        list.iter()
            .map(|e| {
                let m = map([
                    ("channel", Value::from(e.channel as u64)),
                    ("voxels", Value::from(e.voxels)),
                    ("max", Value::from(e.max)),
                    ("mean", Value::from(e.mean)),
                    ("median", Value::from(e.median)),
                    ("min", Value::from(e.min)),
                    ("stdev", Value::from(e.stdev)),
                ]);
                with_percentile_keys(m, e.percentile)
            })
            .collect(),
    )
}

fn seq<T>(items: &[T], f: impl Fn(&T) -> Value) -> Value {
    Value::Sequence(items.iter().map(f).collect())
}

fn triple<T: Copy + Into<Value>>(t: [T; 3]) -> Value {
    Value::Sequence(t.iter().map(|&v| v.into()).collect())
}

/// How the exact figures were computed, written beside them.
const EXACT_NOTE: &str = "pooled over every voxel of every case per channel; max, min, mean and \
stdev exact; median and percentiles from a log-bucket quantile sketch, within 0.1% (relative) of \
numpy's linear percentile";

/// The `stats_summary` mapping.
pub fn summary_value(s: &DatasetSummary) -> Value {
    let image_stats = map([
        ("shape", axes(&s.shape)),
        ("channels", sample(&s.channels, true)),
        ("cropped_shape", axes(&s.cropped_shape)),
        ("spacing", axes(&s.spacing)),
        ("sizemm", axes(&s.sizemm)),
        ("intensity", pooled_or_zero(&s.intensity)),
        ("intensity_by_channel", seq(&s.intensity_by_channel, pooled)),
        ("intensity_exact", exact(&s.intensity_exact)),
    ]);
    let foreground = map([
        ("intensity", pooled_or_zero(&s.foreground_intensity)),
        (
            "intensity_by_channel",
            seq(&s.foreground_intensity_by_channel, pooled),
        ),
        ("intensity_exact", exact(&s.foreground_intensity_exact)),
    ]);
    let classes = seq(&s.classes, |k| {
        map([
            (
                "foreground_percentage",
                sample(&k.foreground_percentage, false),
            ),
            ("image_intensity", pooled_or_zero(&k.image_intensity)),
            ("label_id", Value::from(k.id)),
            ("n_cases", Value::from(k.cases as u64)),
            ("n_components", sample(&k.components, false)),
        ])
    });
    let label_stats = map([
        ("labels", seq(&s.labels, |&l| Value::from(l))),
        ("image_intensity", pooled_or_zero(&s.foreground_intensity)),
        ("label", classes),
    ]);
    let f = &s.fingerprint;
    let fingerprint = map([
        (
            "axis_order",
            Value::from("RAS x, y, z (nnU-Net lists the file's axes reversed)"),
        ),
        ("median_spacing", triple(f.median_spacing)),
        ("spacing_percentile_10", triple(f.spacing_percentile_10)),
        ("anisotropy", Value::from(f.anisotropy)),
        ("median_shape_after_crop", triple(f.median_shape_after_crop)),
        (
            "median_relative_size_after_cropping",
            Value::from(f.median_relative_size_after_cropping),
        ),
        (
            "foreground_intensity_properties_per_channel",
            exact(&f.foreground_intensity_properties_per_channel),
        ),
    ]);
    map([
        ("image_stats", image_stats),
        ("image_foreground_stats", foreground),
        ("label_stats", label_stats),
        ("n_cases", Value::from(s.n_cases as u64)),
        ("intensity_exact_method", Value::from(EXACT_NOTE)),
        ("nnunet_fingerprint", fingerprint),
    ])
}

fn paths(list: &[String]) -> Value {
    match list {
        [one] => Value::from(one.as_str()),
        many => seq(many, |p| Value::from(p.as_str())),
    }
}

fn class_value(k: &ClassFigures) -> Value {
    map([
        ("image_intensity", seq(&k.intensity, |s| sample(s, false))),
        (
            "foreground_percentage",
            Value::from(k.foreground_percentage),
        ),
        ("label_id", Value::from(k.id)),
        ("voxels", Value::from(k.voxels)),
        (
            "bbox",
            map([
                ("min", triple(k.bbox[0].map(|v| v as u64))),
                ("max", triple(k.bbox[1].map(|v| v as u64))),
            ]),
        ),
        ("n_components", Value::from(k.component_sizes.len() as u64)),
        (
            "component_sizes",
            seq(&k.component_sizes, |&v| Value::from(v)),
        ),
    ])
}

/// One `stats_by_cases` entry.
pub fn case_value(c: &CaseStats) -> Value {
    let shape = |s: [usize; 3]| triple(s.map(|v| v as u64));
    let image_stats = map([
        ("shape", seq(&vec![c.shape; c.channels], |&s| shape(s))),
        ("channels", Value::from(c.channels as u64)),
        ("cropped_shape", seq(&c.cropped_shape, |&s| shape(s))),
        ("spacing", triple(c.spacing)),
        ("sizemm", triple(c.sizemm)),
        ("intensity", seq(&c.intensity, |s| sample(s, false))),
    ]);
    let mut v = map([
        ("case_id", Value::from(c.id.as_str())),
        ("image_filepath", paths(&c.image_paths)),
        (
            "label_filepath",
            c.label_path.as_deref().map_or(Value::Null, Value::from),
        ),
        ("image_stats", image_stats),
    ]);
    if let Some(label) = &c.label {
        let fg = seq(&label.foreground_intensity, |s| sample(s, false));
        insert(
            &mut v,
            "image_foreground_stats",
            map([("intensity", fg.clone())]),
        );
        let label_stats = map([
            ("labels", seq(&label.classes, |k| Value::from(k.id))),
            ("image_intensity", fg),
            ("label", seq(&label.classes, class_value)),
        ]);
        insert(&mut v, "label_stats", label_stats);
    }
    insert(
        &mut v,
        "nnunet",
        map([("shape_after_crop", shape(c.nonzero_crop_shape))]),
    );
    v
}

fn failed_value(failed: &[FailedCase]) -> Value {
    seq(failed, |f| {
        map([
            ("case_id", Value::from(f.case_id.as_str())),
            ("locator", Value::from(f.locator.as_str())),
            ("files", seq(&f.files, |p| Value::from(p.as_str()))),
            ("reason", Value::from(f.reason.as_str())),
        ])
    })
}

/// The two documents: `datastats.yaml` (summary, empty `stats_by_cases`) and
/// `datastats_by_case.yaml` (summary and every case), each with `failed_cases`.
pub fn documents(
    summary: &DatasetSummary,
    cases: &[CaseStats],
    failed: &[FailedCase],
) -> (Value, Value) {
    let summary = summary_value(summary);
    let doc = |by_case: Value| {
        map([
            ("stats_summary", summary.clone()),
            ("stats_by_cases", by_case),
            ("failed_cases", failed_value(failed)),
        ])
    };
    (
        doc(Value::Sequence(Vec::new())),
        doc(seq(cases, case_value)),
    )
}
