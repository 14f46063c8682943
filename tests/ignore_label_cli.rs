//! Sparse annotation end to end (nnU-Net's ignore label): `phantom --sparse-labels` writes
//! it, `check` reports it apart from the classes, `run` trains, validates, ensembles and
//! predicts with it as no class, `evaluate` takes it from the datalist, and a task whose
//! ignore label is also a class is refused before anything runs.

mod common;

use autoseg_tuner::train::TrainConfig;
use serde_json::Value;

#[test]
fn sparse_phantoms_run_through_the_pipeline_with_the_ignore_label_as_no_class() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    common::quick_phantoms(d, &["--sparse-labels"]);
    let datalist: Value = common::read_yaml(&data.join("dataset.json"));
    assert_eq!(datalist["labels"]["3"], "ignore");

    let out = common::autoseg(&[
        "check",
        "--datalist",
        &format!("{d}/dataset.json"),
        "--json",
    ]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(report["ignore_label"], 3);
    assert!(
        report["label_voxels"]["3"].as_u64().unwrap() > 0,
        "{report:#}"
    );

    let work = dir.path().join("work");
    let w = work.to_str().unwrap();
    let task = format!("{d}/task.yaml");
    let ran = common::quick_run(&task, w);
    assert!(
        ran.contains("ignore label 3"),
        "analyze names it apart: {ran}"
    );
    let config = TrainConfig::read(&work.join("bundles/dynunet_0")).unwrap();
    assert_eq!(config.preprocessing.labels, [0, 1, 2]);
    assert_eq!(config.preprocessing.ignore_label, Some(3));
    assert_eq!(config.network.out_channels(), 3);
    let metrics = std::fs::read_to_string(work.join("bundles/dynunet_0/metrics.csv")).unwrap();
    let last = metrics.lines().last().unwrap();
    let dice: Vec<f64> = last
        .split(',')
        .skip(6)
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(dice.iter().all(|d| (0.0..=1.0).contains(d)), "{metrics}");

    let evaluated = common::run_ok(&[
        "evaluate",
        "--pred",
        &format!("{w}/predictions"),
        "--ref",
        &format!("{d}/dataset.json"),
        "--out",
        &format!("{w}/evaluation"),
    ]);
    assert!(
        evaluated.contains("label 3 is the ignore label"),
        "{evaluated}"
    );
    assert!(
        !evaluated.contains("label   3:"),
        "no metric for the ignore label: {evaluated}"
    );
}

#[test]
fn an_ignore_label_that_is_also_a_class_is_refused_naming_the_task() {
    let dir = common::phantom_dataset(2);
    let task = dir.path().join("data/task.yaml");
    let text = std::fs::read_to_string(&task).unwrap();
    std::fs::write(&task, format!("{text}ignore_label: 2\n")).unwrap();
    let out = common::autoseg(&["check", "--input", task.to_str().unwrap()]);
    assert!(!out.status.success());
    let said = common::text(&out);
    assert!(
        said.contains("task.yaml") && said.contains("`ignore_label` 2 is also the class `lesion`"),
        "{said}"
    );
}
