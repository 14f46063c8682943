//! `autoseg run`'s budget planner on phantoms: the plan calibrated, written to plan.yaml,
//! printed, kept by a rerun that asks the same, shown by `inspect`; forced choices kept.

mod common;

#[test]
fn a_run_plans_for_its_budget_and_a_rerun_keeps_the_plan() {
    let dir = common::phantom_dataset(6);
    let task = dir.path().join("data/task.yaml");
    let work = dir.path().join("work");
    let (task, w) = (task.to_str().unwrap(), work.to_str().unwrap());
    let args = [
        "run",
        "-i",
        task,
        "-w",
        w,
        "--time-budget",
        "600",
        "--plan-only",
    ];
    let said = common::run_ok(&args);
    assert!(said.contains("calibrated dynunet"), "{said}");
    assert!(said.contains("budget:   10 min (--time-budget)"), "{said}");
    assert!(said.contains("Planned, not trained"), "{said}");

    let plan = common::read_yaml(&work.join("plan.yaml"));
    assert_eq!(plan["budget_seconds"].as_f64(), Some(600.0), "{plan}");
    assert_eq!(plan["algos"][0], "dynunet", "{plan}");
    assert!(!plan["folds"].as_array().unwrap().is_empty(), "{plan}");
    let expected = plan["expected_seconds"].as_f64().unwrap();
    assert!(expected > 0.0 && expected <= 600.0, "{plan}");
    for c in plan["calibration"].as_array().unwrap() {
        assert!(c["step_seconds"].as_f64().unwrap() > 0.0, "{c}");
        assert!(c["parameters"].as_u64().unwrap() > 0, "{c}");
    }
    assert!(!plan["reasons"].as_array().unwrap().is_empty(), "{plan}");
    // Planning trains nothing and leaves no bundle of its calibration behind.
    let bundles = std::fs::read_dir(work.join("bundles")).unwrap().count();
    assert_eq!(bundles, 0);
    assert!(!work.join("trials.yaml").exists());

    let again = common::run_ok(&args);
    assert!(again.contains("kept"), "{again}");
    assert!(!again.contains("calibrated"), "{again}");
    let shown = common::run_ok(&["inspect", w]);
    assert!(
        shown.contains("plan (") && shown.contains("why:"),
        "{shown}"
    );
}

#[test]
fn forced_templates_and_folds_are_kept_and_recorded() {
    let dir = common::phantom_dataset(6);
    let task = dir.path().join("data/task.yaml");
    let work = dir.path().join("work");
    common::run_ok(&[
        "run",
        "-i",
        task.to_str().unwrap(),
        "-w",
        work.to_str().unwrap(),
        "--time-budget",
        "300",
        "--algos",
        "dynunet",
        "--folds",
        "1,2",
        "--set",
        "inference.mirror_axes=[]",
        "--plan-only",
    ]);
    let plan = common::read_yaml(&work.join("plan.yaml"));
    assert_eq!(plan["algos"], serde_json::json!(["dynunet"]));
    assert_eq!(plan["folds"], serde_json::json!([1, 2]));
    assert_eq!(plan["forced"].as_array().unwrap().len(), 3, "{plan}");
    assert_eq!(plan["calibration"].as_array().unwrap().len(), 1, "{plan}");
}
