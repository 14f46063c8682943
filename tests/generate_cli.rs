//! `autoseg generate`, `inspect` and `predict` end to end: nnU-Net's plan on Task04, bundles
//! whose hand edits drive training and prediction, bundles that move with their data, and
//! bad input named.

mod common;

use std::path::{Path, PathBuf};

use autoseg_datasets::{LabelVolume, Volume};
use serde_json::Value;

/// The merged configuration of a bundle.
fn config(bundle: &Path) -> Value {
    let mut merged = serde_json::Map::new();
    for entry in std::fs::read_dir(bundle.join("configs")).unwrap() {
        if let Value::Object(map) = common::read_yaml(&entry.unwrap().path()) {
            merged.extend(map);
        }
    }
    Value::Object(merged)
}

/// Rewrites one configuration file through a closure on its YAML.
fn edit(file: &Path, change: impl FnOnce(&mut Value)) {
    let mut value = common::read_yaml(file);
    change(&mut value);
    std::fs::write(file, serde_yaml::to_string(&value).unwrap()).unwrap();
}

fn analyze_and_generate(task: &Path, work: &Path, extra: &[&str]) -> String {
    common::run_ok(&[
        "analyze",
        "--input",
        task.to_str().unwrap(),
        "-w",
        work.to_str().unwrap(),
    ]);
    let mut args = vec!["generate", "-w", work.to_str().unwrap()];
    args.extend_from_slice(extra);
    common::run_ok(&args)
}

