//! The stages chained by hand on phantoms: analyze, generate, train every bundle, rank,
//! ensemble, report, predict with the ensemble, export its members, evaluate the predictions.

mod common;

use common::THREE_KILLABLE_TRIALS;

use autoseg_datasets::{LabelVolume, Volume};

#[test]
fn every_stage_reads_the_last_ones_files() {
    let (dir, work) = common::analyzed_phantoms(6);
    let data = dir.path().join("data");
    let w = work.to_str().unwrap();
    common::generate(
        &work,
        "dynunet,segresnet",
        "0,1",
        &[
            "dynunet:network.filters=[4, 8, 16]",
            "segresnet:network.init_filters=4",
            "num_epochs=2",
            "iterations_per_epoch=2",
            "validation.every=1",
        ],
    );
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
    // Greedy selection on the cross-validation predictions: every fold of each algorithm
    // it keeps, and the Dice it measured.
    let said = common::run_ok(&["ensemble", "-w", w, "--selection", "greedy"]);
    assert!(said.contains("cross-validation Dice"), "{said}");
    let ensemble = common::read_yaml(&work.join("ensemble/ensemble.yaml"));
    let members = ensemble["members"].as_array().unwrap().len();
    assert!(members == 2 || members == 4, "{ensemble}");
    assert!(ensemble["cross_validation_dice"].as_f64().unwrap() >= 0.0);
    assert!(ensemble["keep_largest"].is_array());
    report_renders(&work);

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

    // Every member of the ensemble exported, one folder each, and how they combine.
    let said = common::run_ok(&["export", "-w", w]);
    assert!(said.contains("averages its members' softmax"), "{said}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.join("export/onnx/ensemble.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["ensemble"]["combine"], "mean", "{manifest}");
    assert_eq!(
        manifest["members"].as_array().unwrap().len(),
        2,
        "{manifest}"
    );
    for member in ensemble["members"].as_array().unwrap() {
        let name = member["bundle"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap();
        let folder = work.join("export/onnx").join(name);
        assert!(folder.join("model.onnx").is_file(), "{}", folder.display());
        assert!(
            folder.join("inference.json").is_file(),
            "{}",
            folder.display()
        );
    }

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

#[test]
fn an_interrupted_run_reruns_without_redoing_finished_work() {
    use std::time::{Duration, Instant};
    let dir = common::phantom_dataset(6);
    let task = dir.path().join("data/task.yaml");
    let work = dir.path().join("work");
    let task = task.to_str().unwrap();
    let args = [
        &["run", "-i", task, "-w", work.to_str().unwrap()][..],
        THREE_KILLABLE_TRIALS,
    ]
    .concat();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_autoseg"))
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let bundle = |fold: usize| work.join(format!("bundles/dynunet_{fold}"));
    let started = Instant::now();
    while !(common::epochs_done(&bundle(0)) == 8 && common::epochs_done(&bundle(1)) >= 1) {
        assert!(started.elapsed() < Duration::from_secs(240), "no progress");
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL, in the training stage
    child.wait().unwrap();
    let first = std::fs::read(bundle(0).join("metrics.csv")).unwrap();
    assert!(
        common::epochs_done(&bundle(1)) < 8,
        "the second trial had finished: kill sooner"
    );

    let rerun = common::run_ok(&args);
    assert!(rerun.contains("2 of 3 trial(s) to train"), "{rerun}");
    assert!(rerun.contains("(kept: already trained"), "{rerun}");
    assert_eq!(std::fs::read(bundle(0).join("metrics.csv")).unwrap(), first);
    assert!(work.join("predictions/phantom_006.nii.gz").is_file());
    let trained: Vec<Vec<u8>> = (0..3)
        .map(|f| std::fs::read(bundle(f).join("metrics.csv")).unwrap())
        .collect();

    let again = common::run_ok(&args);
    assert!(again.contains("0 of 3 trial(s) to train"), "{again}");
    for (fold, before) in trained.iter().enumerate() {
        assert_eq!(
            &std::fs::read(bundle(fold).join("metrics.csv")).unwrap(),
            before
        );
    }
}

/// `autoseg report` on a ranked and ensembled work dir: every section filled, pictures
/// embedded, and the page drawn by headless Chromium with its curves and overlays showing.
fn report_renders(work: &std::path::Path) {
    let said = common::run_ok(&["report", "-w", work.to_str().unwrap(), "--overlays", "2"]);
    let page_path = work.join("report.html");
    assert!(said.contains("report.html"), "{said}");
    let page = std::fs::read_to_string(&page_path).unwrap();
    for words in [
        "<h2>Dataset</h2>",
        "<h2>Bundles</h2>",
        "<h2>Ranking</h2>",
        "<h2>Ensemble</h2>",
        "Cross-validation Dice",
        "<h2>Example predictions</h2>",
        "dynunet_0",
        "segresnet_1",
        "patch_size",
        "overlay of phantom_",
    ] {
        assert!(page.contains(words), "report.html lacks {words:?}");
    }
    assert!(
        !page.contains("class=\"missing\""),
        "a section says it is missing"
    );
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "the page fetches nothing"
    );
    // 4 bundles' training curves and 2 overlays, embedded.
    assert_eq!(page.matches("data:image/png;base64,").count(), 6);

    let (rgb, width, height) = common::screenshot(&page_path, 1200, 9000);
    let has = |colour: [u8; 3]| {
        rgb.chunks(3)
            .any(|p| p.iter().zip(colour).all(|(&a, b)| a.abs_diff(b) < 8))
    };
    assert_eq!((width, height), (1200, 9000));
    // The loss curves are pure blue; the overlays' outlines green (reference), red
    // (prediction) or yellow (both).
    assert!(has([0, 0, 255]), "no training curve on the rendered page");
    assert!(
        has([0, 220, 0]) || has([255, 40, 40]) || has([255, 230, 0]),
        "no overlay on the rendered page"
    );
}
