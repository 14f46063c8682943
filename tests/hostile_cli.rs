//! Issue 22's regression corpus against the release binary: every hostile or broken file is
//! a named error (exit 1 or 2), never a panic, an abort or a hang, in bounded memory; one bad
//! case never stops the others; nothing is written outside the folders asked for.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::limited::run_limited;
use serde_json::json;

/// The most a refusal of a bomb file may take (the bound).
const BOMB_MB: f64 = 200.0;
const LIMIT: Duration = Duration::from_secs(120);

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A healthy phantom image as uncompressed NIfTI bytes (the corpus is built from them).
fn healthy_bytes(root: &Path) -> Vec<u8> {
    let image = autoseg_datasets::Volume::read(&root.join("imagesTr/phantom_000.nii.gz")).unwrap();
    let plain = root.join("healthy.nii");
    image.write(&plain).unwrap();
    std::fs::read(&plain).unwrap()
}

/// Rewrites the datalist with training case 0's image replaced by `image`.
fn with_first_image(root: &Path, image: &Path) -> PathBuf {
    let list = root.join("dataset.json");
    let mut datalist = common::read_yaml(&list);
    datalist["training"][0]["image"] = json!(image.to_str().unwrap());
    let out = root.join(format!(
        "with_{}.json",
        image.file_name().unwrap().to_str().unwrap()
    ));
    std::fs::write(&out, serde_json::to_string(&datalist).unwrap()).unwrap();
    out
}

#[test]
fn every_hostile_image_is_named_by_check_and_analyze_in_bounded_memory() {
    let dir = common::phantom_dataset(3);
    let root = dir.path().join("data");
    let healthy = healthy_bytes(&root);
    let corpus = common::hostile::write_corpus(&root.join("hostile"), &healthy);
    for (path, hostile) in corpus.iter().filter(|(_, h)| h.read_fault) {
        let datalist = with_first_image(&root, path);
        let checked = run_limited(&["check", "--datalist", s(&datalist)], LIMIT);
        checked.assert_refused(hostile.name, hostile.expect, BOMB_MB);
        assert!(checked.output.contains(hostile.file), "{}", checked.output);
        let work = dir.path().join(format!("work_{}", hostile.file));
        let analyzed = run_limited(
            &["analyze", "--datalist", s(&datalist), "-w", s(&work)],
            LIMIT,
        );
        analyzed.assert_refused(hostile.name, hostile.expect, BOMB_MB);
        // The other cases are analyzed, the hostile one listed as failed.
        assert!(
            analyzed.output.contains("analyzed 2 cases"),
            "{}",
            analyzed.output
        );
        let stats = std::fs::read_to_string(work.join("datastats_by_case.yaml")).unwrap();
        assert!(
            stats.contains("failed_cases") && stats.contains(hostile.file),
            "{stats}"
        );
    }
}

#[test]
fn hostile_text_files_are_refused_quickly() {
    let dir = tempfile::tempdir().unwrap();
    // 200 KB of nested flow sequences, once 56 s of parsing.
    let nested = dir.path().join("task.yaml");
    std::fs::write(&nested, format!("datalist: {}", "[".repeat(200_000))).unwrap();
    let out = run_limited(&["check", "--input", s(&nested)], Duration::from_secs(20));
    out.assert_refused("nested YAML", "nested 65 deep", BOMB_MB);
    // A datalist that never ends, and one that is a FIFO.
    let out = run_limited(
        &["check", "--datalist", "/dev/zero"],
        Duration::from_secs(20),
    );
    out.assert_refused("/dev/zero datalist", "not a regular file", BOMB_MB);
    let fifo = dir.path().join("fifo.json");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let out = run_limited(&["check", "--datalist", s(&fifo)], Duration::from_secs(20));
    out.assert_refused("FIFO datalist", "not a regular file", BOMB_MB);
}