/// The derivation record of `key` in a bundle's derivation.yaml.
fn derived(bundle: &Path, key: &str) -> Value {
    let derivation = common::read_yaml(&bundle.join("derivation.yaml"));
    derivation["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["key"] == key)
        .unwrap_or_else(|| panic!("no record of {key}"))
        .clone()
}

fn inspect_json(dir: &Path) -> Value {
    serde_json::from_str(&common::run_ok(&[
        "inspect",
        dir.to_str().unwrap(),
        "--json",
    ]))
    .unwrap()
}

#[test]
fn task04_dynunet_plan_equals_nnunets_and_a_short_budget_swaps_only_the_recipe() {
    let data = common::shared_data().join("Task04_Hippocampus/dataset.json");
    let work = tempfile::tempdir().unwrap();
    let w = work.path().to_str().unwrap();
    common::run_ok(&["analyze", "--datalist", data.to_str().unwrap(), "-w", w]);
    common::run_ok(&["generate", "-w", w, "--algos", "dynunet", "--folds", "0"]);
    let ours = config(&work.path().join("bundles/dynunet_0"));
    let text = std::fs::read_to_string(
        common::shared_data().join("reference-outputs/nnunet_Dataset004_nnUNetPlans.json"),
    )
    .unwrap();
    let plans: Value = serde_json::from_str(&text).unwrap();
    let fullres = &plans["configurations"]["3d_fullres"];
    let arch = &fullres["architecture"]["arch_kwargs"];
    // nnU-Net lists the file's axes reversed; Task04's files are RAS, so ours reversed.
    let reversed = |v: &Value| -> Value {
        Value::Array(v.as_array().unwrap().iter().rev().cloned().collect())
    };
    let reversed_each =
        |v: &Value| -> Value { Value::Array(v.as_array().unwrap().iter().map(reversed).collect()) };
    assert_eq!(reversed(&ours["patch_size"]), fullres["patch_size"]);
    let spacing: Vec<f64> =
        serde_json::from_value(ours["preprocessing"]["target_spacing"].clone()).unwrap();
    let theirs: Vec<f64> = serde_json::from_value(fullres["spacing"].clone()).unwrap();
    assert_eq!(spacing.iter().rev().cloned().collect::<Vec<_>>(), theirs);
    assert_eq!(ours["network"]["filters"], arch["features_per_stage"]);
    assert_eq!(reversed_each(&ours["network"]["strides"]), arch["strides"]);
    assert_eq!(
        reversed_each(&ours["network"]["kernel_sizes"]),
        arch["kernel_sizes"]
    );
    assert_eq!(ours["batch_size"], fullres["batch_size"]);
    // ZScoreNormalization without the non-zero mask (use_mask_for_norm: false).
    assert_eq!(fullres["normalization_schemes"][0], "ZScoreNormalization");
    assert_eq!(fullres["use_mask_for_norm"][0], false);
    assert_eq!(ours["preprocessing"]["normalization"]["name"], "z_score");
    // The derivation names the statistics each value came from.
    let bundle = work.path().join("bundles/dynunet_0");
    let patch = derived(&bundle, "patch_size");
    assert!(
        patch["inputs"]
            .get("median shape at the target spacing")
            .is_some()
    );
    assert_eq!(ours["optimizer"]["name"], "sgd");

    // A budget of hours keeps nnU-Net's plan and swaps its recipe for the short one.
    let base = ["generate", "-w", w, "--algos", "dynunet", "--folds", "0"];
    let budget = ["--time-budget", "5400", "--force"];
    common::run_ok(&[&base[..], &budget[..]].concat());
    let short = config(&bundle);
    for key in [
        "patch_size",
        "network",
        "preprocessing",
        "augment",
        "sampling",
    ] {
        assert_eq!(short[key], ours[key], "{key}");
    }
    assert_eq!(short["loss"]["loss"]["name"], ours["loss"]["loss"]["name"]);
    assert_eq!(short["optimizer"]["name"], "adam_w");
    assert_eq!(short["learning_rate"], 0.003);
    assert_eq!(short["schedule"]["name"], "warmup_cosine");
    assert_eq!(short["batch_size"], 2);
    assert_eq!(short["iterations_per_epoch"], 50);
    assert_eq!(short["loss"]["loss"]["batch"], true);
    assert_eq!(short["validation"]["every"], 4);
    assert_eq!(short["time_budget_seconds"], 5400.0);
    let optimizer = derived(&bundle, "optimizer");
    assert!(
        optimizer["rule"]
            .as_str()
            .unwrap()
            .contains("under 12 hours")
    );
    assert_eq!(optimizer["inputs"]["resources.time_budget_seconds"], 5400.0);

    // On CPU cores alone the same budget also halves the widths, and nothing else.
    common::run_ok(&[&base[..], &budget[..], &["--cpu"][..]].concat());
    let cpu = config(&bundle);
    assert_eq!(
        cpu["network"]["filters"],
        serde_json::json!([16, 32, 64, 128])
    );
    let mut widths_back = cpu.clone();
    widths_back["network"]["filters"] = ours["network"]["filters"].clone();
    assert_eq!(widths_back, short);
    let filters = derived(&bundle, "network.filters");
    assert_eq!(filters["inputs"]["resources.cpu_only"], true, "{filters}");
    // Without a short budget, --cpu keeps nnU-Net's widths.
    common::run_ok(&[&base[..], &["--force", "--cpu"][..]].concat());
    assert_eq!(config(&bundle)["network"], ours["network"]);
}

/// Copies a folder tree.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn assert_prediction_overlays(prediction: &Path, image: &Path) {
    let labels = LabelVolume::read(prediction).unwrap();
    let image = Volume::read(image).unwrap();
    assert_eq!(labels.dims(), image.dims());
    assert_eq!(labels.affine(), image.affine());
}

