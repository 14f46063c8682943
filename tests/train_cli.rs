//! `autoseg train --bundle`: a run killed with SIGKILL mid-epoch leaves only complete files
//! behind, and `--resume` finishes it with the configured number of epochs. `autoseg train
//! --work-dir` killed between trials finishes only the remaining ones.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use autoseg_datasets::Bundle;
use autoseg_templates::networks::Network;
use autoseg_templates::weights;
use autoseg_tuner::train::checkpoint::{RunState, folder};
use autoseg_tuner::train::{TrainConfig, phantom_config};
use common::{THREE_KILLABLE_TRIALS, autoseg, epochs_done, phantom_dataset, text};

const EPOCHS: usize = 8;

/// Every file the run leaves is whole: the state parses, the weights load, the CSV has one
/// row per finished epoch, or one fewer where `killed` (the report is rewritten from the
/// checkpoint after it, so a kill between the two leaves it an epoch behind until resumed).
fn assert_complete(bundle: &Path, config: &TrainConfig, killed: bool) -> RunState {
    let state: RunState =
        serde_json::from_slice(&std::fs::read(folder(bundle).join("state.json")).unwrap()).unwrap();
    let device = burn::tensor::Device::flex();
    let fresh = || -> Network { config.network.init(&device).unwrap() };
    weights::load(fresh(), &folder(bundle).join("model.safetensors")).unwrap();
    weights::load(fresh(), &Bundle::new(bundle).best_weights()).unwrap();
    let csv = std::fs::read_to_string(bundle.join("metrics.csv")).unwrap();
    let rows = csv.lines().count() - 1;
    let lag = usize::from(killed);
    assert!(
        rows <= state.epochs_done && rows + lag >= state.epochs_done,
        "{csv}"
    );
    let columns = |line: &str| line.split(',').count();
    let header = csv.lines().next().unwrap();
    assert!(csv.lines().all(|l| columns(l) == columns(header)), "{csv}");
    let epochs: Vec<usize> = state.history.iter().map(|r| r.epoch).collect();
    assert_eq!(epochs, (1..=state.epochs_done).collect::<Vec<_>>());
    state
}

