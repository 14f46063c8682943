//! The work dir's split: `generate` plans the folds once into `W/folds.yaml` (keeping a
//! task's `group_key` groups whole), bundles point at it, and an edit of it is kept.

mod common;

use std::collections::BTreeMap;

use serde_json::Value;

#[test]
fn generate_plans_grouped_folds_once_and_keeps_an_edited_split() {
    let dir = common::phantom_dataset(10);
    let data = dir.path().join("data");
    // Ten cases of four patients: 0-2, 3-5, 6-7, 8-9.
    let patient = |i: usize| ["p0", "p0", "p0", "p1", "p1", "p1", "p2", "p2", "p3", "p3"][i];
    let datalist = data.join("dataset.json");
    let mut json: Value =
        serde_json::from_str(&std::fs::read_to_string(&datalist).unwrap()).unwrap();
    for (i, item) in json["training"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        item["patient"] = Value::from(patient(i));
    }
    std::fs::write(&datalist, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    let task = data.join("task.yaml");
    let mut text = std::fs::read_to_string(&task).unwrap();
    text.push_str("group_key: patient\nnum_fold: 3\n");
    std::fs::write(&task, text).unwrap();

    let work = dir.path().join("work");
    let w = work.to_str().unwrap();
    common::run_ok(&["analyze", "-i", task.to_str().unwrap(), "-w", w]);
    let said = common::run_ok(&["generate", "-w", w, "--algos", "dynunet"]);
    assert!(said.contains("planned: 3 folds"), "{said}");

    let split = common::read_yaml(&work.join("folds.yaml"));
    assert_eq!(split["num_folds"], 3);
    let folds: BTreeMap<String, u64> = (split["cases"].as_object().unwrap().iter())
        .map(|(id, fold)| (id.clone(), fold.as_u64().unwrap()))
        .collect();
    assert_eq!(folds.len(), 10);
    let mut fold_of_patient: BTreeMap<&str, u64> = BTreeMap::new();
    for i in 0..10 {
        let fold = folds[&format!("phantom_{i:03}")];
        let first = *fold_of_patient.entry(patient(i)).or_insert(fold);
        assert_eq!(
            first,
            fold,
            "patient {} spans two folds: {folds:?}",
            patient(i)
        );
    }
    for fold in 0..3 {
        let bundle = work.join(format!("bundles/dynunet_{fold}"));
        let data = &common::read_yaml(&bundle.join("configs/hyper_parameters.yaml"))["data"];
        assert_eq!(data["folds"], "../../folds.yaml", "{data}");
        assert_eq!(data["fold"], fold);
    }

    // A hand edit of the split stays through another generate.
    let edited = std::fs::read_to_string(work.join("folds.yaml"))
        .unwrap()
        .replace("phantom_000: 0", "phantom_000: null")
        .replace("phantom_000: 1", "phantom_000: null")
        .replace("phantom_000: 2", "phantom_000: null");
    std::fs::write(work.join("folds.yaml"), &edited).unwrap();
    let said = common::run_ok(&["generate", "-w", w, "--algos", "dynunet"]);
    assert!(said.contains("kept: 3 folds"), "{said}");
    assert_eq!(
        std::fs::read_to_string(work.join("folds.yaml")).unwrap(),
        edited
    );
}
