//! `autoseg analyze` on the four shared datasets against MONAI 1.6.1's DataAnalyzer output and
//! nnU-Net v2.8.1's fingerprint (`../shared/data/reference-outputs`): every value MONAI writes
//! must be in our files, integers equal and reals within 1e-4 relative.

mod common;

use std::path::{Path, PathBuf};

use serde_yaml::Value;

/// Runs `autoseg analyze` on a shared dataset; returns (summary, by-case) documents.
fn analyze(dataset: &str, work: &Path) -> (Value, Value) {
    let datalist = common::shared_data().join(dataset).join("dataset.json");
    let run = common::autoseg(&[
        "analyze",
        "--datalist",
        datalist.to_str().unwrap(),
        "--work-dir",
        work.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", common::text(&run));
    (
        read_yaml(&work.join("datastats.yaml")),
        read_yaml(&work.join("datastats_by_case.yaml")),
    )
}

fn read_yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn reference(name: &str) -> PathBuf {
    common::shared_data().join("reference-outputs").join(name)
}

/// Walks MONAI's document and collects every place where ours is missing or differs.
/// File paths are compared by their last two components (MONAI's are rooted elsewhere).
fn differences(monai: &Value, ours: &Value, at: &str, out: &mut Vec<String>) -> usize {
    match (monai, ours) {
        (Value::Mapping(m), Value::Mapping(o)) => m
            .iter()
            .map(|(k, v)| {
                let key = k.as_str().unwrap_or("?");
                let here = format!("{at}.{key}");
                match o.get(k) {
                    Some(ov) if key.ends_with("_filepath") => {
                        let tail = |v: &Value| {
                            let p = PathBuf::from(v.as_str().unwrap_or(""));
                            p.iter()
                                .rev()
                                .take(2)
                                .map(|s| s.to_owned())
                                .collect::<Vec<_>>()
                        };
                        if tail(v) != tail(ov) {
                            out.push(format!("{here}: {v:?} vs {ov:?}"));
                        }
                        1
                    }
                    Some(ov) => differences(v, ov, &here, out),
                    None => {
                        out.push(format!("{here}: missing"));
                        1
                    }
                }
            })
            .sum(),
        (Value::Sequence(m), Value::Sequence(o)) if m.len() == o.len() => m
            .iter()
            .zip(o)
            .enumerate()
            .map(|(i, (a, b))| differences(a, b, &format!("{at}[{i}]"), out))
            .sum(),
        (Value::Number(m), Value::Number(o)) => {
            let same = match (m.as_i64(), o.as_i64()) {
                (Some(a), Some(b)) => a == b,
                (Some(_), None) => false,
                _ => {
                    let (a, b) = (m.as_f64().unwrap(), o.as_f64().unwrap());
                    (a - b).abs() <= 1e-4 * a.abs() || (a - b).abs() < 1e-12
                }
            };
            if !same {
                out.push(format!("{at}: MONAI {m} vs ours {o}"));
            }
            1
        }
        _ => {
            if monai != ours {
                out.push(format!("{at}: MONAI {monai:?} vs ours {ours:?}"));
            }
            1
        }
    }
}

fn assert_matches(monai: &Value, ours: &Value, what: &str, at_least: usize) {
    let mut diffs = Vec::new();
    let compared = differences(monai, ours, "", &mut diffs);
    assert!(
        diffs.is_empty(),
        "{what}: {} of {compared} values differ:\n{}",
        diffs.len(),
        diffs[..diffs.len().min(20)].join("\n")
    );
    assert!(
        compared >= at_least,
        "{what}: only {compared} values compared"
    );
}

#[test]
fn task04_summary_and_all_208_cases_match_monai() {
    let work = tempfile::tempdir().unwrap();
    let (summary, by_case) = analyze("Task04_Hippocampus", work.path());
    let monai = read_yaml(&reference("Task04_Hippocampus_datastats.yaml"));
    assert_matches(&monai, &summary, "Task04 summary", 260);
    let monai = read_yaml(&reference("Task04_Hippocampus_datastats_by_case.yaml"));
    assert_matches(&monai, &by_case, "Task04 by case", 20_000);
    assert_eq!(by_case["failed_cases"], Value::Sequence(vec![]));
}

#[test]
fn brats_two_channel_summary_matches_monai() {
    let work = tempfile::tempdir().unwrap();
    let (summary, _) = analyze("BraTS2015-DeepMedic-mini", work.path());
    let monai = read_yaml(&reference("BraTS2015-DeepMedic-mini_datastats.yaml"));
    assert_matches(&monai, &summary, "BraTS summary", 300);
    // MONAI's summary intensity is channel 0's; ours keeps both channels apart as well.
    let by_channel = summary["stats_summary"]["image_stats"]["intensity_by_channel"]
        .as_sequence()
        .unwrap();
    assert_eq!(by_channel.len(), 2);
    assert_eq!(
        by_channel[0],
        summary["stats_summary"]["image_stats"]["intensity"]
    );
    assert_ne!(by_channel[1], by_channel[0]);
}

/// MONAI's `LabelStatsSumm` looks up class `id` at list position `id` of each case's label list,
/// so once a class id is skipped (TotalSegmentator has 41 of 118 classes) its entries describe
/// another class, or read as zeros past the list's end. Where ids run 0, 1, 2... without a gap
/// its definition is ours and the values must agree; past the first gap, MONAI's entry must
/// equal what that position lookup gives on our per-case figures.
fn assert_totalseg_matches(dataset: &str, reference_name: &str) {
    let work = tempfile::tempdir().unwrap();
    let (mut summary, by_case) = analyze(dataset, work.path());
    let monai = read_yaml(&reference(reference_name));
    let labels: Vec<u64> = summary["stats_summary"]["label_stats"]["labels"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let first_gap = labels
        .iter()
        .enumerate()
        .position(|(i, &id)| i as u64 != id)
        .unwrap();
    assert!(
        first_gap > 5 && first_gap < labels.len(),
        "{dataset}: gap at {first_gap}"
    );
    let case_classes = by_case["stats_by_cases"][0]["label_stats"]["label"]
        .as_sequence()
        .unwrap()
        .clone();
    let entries = summary["stats_summary"]["label_stats"]["label"]
        .as_sequence_mut()
        .unwrap();
    for (i, &id) in labels.iter().enumerate().skip(first_gap) {
        let entry = &mut entries[i];
        match case_classes.get(id as usize) {
            Some(class) => {
                let pct = class["foreground_percentage"].clone();
                let intensity = &class["image_intensity"][0];
                for key in [
                    "max",
                    "mean",
                    "median",
                    "min",
                    "percentile_00_5",
                    "percentile_10_0",
                    "percentile_90_0",
                    "percentile_99_5",
                ] {
                    entry["foreground_percentage"][key] = pct.clone();
                    entry["image_intensity"][key] = intensity[key].clone();
                }
                entry["foreground_percentage"]["stdev"] = 0.0.into();
                entry["foreground_percentage"]["percentile"] = Value::Sequence(vec![pct; 4]);
                entry["image_intensity"]["stdev"] = intensity["stdev"].clone();
            }
            // Past the list's end MONAI summarises `np.array([0])`: integer 0 where it keeps the
            // dtype (max, min, percentiles of a sample), float 0.0 where it averages.
            None => {
                let sample = serde_yaml::from_str::<Value>(
                    "{max: 0, mean: 0.0, median: 0.0, min: 0, stdev: 0.0, percentile: [0, 0, 0, 0], \
                     percentile_00_5: 0, percentile_10_0: 0, percentile_90_0: 0, percentile_99_5: 0}",
                )
                .unwrap();
                let pooled = serde_yaml::from_str::<Value>(
                    "{max: 0, mean: 0.0, median: 0.0, min: 0, stdev: 0.0, percentile_00_5: 0.0, \
                     percentile_10_0: 0.0, percentile_90_0: 0.0, percentile_99_5: 0.0}",
                )
                .unwrap();
                entry["foreground_percentage"] = sample;
                entry["image_intensity"] = pooled;
            }
        }
    }
    assert_matches(&monai, &summary, dataset, 700);
}

#[test]
fn totalsegmentator_ct_matches_monai() {
    assert_totalseg_matches(
        "TotalSegmentator-examples/ct",
        "TotalSegmentator-examples-ct_datastats.yaml",
    );
}

#[test]
fn totalsegmentator_mr_matches_monai() {
    assert_totalseg_matches(
        "TotalSegmentator-examples/mr",
        "TotalSegmentator-examples-mr_datastats.yaml",
    );
}

#[test]
fn task04_fingerprint_agrees_with_nnunet() {
    let work = tempfile::tempdir().unwrap();
    let (summary, by_case) = analyze("Task04_Hippocampus", work.path());
    let text = std::fs::read_to_string(reference("nnunet_Dataset004_fingerprint.json")).unwrap();
    let nnunet: serde_json::Value = serde_json::from_str(&text).unwrap();
    let ours = &summary["stats_summary"]["nnunet_fingerprint"];

    // Shapes after crop: nnU-Net lists the file's axes reversed; Task04 files are RAS, so they
    // are ours reversed. nnU-Net orders cases by identifier, as the datalist here does.
    let mut theirs: Vec<Vec<u64>> = nnunet["shapes_after_crop"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s.as_array()
                .unwrap()
                .iter()
                .rev()
                .map(|v| v.as_u64().unwrap())
                .collect()
        })
        .collect();
    let mut mine: Vec<Vec<u64>> = by_case["stats_by_cases"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|c| {
            c["nnunet"]["shape_after_crop"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect()
        })
        .collect();
    theirs.sort();
    mine.sort();
    assert_eq!(mine, theirs);
    assert_eq!(
        ours["median_relative_size_after_cropping"].as_f64(),
        nnunet["median_relative_size_after_cropping"].as_f64()
    );
    assert_eq!(
        ours["median_spacing"],
        serde_yaml::to_value([1.0, 1.0, 1.0]).unwrap()
    );

    // Foreground intensities: nnU-Net pools an equal-sized random sample per case; ours is the
    // same equal-weight mixture without sampling noise (mean, stdev exact; percentiles from the
    // sketch). Min and max agree exactly; the rest within the sampling noise (0.1 %).
    let theirs = &nnunet["foreground_intensity_properties_per_channel"]["0"];
    let ours = &ours["foreground_intensity_properties_per_channel"][0];
    for (key, our_key, tolerance) in [
        ("max", "max", 0.0),
        ("min", "min", 0.0),
        ("mean", "mean", 1e-3),
        ("std", "stdev", 1e-3),
        ("median", "median", 1e-3),
        ("percentile_00_5", "percentile_00_5", 1e-3),
        ("percentile_99_5", "percentile_99_5", 1e-3),
    ] {
        let (a, b) = (
            theirs[key].as_f64().unwrap(),
            ours[our_key].as_f64().unwrap(),
        );
        assert!(
            (a - b).abs() <= tolerance * a.abs(),
            "{key}: nnU-Net {a}, ours {b}"
        );
    }
}
