//! `autoseg analyze` on phantoms: every broken case is listed with its file and the rest are
//! analyzed, a rerun reuses the per-case cache and analyzes only what is new, and the files
//! are MONAI-shaped.

mod common;

use std::path::Path;

use serde_yaml::Value;

fn analyze(datalist: &Path, work: &Path) -> std::process::Output {
    common::autoseg(&[
        "analyze",
        "--datalist",
        datalist.to_str().unwrap(),
        "--work-dir",
        work.to_str().unwrap(),
    ])
}

fn read_yaml(path: &Path) -> Value {
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_rerun_analyzes_only_new_or_changed_cases() {
    let dir = common::phantom_dataset(6);
    let data = dir.path().join("data");
    let full = std::fs::read_to_string(data.join("dataset.json")).unwrap();
    let mut list: serde_json::Value = serde_json::from_str(&full).unwrap();
    list["training"].as_array_mut().unwrap().truncate(4);
    let partial = data.join("partial.json");
    std::fs::write(&partial, serde_json::to_string(&list).unwrap()).unwrap();
    let work = dir.path().join("work");

    let first = analyze(&partial, &work);
    assert!(first.status.success(), "{}", common::text(&first));
    common::assert_output_contains(&first, "analyzed 4 cases");
    common::assert_output_contains(&first, "(0 from the cache)");
    let before = read_yaml(&work.join("datastats_by_case.yaml"));

    let second = analyze(&data.join("dataset.json"), &work);
    common::assert_output_contains(&second, "analyzed 6 cases");
    common::assert_output_contains(&second, "(4 from the cache)");
    let after = read_yaml(&work.join("datastats_by_case.yaml"));
    assert_eq!(
        before["stats_by_cases"][3], after["stats_by_cases"][3],
        "a cached case reads back unchanged"
    );

    // Rewriting a file (new mtime) makes its case new again.
    let label = data.join("labelsTr/phantom_000.nii.gz");
    let bytes = std::fs::read(&label).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&label, bytes).unwrap();
    let third = analyze(&data.join("dataset.json"), &work);
    common::assert_output_contains(&third, "(5 from the cache)");
    let fresh = read_yaml(&work.join("datastats_by_case.yaml"));
    assert_eq!(fresh, after, "the same data gives the same figures");
}

#[test]
fn the_files_have_monai_layout_and_our_extra_keys() {
    let dir = common::phantom_dataset(3);
    let data = dir.path().join("data");
    let work = dir.path().join("work");
    // Through the task config this time (MONAI's input.yaml keys), with a worker count.
    let task = data.join("task.yaml");
    let run = common::autoseg(&[
        "analyze",
        "--input",
        task.to_str().unwrap(),
        "--work-dir",
        work.to_str().unwrap(),
        "--workers",
        "1",
    ]);
    assert!(run.status.success(), "{}", common::text(&run));
    let doc = read_yaml(&work.join("datastats.yaml"));
    let summary = &doc["stats_summary"];
    for key in [
        "image_stats",
        "image_foreground_stats",
        "label_stats",
        "n_cases",
        "nnunet_fingerprint",
    ] {
        assert!(summary.get(key).is_some(), "stats_summary.{key} missing");
    }
    assert_eq!(doc["stats_by_cases"], Value::Sequence(vec![]));
    assert_eq!(
        summary["label_stats"]["labels"],
        serde_yaml::to_value([0, 1, 2]).unwrap()
    );
    let by_case = read_yaml(&work.join("datastats_by_case.yaml"));
    let case = &by_case["stats_by_cases"][0];
    assert_eq!(
        case["image_filepath"],
        Value::from("imagesTr/phantom_000.nii.gz")
    );
    let class = &case["label_stats"]["label"][1];
    assert_eq!(class["label_id"], Value::from(1));
    assert!(class["n_components"].as_u64().unwrap() >= 1);
    let sizes = class["component_sizes"].as_sequence().unwrap();
    let total: u64 = sizes.iter().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(Value::from(total), class["voxels"]);
}

#[test]
fn every_broken_case_is_listed_with_its_file_and_the_rest_analyzed() {
    let dir = common::broken_dataset();
    let data = dir.path().join("data");
    let work = dir.path().join("work");
    let run = analyze(&data.join("dataset.json"), &work);
    assert_eq!(run.status.code(), Some(1), "{}", common::text(&run));
    let doc = read_yaml(&work.join("datastats.yaml"));
    // Case 7 (a label id past the named classes) is a fine label map to the analyzer.
    assert_eq!(doc["stats_summary"]["n_cases"], Value::from(3));
    let failed = doc["failed_cases"].as_sequence().unwrap();
    let reason = |locator: &str| -> String {
        let case = failed.iter().find(|f| f["locator"] == locator);
        let case = case.unwrap_or_else(|| panic!("{locator} not in failed_cases: {failed:?}"));
        case["reason"].as_str().unwrap().to_string()
    };
    for (locator, words) in [
        ("training[0]", ["phantom_000.nii.gz", "gzip"]),
        ("training[1]", ["bad_magic.nii", "magic"]),
        ("training[2]", ["labelsTr/phantom_002.nii.gz", "shape"]),
        ("training[3]", ["does_not_exist.nii.gz", "not found"]),
        ("training[4]", ["outside.nii.gz", "leaves the data root"]),
        ("training[5]", ["phantom_005.nii.gz", "NaN or infinite"]),
        ("training[6]", ["labelsTr/phantom_006.nii.gz", "1.5"]),
    ] {
        let why = reason(locator);
        for w in words {
            assert!(why.contains(w), "{locator}: `{w}` not in `{why}`");
        }
    }
    assert_eq!(failed.len(), 7);
    common::assert_output_contains(&run, "FAILED phantom_000");
    let by_case = read_yaml(&work.join("datastats_by_case.yaml"));
    assert_eq!(by_case["stats_by_cases"].as_sequence().unwrap().len(), 3);
}
