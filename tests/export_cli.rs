//! `autoseg export`: a trained bundle as ONNX with its inference settings, or as a MONAI
//! bundle that MONAI's runner turns into autoseg's label maps; and the errors of an untrained
//! bundle, corrupt weights, a network autoseg does not know and a work dir without an
//! ensemble.

mod common;

use autoseg_datasets::Bundle;
use std::path::Path;

use common::{autoseg, text};

#[test]
fn a_trained_bundle_exports_to_onnx_and_bad_bundles_say_why() {
    let (_dir, work) = common::analyzed_phantoms(6);
    let quick = [
        "network.filters=[4, 8, 16]",
        "batch_size=1",
        "num_epochs=1",
        "iterations_per_epoch=2",
    ];
    common::generate(&work, "dynunet", "0,1", &quick);
    let bundle = Bundle::new(work.join("bundles/dynunet_0"));
    let b = bundle.dir().to_str().unwrap();

    // Not trained yet: no weights to export.
    let untrained = autoseg(&["export", "--bundle", b]);
    assert_eq!(untrained.status.code(), Some(2), "{}", text(&untrained));
    assert!(
        text(&untrained).contains("train the bundle first"),
        "{}",
        text(&untrained)
    );

    common::run_ok(&["train", "--bundle", b]);
    let said = common::run_ok(&["export", "--bundle", b, "--format", "onnx"]);
    let out = bundle.exports().join("onnx");
    assert!(said.contains("model.onnx"), "{said}");
    let model = std::fs::read(out.join("model.onnx")).unwrap();
    assert!(model.len() > 10_000, "{} bytes", model.len());
    let settings: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("inference.json")).unwrap()).unwrap();
    assert_eq!(
        settings["label_ids"],
        serde_json::json!([0, 1, 2]),
        "{settings}"
    );
    assert_eq!(settings["channels"], 1);
    assert_eq!(settings["orientation"], "RAS");
    assert!(
        settings["window"].as_array().unwrap().len() == 3,
        "{settings}"
    );
    assert!(settings["normalization"].is_string() || settings["normalization"].is_object());

    // Corrupt weights: the error names the file.
    let weights = bundle.best_weights();
    let good = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &good[..good.len() / 2]).unwrap();
    let corrupt = autoseg(&["export", "--bundle", b, "--format", "monai"]);
    assert_eq!(corrupt.status.code(), Some(2), "{}", text(&corrupt));
    assert!(
        text(&corrupt).contains("best.safetensors"),
        "{}",
        text(&corrupt)
    );
    std::fs::write(&weights, good).unwrap();

    // A network autoseg does not know: the error names the file that names it.
    let other = Bundle::new(work.join("bundles/dynunet_1"));
    let network_file = other.configs_dir().join("network.yaml");
    std::fs::write(&network_file, "network:\n  name: unetr\n  in_channels: 1\n").unwrap();
    let unknown = autoseg(&["export", "--bundle", other.dir().to_str().unwrap()]);
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown));
    assert!(
        text(&unknown).contains("network.yaml") && text(&unknown).contains("unetr"),
        "{}",
        text(&unknown)
    );

    // A work dir's members come from its ensemble: none yet.
    let none = autoseg(&["export", "-w", work.to_str().unwrap()]);
    assert!(text(&none).contains("ensemble.yaml"), "{}", text(&none));
}

/// MONAI's own runner on the exported MONAI bundle (MONAI's DynUNet, its transforms, the
/// weights as a PyTorch state_dict loaded with `weights_only=True`) predicts the label maps
/// `autoseg predict` does, on phantoms in random orientations. Runs where the peer is
/// installed (`../shared/peer/setup.sh`); says so and passes where it is not.
#[test]
fn monai_runs_the_exported_bundle_to_autosegs_label_maps() {
    let Some(python) = common::peer::peer_python("monai, nibabel") else {
        eprintln!("skipped: no peer venv with MONAI (../shared/peer/setup.sh)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    common::run_ok(&[
        "phantom",
        "--out",
        d,
        "--cases",
        "12",
        "--test-cases",
        "3",
        "--random-orientation",
    ]);
    let work = dir.path().join("work");
    let w = work.to_str().unwrap();
    let task = data.join("task.yaml");
    common::run_ok(&["analyze", "-i", task.to_str().unwrap(), "-w", w]);
    let settings = [
        "network.filters=[8, 16, 32, 64]",
        "num_epochs=6",
        "iterations_per_epoch=10",
    ];
    common::generate(&work, "dynunet", "0", &settings);
    let bundle = work.join("bundles/dynunet_0");
    let b = bundle.to_str().unwrap();
    common::run_ok(&["train", "--bundle", b]);
    let ours = dir.path().join("autoseg");
    let images = data.join("imagesTs");
    let predicted = common::run_ok(&[
        "predict",
        "--bundle",
        b,
        "--images",
        images.to_str().unwrap(),
        "--out",
        ours.to_str().unwrap(),
    ]);
    assert!(predicted.contains("mirrored on axes"), "{predicted}");
    common::run_ok(&["export", "--bundle", b, "--format", "monai"]);
    let exported = Bundle::new(&bundle).exports().join("monai");
    for file in [
        "configs/inference.json",
        "configs/metadata.json",
        "models/model.pt",
    ] {
        assert!(exported.join(file).is_file(), "{file}");
    }

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/monai_bundle_run.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .args([&exported, &images, &dir.path().join("monai"), &ours])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(
        out.stdout
            .rsplit(|&b| b == b'\n')
            .find(|l| !l.is_empty())
            .unwrap(),
    )
    .unwrap();
    let cases = report.as_object().unwrap();
    assert_eq!(cases.len(), 3, "{report}");
    for (case, figures) in cases {
        let dice = figures["dice"].as_object().unwrap();
        assert!(
            dice.len() >= 2,
            "{case}: only background predicted: {report}"
        );
        for (label, d) in dice {
            assert!(
                d.as_f64().unwrap() >= 0.99,
                "{case} label {label}: {report}"
            );
        }
    }
    eprintln!("MONAI's run of the export against autoseg predict: {report}");
}