#[test]
fn a_fifo_image_and_a_wrapping_fold_are_named() {
    let dir = common::phantom_dataset(3);
    let root = dir.path().join("data");
    let fifo = root.join("imagesTr/fifo.nii.gz");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let datalist = with_first_image(&root, &fifo);
    let out = run_limited(&["check", "--datalist", s(&datalist)], LIMIT);
    out.assert_refused("FIFO image", "not a regular file", BOMB_MB);

    let list = root.join("dataset.json");
    let mut datalist = common::read_yaml(&list);
    for (i, case) in datalist["training"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        case["fold"] = json!(if i == 0 { u64::MAX } else { 0 });
    }
    std::fs::write(&list, serde_json::to_string(&datalist).unwrap()).unwrap();
    let work = dir.path().join("work");
    common::run_ok(&["analyze", "-i", s(&root.join("task.yaml")), "-w", s(&work)]);
    let out = run_limited(&["generate", "-w", s(&work), "--algos", "dynunet"], LIMIT);
    out.assert_refused(
        "fold 2^64-1",
        "fold 1 has no cases (folds must run 0..18446744073709551615",
        BOMB_MB,
    );
}

#[test]
fn mixed_channel_counts_are_set_apart_by_analyze() {
    let dir = common::phantom_dataset(3);
    let root = dir.path().join("data");
    // Case 0 becomes a 2-channel image (the channel twice, as one 4D file).
    let image = autoseg_datasets::Volume::read(&root.join("imagesTr/phantom_000.nii.gz")).unwrap();
    let twice: Vec<f32> = image.data().iter().chain(image.data()).copied().collect();
    let two = image.with_data(2, twice);
    let path = root.join("imagesTr/two_channels.nii.gz");
    two.write(&path).unwrap();
    let datalist = with_first_image(&root, &path);
    let work = dir.path().join("work");
    let out = run_limited(
        &["analyze", "--datalist", s(&datalist), "-w", s(&work)],
        LIMIT,
    );
    out.assert_refused(
        "mixed channels",
        "2 channel(s), where most cases have 1",
        1000.0,
    );
}

/// `autoseg predict` of `images` by `bundle` into `out`, limited.
fn predict(bundle: &Path, images: &Path, out: &Path) -> common::limited::Limited {
    let args = [
        "predict",
        "--bundle",
        s(bundle),
        "--images",
        s(images),
        "--out",
        s(out),
    ];
    run_limited(&args, LIMIT)
}

/// A bundle trained for one short epoch on `cases` phantoms: (temp dir, work dir, bundle).
fn trained_bundle(cases: usize) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let (dir, work) = common::analyzed_phantoms(cases);
    common::generate(
        &work,
        "dynunet",
        "0",
        &[
            "network.filters=[4, 8, 16]",
            "num_epochs=1",
            "iterations_per_epoch=2",
        ],
    );
    let bundle = work.join("bundles/dynunet_0");
    common::run_ok(&["train", "--bundle", s(&bundle)]);
    (dir, work, bundle)
}

#[test]
fn bad_images_fail_alone_in_predict_and_outputs_stay_in_their_folder() {
    let (dir, _work, bundle) = trained_bundle(4);
    let root = dir.path().join("data");
    let healthy = healthy_bytes(&root);
    let images = dir.path().join("to_predict");
    let corpus = common::hostile::write_corpus(&images, &healthy);
    std::fs::write(images.join("good.nii"), &healthy).unwrap();
    // NaN voxels: refused by name rather than predicted as all background.
    let mut nan = autoseg_datasets::Volume::read(&images.join("good.nii")).unwrap();
    nan.data_mut()[5] = f32::NAN;
    nan.write(&images.join("nan.nii")).unwrap();
    let out = dir.path().join("out");
    let run = predict(&bundle, &images, &out);
    run.assert_refused("predict", "1 voxels are NaN or infinite", 2000.0);
    assert!(out.join("good.nii.gz").is_file(), "{}", run.output);
    for (_, hostile) in &corpus {
        assert!(
            run.output.contains(hostile.expect),
            "{}: {}",
            hostile.name,
            run.output
        );
    }
    let written: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
    assert_eq!(written.len(), 1, "{}", run.output);

    // Two testing cases sharing a file stem, one outside the data root: ids are file names,
    // so both predictions land in the output folder and nothing beside the inputs.
    let outside = dir.path().join("elsewhere");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("good.nii"), &healthy).unwrap();
    let list = dir.path().join("testing.json");
    let testing = json!({"testing": [{"image": s(&images.join("good.nii"))},
        {"image": s(&outside.join("good.nii"))}]});
    std::fs::write(&list, testing.to_string()).unwrap();
    let out2 = dir.path().join("out2");
    common::run_ok(&[
        "predict",
        "--bundle",
        s(&bundle),
        "--images",
        s(&list),
        "--out",
        s(&out2),
    ]);
    let mut names: Vec<String> = std::fs::read_dir(&out2)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["good@testing-0.nii.gz", "good@testing-1.nii.gz"]);
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
}

