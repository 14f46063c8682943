//! Region-based targets end to end: a task whose `class_names` are overlapping regions (the
//! phantom's organ with its nested lesion, as BraTS' whole tumour holds its core) trains one
//! sigmoid output per region with Dice + BCE, validates and ensembles per region, writes
//! labels by `regions_class_order`, and `evaluate --input` scores each region. Tasks whose
//! regions cannot be trained are refused by name before anything trains.

mod common;

use std::path::Path;

use autoseg_tuner::train::TrainConfig;
use serde_json::Value;

/// The phantom task with `class_names` replaced by `regions` (YAML lines).
fn region_task(data: &Path, regions: &str) -> String {
    let task = data.join("task.yaml");
    let text = std::fs::read_to_string(&task).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| {
            !["class_names", "regions_class_order", " "]
                .iter()
                .any(|k| l.starts_with(k))
        })
        .collect();
    std::fs::write(&task, format!("{}\n{regions}", kept.join("\n"))).unwrap();
    task.to_str().unwrap().to_string()
}

const NESTED: &str = "class_names:\n  - {name: organ_whole, index: [1, 2]}\n  \
                      - {name: lesion, index: [2]}\nregions_class_order: [1, 2]\n";

#[test]
fn nested_regions_train_predict_and_evaluate_per_region() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    common::quick_phantoms(d, &[]);
    let task = region_task(&data, NESTED);
    // The datalist in a folder of its own, apart from the data root the task names: every
    // stage, the testing cases' prediction included, resolves paths under the data root.
    std::fs::create_dir(data.join("lists")).unwrap();
    std::fs::rename(data.join("dataset.json"), data.join("lists/dataset.json")).unwrap();
    let text = std::fs::read_to_string(&task).unwrap();
    std::fs::write(
        &task,
        text.replace("datalist: dataset.json", "datalist: lists/dataset.json"),
    )
    .unwrap();
    let work = dir.path().join("work");
    let w = work.to_str().unwrap();
    let ran = common::quick_run(&task, w);
    assert!(ran.contains("per region: organ_whole: "), "{ran}");

    let bundle = work.join("bundles/dynunet_0");
    let config = TrainConfig::read(&bundle).unwrap();
    assert_eq!(config.preprocessing.labels, [0, 1, 2]);
    assert_eq!(config.network.out_channels(), 2, "one output per region");
    let regions = config.regions.as_ref().unwrap();
    assert_eq!(regions.names(), ["organ_whole", "lesion"]);
    assert_eq!(regions.class_order, [1, 2]);
    assert_eq!(config.loss.loss.name(), "dice_bce");
    let metrics = std::fs::read_to_string(bundle.join("metrics.csv")).unwrap();
    let header = metrics.lines().next().unwrap();
    assert!(
        header.split(',').count() == metrics.lines().last().unwrap().split(',').count(),
        "{metrics}"
    );

    let predictions: Vec<_> = std::fs::read_dir(work.join("predictions"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(predictions.len(), 1, "{predictions:?}");
    let written = autoseg_datasets::LabelVolume::read(&predictions[0]).unwrap();
    assert!(
        written.data().iter().all(|&l| l <= 2),
        "labels are 0 or the regions' written labels"
    );

    let evaluated = common::run_ok(&[
        "evaluate",
        "--pred",
        &format!("{w}/predictions"),
        "--ref",
        &format!("{d}/labelsTs"),
        "--input",
        &task,
        "--out",
        &format!("{w}/evaluation"),
    ]);
    assert!(
        evaluated.contains("region organ_whole: Dice"),
        "{evaluated}"
    );
    assert!(evaluated.contains("region lesion: Dice"), "{evaluated}");
    let summary: Value = common::read_yaml(&work.join("evaluation/summary.yaml"));
    assert_eq!(summary["classes"][0]["region"], "organ_whole");
    let csv = std::fs::read_to_string(work.join("evaluation/metrics.csv")).unwrap();
    assert!(csv.starts_with("case,region,dice"), "{csv}");
}

#[test]
fn regions_that_cannot_be_trained_are_refused_by_name() {
    let dir = common::phantom_dataset(2);
    let data = dir.path().join("data");
    let work = dir.path().join("work");
    let w = work.to_str().unwrap();

    // Overlapping regions without the order that decides which label a voxel is written as.
    let task = region_task(
        &data,
        "class_names:\n  - {name: whole, index: [1, 2]}\n  - {name: core, index: [2]}\n",
    );
    let out = common::autoseg(&["check", "--input", &task]);
    let said = common::text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("task.yaml") && said.contains("give `regions_class_order`"),
        "{said}"
    );

    // A region naming a label id that no case holds.
    let task = region_task(
        &data,
        "class_names:\n  - {name: whole, index: [1, 2]}\n  - {name: missing, index: [7]}\n",
    );
    let out = common::autoseg(&["check", "--input", &task]);
    let said = common::text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("region `missing` names label id(s) [7]"),
        "{said}"
    );
    common::run_ok(&["analyze", "-i", &task, "-w", w]);
    let out = common::autoseg(&["generate", "-i", &task, "-w", w]);
    let said = common::text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("region `missing` names label id 7, which no case holds"),
        "{said}"
    );
}
