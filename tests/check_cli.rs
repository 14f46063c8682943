//! `autoseg check` on a corpus of broken datasets: each fault gets its own specific error,
//! and every other case is still checked.

mod common;

use std::path::Path;

use serde_json::Value;

fn check_json(datalist: &Path) -> (i32, Value) {
    let out = common::autoseg(&["check", "--datalist", datalist.to_str().unwrap(), "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", common::text(&out)));
    (out.status.code().unwrap(), report)
}

#[test]
fn a_clean_phantom_dataset_passes() {
    let dir = common::phantom_dataset(3);
    let task = dir.path().join("data/task.yaml");
    let out = common::autoseg(&["check", "--input", task.to_str().unwrap()]);
    assert!(out.status.success(), "{}", common::text(&out));
    common::assert_output_contains(&out, "checked 4 cases");
}

#[test]
fn every_bad_input_gets_its_own_error_and_the_rest_are_still_checked() {
    let dir = common::broken_dataset();
    let root = dir.path().join("data");

    let (code, report) = check_json(&root.join("dataset.json"));
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["cases_checked"], 11);
    assert_eq!(report["failed_cases"], 8, "{report:#}");
    let problems = report["problems"].as_array().unwrap();
    let of_case = |id: &str| -> Vec<(String, String)> {
        problems
            .iter()
            .filter(|p| p["case"] == id)
            .map(|p| {
                (
                    p["kind"].as_str().unwrap().to_string(),
                    p["message"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let expect = |id: &str, kind: &str, words: &str| {
        let found = of_case(id);
        assert!(
            found.iter().any(|(k, m)| k == kind && m.contains(words)),
            "{id}: wanted {kind} '{words}', got {found:?}"
        );
    };
    let expected = [
        ("phantom_000", "unreadable", "corrupt or truncated gzip"),
        ("bad_magic", "unreadable", "bad NIfTI magic"),
        (
            "phantom_002",
            "geometry_mismatch",
            "shape [16, 16, 12] differs from [16, 16, 10]",
        ),
        ("does_not_exist", "missing_file", "file not found"),
        ("phantom_004", "outside_root", "leaves the data root"),
        (
            "phantom_005",
            "non_finite",
            "2 of 3072 voxels are NaN or infinite",
        ),
        (
            "phantom_006",
            "invalid_label",
            "1 voxels are not integers, the first is 1.5 at [4, 6, 0]",
        ),
        (
            "phantom_007",
            "unknown_label",
            "label ids 5 are beyond the 3 named classes",
        ),
    ];
    for (id, kind, words) in expected {
        expect(id, kind, words);
    }
    assert!(of_case("phantom_008").is_empty() && of_case("phantom_009").is_empty());
    let gap = problems
        .iter()
        .find(|p| p["kind"] == "label_gap")
        .expect("a gap warning");
    assert!(
        gap["message"]
            .as_str()
            .unwrap()
            .contains("label ids 3, 4 appear in no case"),
        "{gap}"
    );

    // The table names the file and the problem for people too.
    let out = common::autoseg(&[
        "check",
        "--datalist",
        root.join("dataset.json").to_str().unwrap(),
    ]);
    let text = common::text(&out);
    assert!(
        text.contains("imagesTr/phantom_000.nii.gz") && text.contains("corrupt or truncated gzip"),
        "{text}"
    );
    assert!(
        text.contains("checked 11 cases") && text.contains("8 failed"),
        "{text}"
    );
    // ...and --allow-outside-root lets the escaping path through.
    let out = common::autoseg(&[
        "check",
        "--datalist",
        root.join("dataset.json").to_str().unwrap(),
        "--allow-outside-root",
        "--json",
    ]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        !report["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["case"] == "phantom_004")
    );
}

#[test]
fn broken_configs_stop_with_the_file_named_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("task.yaml");
    std::fs::write(&yaml, "modality: CT\ndatalist: [unclosed\n").unwrap();
    let out = common::autoseg(&["check", "--input", yaml.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let text = common::text(&out);
    assert!(text.contains("task.yaml: malformed YAML"), "{text}");

    let list = dir.path().join("list.json");
    std::fs::write(&list, r#"{"training": [{"image": "a.nii.gz"}]}"#).unwrap();
    let out = common::autoseg(&["check", "--datalist", list.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    common::assert_output_contains(&out, "list.json: training[0]: missing `label`");

    let out = common::autoseg(&[
        "check",
        "--datalist",
        dir.path().join("nope.json").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    common::assert_output_contains(&out, "nope.json: No such file");
}

#[test]
fn demo_runs_and_phantoms_are_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let out = common::autoseg(&[
        "demo",
        "--dir",
        demo.to_str().unwrap(),
        "--time-budget",
        "1",
    ]);
    assert!(out.status.success(), "{}", common::text(&out));
    assert!(
        common::text(&out).contains("checked 14 cases")
            && common::text(&out).contains("0 errors")
            && common::text(&out).contains("ensemble Dice on the 2 testing cases"),
        "{}",
        common::text(&out)
    );
    let again = dir.path().join("again");
    assert!(
        common::autoseg(&[
            "demo",
            "--dir",
            again.to_str().unwrap(),
            "--time-budget",
            "1"
        ])
        .status
        .success()
    );
    for file in [
        "imagesTr/phantom_003.nii.gz",
        "labelsTr/phantom_003.nii.gz",
        "dataset.json",
        "work_dir/bundles/dynunet_0/configs/hyper_parameters.yaml",
        "work_dir/bundles/dynunet_0/configs/network.yaml",
    ] {
        assert_eq!(
            std::fs::read(demo.join(file)).unwrap(),
            std::fs::read(again.join(file)).unwrap(),
            "{file}"
        );
    }
}

/// `phantom --classes 40` writes many-class data that `check` passes with every class named
/// in the datalist; a count out of range is refused naming the flag.
#[test]
fn a_forty_class_phantom_set_passes_check() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("data");
    let o = out.to_str().unwrap();
    let args = ["phantom", "--out", o, "--cases", "2", "--test-cases", "0"];
    common::run_ok(&[&args[..], &["--shape", "48,48,40", "--classes", "40"]].concat());
    let datalist: Value = common::read_yaml(&out.join("dataset.json"));
    assert_eq!(datalist["labels"].as_object().unwrap().len(), 41);
    assert_eq!(datalist["labels"]["40"], "organ_40");
    let (code, report) = check_json(&out.join("dataset.json"));
    assert_eq!(code, 0, "{report:#}");
    let refused = common::autoseg(&[&args[..], &["--classes", "1"]].concat());
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        common::text(&refused).contains("--classes"),
        "{}",
        common::text(&refused)
    );
}