/// `predict --probabilities`' map beside a label map: one channel per class on the image's
/// grid, summing to 1, whose argmax is the label map (a lone bundle cleans nothing up).
fn assert_probabilities_explain_labels(maps: &Path, prediction: &Path, classes: usize) {
    let maps = Volume::read(maps).unwrap();
    let labels = LabelVolume::read(prediction).unwrap();
    assert_eq!(maps.channels(), classes);
    assert_eq!(
        (maps.dims(), maps.affine()),
        (labels.dims(), labels.affine())
    );
    for (v, &label) in labels.data().iter().enumerate() {
        let p: Vec<f32> = (0..classes).map(|k| maps.channel(k)[v]).collect();
        let sum: f32 = p.iter().sum();
        assert!(
            (sum - 1.0).abs() < 1e-4,
            "voxel {v}: probabilities sum to {sum}"
        );
        let best = (0..classes).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
        assert_eq!(best as u16, label, "voxel {v}: {p:?}");
    }
}

#[test]
fn hand_edits_drive_training_and_prediction_and_bundles_move_with_their_data() {
    let dir = common::phantom_dataset(8);
    let root = dir.path();
    let task = root.join("data/task.yaml");
    let work = root.join("work");
    analyze_and_generate(
        &task,
        &work,
        &[
            "--algos",
            "dynunet",
            "--folds",
            "0",
            "--set",
            "network.filters=[4, 8, 16]",
            "--set",
            "num_epochs=3",
            "--set",
            "iterations_per_epoch=2",
            "--set",
            "validation.every=1",
        ],
    );
    let bundle = work.join("bundles/dynunet_0");
    let before = inspect_json(&bundle);

    // Edit three files by hand: epochs, network width, inference window.
    let configs = bundle.join("configs");
    edit(&configs.join("hyper_parameters.yaml"), |v| {
        v["num_epochs"] = 2.into()
    });
    edit(&configs.join("network.yaml"), |v| {
        v["network"]["filters"] = serde_json::json!([6, 12, 24])
    });
    edit(&configs.join("transforms_infer.yaml"), |v| {
        v["inference"]["roi"] = serde_json::json!([8, 8, 6]);
        v["inference"]["mirror_axes"] = serde_json::json!([0, 2]);
    });
    let after = inspect_json(&bundle);
    assert_ne!(before["parameters"], after["parameters"]);
    let filters = after["derived"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["key"] == "network.filters")
        .unwrap();
    assert_eq!(filters["edited"], true, "{filters}");
    assert_eq!(filters["overridden"]["source"], "--set");

    common::run_ok(&["train", "--bundle", bundle.to_str().unwrap()]);
    let trained = inspect_json(&bundle);
    assert_eq!(trained["metrics"].as_array().unwrap().len(), 2, "{trained}");
    assert_eq!(trained["training"]["status"], "finished");
    let progress = common::read_yaml(&bundle.join("progress.yaml"));
    assert_eq!(progress["epochs_done"], 2);
    assert_eq!(progress["num_epochs"], 2);

    let datalist = root.join("data/dataset.json");
    let out = root.join("predicted");
    let said = common::run_ok(&[
        "predict",
        "--bundle",
        bundle.to_str().unwrap(),
        "--images",
        datalist.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        said.contains("window [8, 8, 6], overlap 0.5, mirrored on axes [0, 2]"),
        "{said}"
    );
    let case = "phantom_008.nii.gz";
    assert_prediction_overlays(&out.join(case), &root.join("data/imagesTs").join(case));

    // The data and work dir moved together: training resumes and prediction runs there.
    let moved = tempfile::tempdir().unwrap();
    copy_tree(root, moved.path());
    std::fs::remove_dir_all(root.join("data")).unwrap();
    let moved_bundle = moved.path().join("work/bundles/dynunet_0");
    edit(&moved_bundle.join("configs/hyper_parameters.yaml"), |v| {
        v["num_epochs"] = 3.into()
    });
    common::run_ok(&[
        "train",
        "--bundle",
        moved_bundle.to_str().unwrap(),
        "--resume",
    ]);
    assert_eq!(
        common::read_yaml(&moved_bundle.join("progress.yaml"))["epochs_done"],
        3
    );

    // A trained bundle alone, anywhere, still predicts (a folder of images here).
    let elsewhere = tempfile::tempdir().unwrap();
    let lone: PathBuf = elsewhere.path().join("dynunet_0");
    copy_tree(&moved_bundle, &lone);
    let images = moved.path().join("data/imagesTs");
    let out = elsewhere.path().join("out");
    common::run_ok(&[
        "predict",
        "--bundle",
        lone.to_str().unwrap(),
        "--images",
        images.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--probabilities",
    ]);
    assert_prediction_overlays(&out.join(case), &images.join(case));
    let maps = out.join("phantom_008_probabilities.nii.gz");
    assert_probabilities_explain_labels(&maps, &out.join(case), 3);
}

#[test]
fn every_template_trains_and_predicts_and_thick_slices_get_a_2d_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    common::run_ok(&[
        "phantom",
        "--out",
        data.to_str().unwrap(),
        "--cases",
        "6",
        "--shape",
        "24,24,8",
        "--spacing",
        "0.8,0.8,4",
    ]);
    let work = dir.path().join("work");
    let narrow = [
        "--folds",
        "0",
        "--set",
        "dynunet:network.filters=[4, 8, 16]",
        "--set",
        "segresnet:network.init_filters=4",
        "--set",
        "segresnet2d:network.init_filters=4",
        "--set",
        "num_epochs=1",
        "--set",
        "iterations_per_epoch=2",
        "--set",
        "batch_size=2",
    ];
    let said = analyze_and_generate(&data.join("task.yaml"), &work, &narrow);
    assert!(said.contains("segresnet2d_0"), "{said}");
    for algo in ["dynunet", "segresnet", "segresnet2d"] {
        let bundle = work.join(format!("bundles/{algo}_0"));
        let b = bundle.to_str().unwrap();
        common::run_ok(&["train", "--bundle", b]);
        let out = dir.path().join(format!("predicted-{algo}"));
        let datalist = data.join("dataset.json");
        common::run_ok(&[
            "predict",
            "--bundle",
            b,
            "--images",
            datalist.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        let case = "phantom_006.nii.gz";
        assert_prediction_overlays(&out.join(case), &data.join("imagesTs").join(case));
    }
    let planar = config(&work.join("bundles/segresnet2d_0"));
    assert_eq!(planar["network"]["spatial_dims"], 2);
    assert_eq!(planar["patch_size"][2], 1);
    assert_eq!(planar["preprocessing"]["target_spacing"], Value::Null);
    // nnU-Net keeps the thick axis apart: no pooling or 3-wide kernel along z at first.
    let unet = config(&work.join("bundles/dynunet_0"));
    assert_eq!(unet["network"]["kernel_sizes"][0][2], 1);

    let iso = common::phantom_dataset(4);
    let said = analyze_and_generate(
        &iso.path().join("data/task.yaml"),
        &iso.path().join("work"),
        &["--folds", "0"],
    );
    assert!(
        said.contains("segresnet2d      skipped: median z spacing"),
        "{said}"
    );
}

#[test]
fn bad_input_is_named() {
    let dir = common::phantom_dataset(4);
    let work = dir.path().join("work");
    let w = work.to_str().unwrap();
    let out = common::autoseg(&["generate", "-w", w]);
    assert_eq!(out.status.code(), Some(2));
    common::assert_output_contains(&out, "run `autoseg analyze`");

    analyze_and_generate(
        &dir.path().join("data/task.yaml"),
        &work,
        &["--algos", "dynunet"],
    );
    for (args, words) in [
        (vec!["--set", "num_epochs"], "expected key=value"),
        (vec!["--algos", "nope"], "no template called `nope`"),
        (vec!["--set", "num_epochs=0"], "num_epochs must be positive"),
        (
            vec!["--set", "optimizer.momentun=0.9"],
            "unknown key optimizer.momentun",
        ),
    ] {
        let mut all = vec!["generate", "-w", w];
        all.extend(args);
        let out = common::autoseg(&all);
        assert_eq!(out.status.code(), Some(2), "{}", common::text(&out));
        common::assert_output_contains(&out, words);
    }
    // Overlapping regions without the order that decides the written label are refused.
    let task = work.join("input.yaml");
    let recorded = std::fs::read_to_string(&task).unwrap();
    let regions = "class_names:\n- {name: whole, index: [1, 2]}\n- {name: lesion, index: [2]}\n";
    let with_regions: String = recorded
        .lines()
        .filter(|l| !l.starts_with("class_names") && !l.starts_with("- "))
        .map(|l| format!("{l}\n"))
        .chain([regions.to_string()])
        .collect();
    std::fs::write(&task, with_regions).unwrap();
    let out = common::autoseg(&["generate", "-w", w, "--force"]);
    assert_eq!(out.status.code(), Some(2), "{}", common::text(&out));
    common::assert_output_contains(&out, "regions `whole` and `lesion` share label ids");
    std::fs::write(&task, recorded).unwrap();

    let bundle = work.join("bundles/dynunet_0");
    edit(&bundle.join("configs/network.yaml"), |v| {
        v["network"]["filterz"] = 1.into()
    });
    let out = common::autoseg(&["train", "--bundle", bundle.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    common::assert_output_contains(&out, "network.yaml: unknown key network.filterz");
    let predict = || {
        common::autoseg(&[
            "predict",
            "--bundle",
            bundle.to_str().unwrap(),
            "--images",
            w,
            "--out",
            w,
        ])
    };
    let out = predict();
    assert_eq!(out.status.code(), Some(2));
    common::assert_output_contains(&out, "network.yaml: network: unknown key filterz");
    edit(&bundle.join("configs/network.yaml"), |v| {
        v["network"].as_object_mut().unwrap().remove("filterz");
    });
    edit(&bundle.join("configs/transforms_infer.yaml"), |v| {
        v["inference"]["mirror_axes"] = serde_json::json!([0, 3]);
    });
    let out = predict();
    assert_eq!(out.status.code(), Some(2));
    common::assert_output_contains(&out, "transforms_infer.yaml: inference.mirror_axes [0, 3]");
}

#[test]
fn an_lps_image_resampled_for_the_network_is_predicted_on_its_own_grid() {
    // TotalSegmentator's MR example is stored LPS; the bundle resamples it to 1.5x1.5x3 mm.
    let mr = common::shared_data().join("TotalSegmentator-examples/mr");
    let work = tempfile::tempdir().unwrap();
    let w = work.path().to_str().unwrap();
    let datalist = mr.join("dataset.json");
    common::run_ok(&["analyze", "--datalist", datalist.to_str().unwrap(), "-w", w]);
    common::run_ok(&[
        "generate",
        "-w",
        w,
        "--algos",
        "dynunet",
        "--folds",
        "0",
        "--set",
        "network.filters=[4, 8, 16, 32, 64]",
        "--set",
        "preprocessing.target_spacing=[1.5, 1.5, 3.0]",
    ]);
    let bundle = work.path().join("bundles/dynunet_0");
    // Untrained weights: the geometry, not the segmentation, is under test.
    let config = autoseg_tuner::train::TrainConfig::read(&bundle).unwrap();
    let network = config.network.init(&burn::tensor::Device::flex()).unwrap();
    let weights = bundle.join("model/best.safetensors");
    autoseg_templates::weights::save(&network, &weights).unwrap();

    let out = work.path().join("predicted");
    let images = mr.join("imagesTr");
    common::run_ok(&[
        "predict",
        "--bundle",
        bundle.to_str().unwrap(),
        "--images",
        images.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let case = "example_mr_sm.nii.gz";
    assert_prediction_overlays(&out.join(case), &images.join(case));
    let labels = LabelVolume::read(&out.join(case)).unwrap();
    let known = &config.preprocessing.labels;
    assert!(labels.data().iter().all(|l| known.contains(l)));
}
