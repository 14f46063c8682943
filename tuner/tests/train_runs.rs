//! Training runs are reproducible and refuse to overwrite a previous run.

use std::path::{Path, PathBuf};

use autoseg_datasets::phantom::{PhantomSpec, write_dataset};
use autoseg_templates::ComputeDevice;
use autoseg_tuner::train::{TrainConfig, TrainOptions, phantom_config, train};

/// A phantom dataset and a short bundle on it.
fn short_bundle(root: &Path) -> PathBuf {
    write_dataset(
        &PhantomSpec {
            cases: 6,
            test_cases: 0,
            ..PhantomSpec::default()
        },
        &root.join("data"),
    )
    .unwrap();
    let bundle = root.join("bundle");
    let mut config = phantom_config("../data/dataset.json".into());
    config.num_epochs = 1;
    config.iterations_per_epoch = 3;
    config.patch_size = [16, 16, 16];
    config.data.num_folds = 3;
    config.write(&bundle).unwrap();
    bundle
}

fn options(resume: bool) -> TrainOptions {
    TrainOptions {
        stop_after_epochs: None,
        time_budget_seconds: None,
        device: ComputeDevice::Flex,
        resume,
        progress_bars: false,
    }
}

#[test]
fn two_runs_with_one_seed_give_identical_first_epoch_losses() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = short_bundle(dir.path());
    let first = train(&bundle, &options(false)).unwrap();
    std::fs::remove_dir_all(bundle.join("model")).unwrap();
    let second = train(&bundle, &options(false)).unwrap();
    assert_eq!(first.history[0].loss, second.history[0].loss);
    assert!(first.history[0].loss.is_finite());
}

#[test]
fn a_time_budget_ends_an_epoch_that_would_outlast_it() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = short_bundle(dir.path());
    let mut config = TrainConfig::read(&bundle).unwrap();
    // Hours of steps in one epoch, against a budget of a second.
    config.iterations_per_epoch = 1_000_000;
    config.num_epochs = 3;
    config.write(&bundle).unwrap();
    let started = std::time::Instant::now();
    let options = TrainOptions {
        time_budget_seconds: Some(1.0),
        ..options(false)
    };
    let run = train(&bundle, &options).unwrap();
    assert_eq!(
        run.epochs_done, 1,
        "the budget ends the run in its first epoch"
    );
    assert!(
        run.stopped_because.contains("time budget"),
        "{}",
        run.stopped_because
    );
    assert!(
        run.history[0].dice.is_some(),
        "the epoch cut short still validates"
    );
    let seconds = started.elapsed().as_secs_f64();
    assert!(seconds < 120.0, "the epoch went on for {seconds:.0} s");
}

#[test]
fn an_existing_run_is_continued_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = short_bundle(dir.path());
    train(&bundle, &options(false)).unwrap();
    let err = train(&bundle, &options(false)).unwrap_err().to_string();
    assert!(err.contains("--resume") && err.contains("model"), "{err}");
    // Resuming a finished run has nothing left to do but the files its last epoch wrote
    // after the checkpoint (a run killed between the two loses no finish).
    let progress = bundle.join("progress.yaml");
    std::fs::remove_file(&progress).unwrap();
    let again = train(&bundle, &options(true)).unwrap();
    assert_eq!(again.epochs_done, 1);
    assert_eq!(again.history.len(), 1);
    let progress = std::fs::read_to_string(progress).unwrap();
    assert!(
        progress.contains("status: finished") && progress.contains("epochs_done: 1"),
        "{progress}"
    );
}

#[test]
fn a_misspelt_configuration_key_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = short_bundle(dir.path());
    let path = bundle.join("configs/hyper_parameters.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("num_epochs:", "num_epoch:");
    std::fs::write(&path, text).unwrap();
    let err = train(&bundle, &options(false)).unwrap_err().to_string();
    assert!(
        err.contains("hyper_parameters.yaml") && err.contains("num_epoch"),
        "{err}"
    );
}

#[test]
fn early_stopping_and_the_time_budget_end_a_run_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = short_bundle(dir.path());
    let mut config = autoseg_tuner::train::TrainConfig::read(&bundle).unwrap();
    config.num_epochs = 6;
    config.iterations_per_epoch = 1;
    config.learning_rate = 1e-12; // nothing changes, so no validation improves on the first
    config.early_stop_patience = Some(1);
    config.validation.every = 1;
    config.write(&bundle).unwrap();
    let stopped = train(&bundle, &options(false)).unwrap();
    assert_eq!(stopped.epochs_done, 2, "{}", stopped.stopped_because);
    assert!(
        stopped
            .stopped_because
            .contains("no better validation Dice"),
        "{}",
        stopped.stopped_because
    );

    // Resumed, an early-stopped run stays stopped.
    let resumed = train(&bundle, &options(true)).unwrap();
    assert_eq!(resumed.epochs_done, 2, "{}", resumed.stopped_because);

    std::fs::remove_dir_all(bundle.join("model")).unwrap();
    config.early_stop_patience = None;
    config.time_budget_seconds = Some(1e-3);
    config.write(&bundle).unwrap();
    let spent = train(&bundle, &options(false)).unwrap();
    assert_eq!(spent.epochs_done, 1);
    assert!(
        spent.stopped_because.contains("time budget"),
        "{}",
        spent.stopped_because
    );
}

#[test]
fn a_paused_run_validates_its_last_epoch_and_resumes_on_the_same_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = short_bundle(dir.path());
    let mut config = autoseg_tuner::train::TrainConfig::read(&bundle).unwrap();
    config.num_epochs = 3;
    config.validation.every = 10;
    config.write(&bundle).unwrap();
    let paused = train(
        &bundle,
        &TrainOptions {
            stop_after_epochs: Some(1),
            ..options(false)
        },
    )
    .unwrap();
    assert_eq!(paused.epochs_done, 1);
    assert_eq!(paused.stopped_because, "paused after epoch 1");
    assert!(
        paused.history[0].dice.is_some(),
        "the pause epoch validates"
    );
    let progress = std::fs::read_to_string(bundle.join("progress.yaml")).unwrap();
    assert!(progress.contains("status: training"), "{progress}");
    let done = train(&bundle, &options(true)).unwrap();
    assert_eq!(done.epochs_done, 3);
    assert_eq!(done.history[0], paused.history[0]);
    // The schedule spans the configured 3 epochs either way.
    std::fs::remove_dir_all(bundle.join("model")).unwrap();
    let straight = train(&bundle, &options(false)).unwrap();
    let rates = |h: &[autoseg_tuner::train::checkpoint::EpochRecord]| {
        h.iter().map(|r| r.learning_rate).collect::<Vec<_>>()
    };
    assert_eq!(rates(&done.history), rates(&straight.history));
}
