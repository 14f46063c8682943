//! Predicting labels alone streams the volume slab by slab (the memory of a window's depth
//! of classes, not of the volume, its sums in f16 as nnU-Net keeps them); predicting
//! probabilities too holds every class in f32. Both must give the same label maps but where
//! two classes nearly tie (f16's rounding, 2^-11 of a sum, decides those): for one bundle,
//! and for ensembles under `mean` (members sharing a stream, and members on two grids with
//! two windows) and `vote`, on phantoms in random orientations whose bundles resample (so
//! probabilities are brought back).

mod common;

use std::path::Path;

use autoseg_datasets::LabelVolume;

/// `autoseg predict` with `model` (`-b B` or `-w W`) into `dir/folder`, with probabilities
/// or not; the label maps, by case.
fn predict(dir: &Path, model: &[&str], folder: &str, probabilities: bool) -> Vec<LabelVolume> {
    let out = dir.join(folder);
    let images = dir.join("data/imagesTs");
    let mut args = vec!["predict", "--images", images.to_str().unwrap()];
    args.extend(["--out", out.to_str().unwrap()]);
    args.extend(model);
    if probabilities {
        args.push("--probabilities");
    }
    common::run_ok(&args);
    (12..15)
        .map(|i| LabelVolume::read(&out.join(format!("phantom_{i:03}.nii.gz"))).unwrap())
        .collect()
}

fn assert_same(dir: &Path, model: &[&str], what: &str) {
    let alone = predict(dir, model, &format!("{what}_alone"), false);
    let with = predict(dir, model, &format!("{what}_with"), true);
    for (case, (a, b)) in alone.iter().zip(&with).enumerate() {
        let differ = a
            .data()
            .iter()
            .zip(b.data())
            .filter(|(x, y)| x != y)
            .count();
        let share = differ as f64 / a.data().len() as f64;
        eprintln!("{what}, testing case {case}: {differ} voxels differ");
        assert!(
            share < 1e-4,
            "{what}, testing case {case}: {differ} voxels differ"
        );
    }
    let foreground = alone
        .iter()
        .flat_map(|l| l.data())
        .filter(|&&v| v != 0)
        .count();
    assert!(
        foreground > 100,
        "{what}: only {foreground} foreground voxels"
    );
}

#[test]
fn labels_alone_equal_labels_with_probabilities() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let phantoms = ["phantom", "--out", d, "--cases", "12", "--test-cases", "3"];
    common::run_ok(&[&phantoms[..], &["--random-orientation"]].concat());
    let work = dir.path().join("work");
    let w = work.to_str().unwrap();
    common::run_ok(&[
        "analyze",
        "-i",
        data.join("task.yaml").to_str().unwrap(),
        "-w",
        w,
    ]);
    let settings = [
        "network.filters=[8, 16, 32, 64]",
        "num_epochs=6",
        "iterations_per_epoch=10",
        "preprocessing.target_spacing=[1.3, 1.3, 1.2]",
    ];
    common::generate(&work, "dynunet", "0,1", &settings);
    common::run_ok(&["train", "-w", w]);
    let bundle = work.join("bundles/dynunet_0");
    assert_same(dir.path(), &["-b", bundle.to_str().unwrap()], "bundle");
    common::run_ok(&["rank", "-w", w]);
    common::run_ok(&["ensemble", "-w", w]);
    assert_same(dir.path(), &["-w", w], "mean");
    common::run_ok(&["ensemble", "-w", w, "--combine", "vote"]);
    assert_same(dir.path(), &["-w", w], "vote");
    // Fold 1 on a grid and window of its own: two streams, averaged plane by plane.
    let fold_1 = work.join("bundles/dynunet_1/configs");
    edit_yaml(&fold_1.join("transforms_train.yaml"), |v| {
        v["preprocessing"]["target_spacing"] = serde_json::json!([1.2, 1.4, 1.1]);
    });
    edit_yaml(&fold_1.join("transforms_infer.yaml"), |v| {
        v["inference"]["overlap"] = serde_json::json!(0.6);
    });
    common::run_ok(&["ensemble", "-w", w]);
    assert_same(dir.path(), &["-w", w], "mean_two_grids");
    let read = |folder: &str| {
        LabelVolume::read(&dir.path().join(folder).join("phantom_012.nii.gz")).unwrap()
    };
    assert_ne!(
        read("mean_alone").data(),
        read("mean_two_grids_alone").data(),
        "fold 1's own grid and window change the ensemble's labels somewhere"
    );
}

fn edit_yaml(file: &Path, change: impl FnOnce(&mut serde_json::Value)) {
    let mut value = common::read_yaml(file);
    change(&mut value);
    std::fs::write(file, serde_yaml::to_string(&value).unwrap()).unwrap();
}