#[test]
fn a_killed_run_resumes_to_the_same_number_of_epochs() {
    let data = phantom_dataset(6);
    let bundle = data.path().join("bundle");
    let mut config = phantom_config("../data/dataset.json".into());
    config.num_epochs = EPOCHS;
    config.iterations_per_epoch = 6;
    config.patch_size = [16, 16, 16];
    config.data.num_folds = 3;
    config.time_budget_seconds = None;
    config.validation.every = 1;
    config.write(&bundle).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_autoseg"))
        .args(["train", "--bundle", bundle.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while epochs_done(&bundle) < 2 {
        assert!(started.elapsed() < Duration::from_secs(240), "no progress");
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Mid-epoch: a third of an epoch after the second checkpoint.
    std::thread::sleep(Duration::from_millis(400));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let killed = assert_complete(&bundle, &config, true);
    assert!(
        killed.epochs_done >= 2 && killed.epochs_done < EPOCHS,
        "{}",
        killed.epochs_done
    );

    let refused = autoseg(&["train", "--bundle", bundle.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(text(&refused).contains("--resume"), "{}", text(&refused));

    let resumed = autoseg(&["train", "--bundle", bundle.to_str().unwrap(), "--resume"]);
    assert!(resumed.status.success(), "{}", text(&resumed));
    assert!(
        text(&resumed).contains(&format!("{EPOCHS} epochs")),
        "{}",
        text(&resumed)
    );
    let finished = assert_complete(&bundle, &config, false);
    assert_eq!(finished.epochs_done, EPOCHS);
    let losses = |s: &RunState| s.history.iter().map(|r| r.loss).collect::<Vec<_>>();
    assert_eq!(losses(&finished)[..killed.epochs_done], losses(&killed)[..]);
    let leftovers: Vec<_> = std::fs::read_dir(bundle.join("model"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers.len(), 2, "{leftovers:?}"); // last/ and best.safetensors
}

/// The trials ledger's entries as YAML.
fn ledger(work: &Path) -> Vec<serde_yaml::Value> {
    std::fs::read_to_string(work.join("trials.yaml"))
        .ok()
        .and_then(|t| serde_yaml::from_str(&t).ok())
        .unwrap_or_default()
}

#[test]
fn a_killed_work_dir_run_finishes_only_the_remaining_trials() {
    let data = phantom_dataset(6);
    let task = data.path().join("data/task.yaml");
    let work = data.path().join("work");
    let w = work.to_str().unwrap();
    for args in [
        vec!["analyze", "-i", task.to_str().unwrap(), "-w", w],
        [&["generate", "-w", w][..], THREE_KILLABLE_TRIALS].concat(),
    ] {
        let out = autoseg(&args);
        assert!(out.status.success(), "{}", text(&out));
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_autoseg"))
        .args(["train", "--work-dir", w])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let bundle = |fold: usize| work.join(format!("bundles/dynunet_{fold}"));
    let started = Instant::now();
    // Kill once the first trial has finished and the second has a checkpoint.
    while !(ledger(&work).iter().any(|t| t["status"] == "finished") && epochs_done(&bundle(1)) >= 1)
    {
        assert!(started.elapsed() < Duration::from_secs(240), "no progress");
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let first_done = std::fs::read(bundle(0).join("metrics.csv")).unwrap();
    let second_killed_at = epochs_done(&bundle(1));
    assert!(
        second_killed_at < 6,
        "the second trial had finished: kill sooner"
    );

    let rerun = autoseg(&["train", "--work-dir", w]);
    assert!(rerun.status.success(), "{}", text(&rerun));
    let said = text(&rerun);
    assert!(
        !said.contains("dynunet_0"),
        "the finished trial ran again:\n{said}"
    );
    assert!(
        said.contains("dynunet_1") && said.contains("dynunet_2"),
        "{said}"
    );
    assert_eq!(
        std::fs::read(bundle(0).join("metrics.csv")).unwrap(),
        first_done
    );
    for fold in 0..3 {
        assert_eq!(epochs_done(&bundle(fold)), 8, "fold {fold}");
    }
    let entries = ledger(&work);
    assert_eq!(entries.len(), 3);
    assert!(
        entries.iter().all(|t| t["status"] == "finished"),
        "{entries:?}"
    );
    // The resumed trial kept the epochs from before the kill.
    let csv = std::fs::read_to_string(bundle(1).join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 9);

    let ranked = autoseg(&["rank", "-w", w]);
    assert!(ranked.status.success(), "{}", text(&ranked));
    let ranking: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(work.join("ranking.yaml")).unwrap()).unwrap();
    assert_eq!(ranking["algos"][0]["algo"], "dynunet");
    assert_eq!(ranking["algos"][0]["folds"].as_mapping().unwrap().len(), 3);
}

/// `train --find-lr` runs the range test on the bundle's own data and writes its result and
/// picture, leaving the bundle untrained.
#[test]
fn the_learning_rate_range_test_writes_a_suggestion_and_a_plot() {
    let (_dir, work) = common::analyzed_phantoms(6);
    common::generate(
        &work,
        "dynunet",
        "0",
        &["network.filters=[4, 8, 16]", "batch_size=1"],
    );
    let bundle = work.join("bundles/dynunet_0");
    let said = common::run_ok(&["train", "--bundle", bundle.to_str().unwrap(), "--find-lr"]);
    assert!(said.contains("lr_finder.yaml"), "{said}");
    let result = common::read_yaml(&bundle.join("lr_finder.yaml"));
    let lrs = result["lrs"].as_array().unwrap();
    let losses = result["losses"].as_array().unwrap();
    assert!(lrs.len() > 20 && lrs.len() == losses.len(), "{result}");
    assert!(
        lrs.windows(2).all(|w| w[0].as_f64() < w[1].as_f64()),
        "rates grow"
    );
    if let Some(lr) = result["suggestion"].as_f64() {
        assert!((1e-6..=10.0).contains(&lr), "{lr}");
        assert!(said.contains("learning_rate"), "{said}");
    }
    let png = std::fs::read(bundle.join("lr_finder.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    assert!(!bundle.join("model").exists(), "the bundle stays untrained");
}

/// `--init-weights` starts training from another run's weights (fine-tuning): every
/// parameter that fits loads, what loaded is written down, and weights of another network
/// are refused naming the file.
#[test]
fn init_weights_start_a_bundle_from_another_runs_weights() {
    let (_dir, work) = common::analyzed_phantoms(6);
    let small = ["network.filters=[4, 8, 16]", "batch_size=1", "num_epochs=1"];
    let quick = [&small[..], &["iterations_per_epoch=2"]].concat();
    common::generate(&work, "dynunet", "0", &quick);
    let first = work.join("bundles/dynunet_0");
    common::run_ok(&["train", "--bundle", first.to_str().unwrap()]);
    let weights = Bundle::new(&first).best_weights();

    let w = work.to_str().unwrap();
    let mut args = vec!["generate", "-w", w, "--algos", "dynunet", "--folds", "1"];
    args.extend(["--init-weights", weights.to_str().unwrap()]);
    for s in &quick {
        args.extend(["--set", s]);
    }
    common::run_ok(&args);
    let second = Bundle::new(work.join("bundles/dynunet_1"));
    let said = common::run_ok(&["train", "--bundle", second.dir().to_str().unwrap()]);
    let report = common::read_yaml(&second.init_report());
    let loaded = report["loaded"].as_array().unwrap();
    assert!(loaded.len() > 20, "{report}");
    assert!(report["fresh"].as_array().unwrap().is_empty(), "{report}");
    assert!(said.contains("parameters loaded"), "{said}");

    // A wider network's weights do not fit: `train --init-weights` refuses them, naming
    // the file.
    let wider = [&quick[..], &["network.filters=[8, 16, 32]"]].concat();
    common::generate(&work, "dynunet", "2", &wider);
    let third = work.join("bundles/dynunet_2");
    let refused = autoseg(&[
        "train",
        "--bundle",
        third.to_str().unwrap(),
        "--init-weights",
        weights.to_str().unwrap(),
    ]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("best.safetensors") && text(&refused).contains("another network"),
        "{}",
        text(&refused)
    );
    let missing = autoseg(&["generate", "-w", w, "--init-weights", "/no/such.pt"]);
    assert!(text(&missing).contains("/no/such.pt"), "{}", text(&missing));
}