#[test]
fn impossible_inference_settings_name_their_file_and_key() {
    let (dir, _work, bundle) = trained_bundle(4);
    let images = dir.path().join("data/imagesTs");
    let infer = bundle.join("configs/transforms_infer.yaml");
    let original = std::fs::read_to_string(&infer).unwrap();
    for (line, words) in [
        (
            "  roi: [0, 0, 0]",
            "inference.roi: [0, 0, 0] must be positive multiples",
        ),
        ("  roi: [1, 1, 1]", "must be positive multiples"),
        ("  roi: [5000, 5000, 5000]", "voxels, more than"),
        ("  overlap: 1.0", "overlap 1 must be at least 0 and below 1"),
        ("  batch: 0", "batch must be positive"),
    ] {
        let key = line.trim().split(':').next().unwrap();
        let edited: String = original
            .lines()
            .map(|l| {
                if l.starts_with(&format!("  {key}:")) {
                    line
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert_ne!(edited, original.trim_end(), "no `{key}` in {infer:?}");
        std::fs::write(&infer, edited).unwrap();
        let out = dir.path().join("out");
        let run = predict(&bundle, &images, &out);
        run.assert_refused(line, words, 1000.0);
        assert!(
            run.output.contains("transforms_infer.yaml"),
            "{}",
            run.output
        );
    }
    std::fs::write(&infer, &original).unwrap();
    let hyper = bundle.join("configs/hyper_parameters.yaml");
    let work = dir.path().join("work");
    for (setting, words) in [
        (
            "patch_size=[10000, 10000, 10000]",
            "patch_size: [10000, 10000, 10000] is 1.000e12 voxels",
        ),
        ("batch_size=100000000", "GB of activations"),
        (
            "preprocessing.target_spacing=[0, 1, 1]",
            "target_spacing [0.0, 1.0, 1.0] must be finite and positive",
        ),
        (
            "preprocessing.target_spacing=[-1, 1, 1]",
            "must be finite and positive",
        ),
    ] {
        let run = run_limited(
            &[
                "generate",
                "-w",
                s(&work),
                "--algos",
                "dynunet",
                "--folds",
                "0",
                "--set",
                setting,
            ],
            LIMIT,
        );
        run.assert_refused(setting, words, 1000.0);
    }
    // A type error in a config names the file and the key.
    let text = std::fs::read_to_string(&hyper).unwrap();
    std::fs::write(&hyper, text.replace("num_epochs: 1", "num_epochs: abc")).unwrap();
    let run = run_limited(&["train", "--bundle", s(&bundle), "--resume"], LIMIT);
    run.assert_refused(
        "num_epochs: abc",
        "hyper_parameters.yaml: num_epochs: invalid type",
        1000.0,
    );
}

#[test]
fn a_second_training_of_a_bundle_is_refused_naming_the_first() {
    let (_dir, _work, bundle) = trained_bundle(4);
    let lock_file = autoseg_datasets::Bundle::new(&bundle).lock_file();
    let held = autoseg_datasets::lock::acquire(&bundle, &lock_file).unwrap();
    let run = run_limited(&["train", "--bundle", s(&bundle), "--resume"], LIMIT);
    let holder = format!("is in use by pid {}", std::process::id());
    run.assert_refused("second training", &holder, 1000.0);
    drop(held);
    common::run_ok(&["train", "--bundle", s(&bundle), "--resume"]);
}
