//! The stages chained by hand on phantoms: analyze, generate, train every bundle, rank,
//! ensemble, predict with the ensemble, evaluate the predictions.

mod common;

use autoseg_datasets::{LabelVolume, Volume};

#[test]
fn every_stage_reads_the_last_ones_files() {
    let dir = common::phantom_dataset(6);
    let data = dir.path().join("data");
    let work = dir.path().join("work");
    let w = work.to_str().unwrap();
    common::run_ok(&[
        "analyze",
        "-i",
        data.join("task.yaml").to_str().unwrap(),
        "-w",
        w,
    ]);
    common::run_ok(&[
        "generate",
        "-w",
        w,
        "--algos",
        "dynunet,segresnet",
        "--folds",
        "0,1",
        "--set",
        "dynunet:network.filters=[4, 8, 16]",
        "--set",
        "segresnet:network.init_filters=4",
        "--set",
        "num_epochs=2",
        "--set",
        "iterations_per_epoch=2",
        "--set",
        "validation.every=1",
    ]);
    let trained = common::run_ok(&["train", "-w", w]);
    assert!(
        trained.contains("4 trial(s): 4 finished, 0 failed"),
        "{trained}"
    );
    let ranked = common::run_ok(&["rank", "-w", w]);
    assert!(
        ranked.contains("dynunet") && ranked.contains("segresnet"),
        "{ranked}"
    );

    for (selection, members) in [("best-by-fold", 2), ("best-n", 3)] {
        common::run_ok(&[
            "ensemble",
            "-w",
            w,
            "--selection",
            selection,
            "--n",
            "3",
            "--combine",
            "vote",
        ]);
        let ensemble = common::read_yaml(&work.join("ensemble/ensemble.yaml"));
        assert_eq!(
            ensemble["members"].as_array().unwrap().len(),
            members,
            "{ensemble}"
        );
    }
    common::run_ok(&["ensemble", "-w", w]);
    let ensemble = common::read_yaml(&work.join("ensemble/ensemble.yaml"));
    assert_eq!(ensemble["combine"], "mean");
    assert_eq!(ensemble["selection"]["method"], "best_by_fold");

    let out = dir.path().join("predicted");
    let said = common::run_ok(&[
        "predict",
        "-w",
        w,
        "--images",
        data.join("dataset.json").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(said.contains("an ensemble (Mean) of bundles/"), "{said}");
    let case = "phantom_006.nii.gz";
    let labels = LabelVolume::read(&out.join(case)).unwrap();
    let image = Volume::read(&data.join("imagesTs").join(case)).unwrap();
    assert_eq!(
        (labels.dims(), labels.affine()),
        (image.dims(), image.affine())
    );

    let evaluated = common::run_ok(&[
        "evaluate",
        "--pred",
        out.to_str().unwrap(),
        "--ref",
        data.join("labelsTs").to_str().unwrap(),
    ]);
    assert!(evaluated.contains("1 case(s), 0 failed"), "{evaluated}");
    assert!(out.join("summary.yaml").is_file());
}
