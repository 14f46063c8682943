//! TensorBoard's own reader (the `tensorboard` package in the peer's venv) reads back every
//! scalar a training run logged, epoch by epoch. Runs where the peer is installed
//! (`../shared/peer/setup.sh --interop`, or `PEER_PY` naming its python); says so and passes
//! where it is not.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use autoseg_datasets::Bundle;
use autoseg_datasets::phantom::{PhantomSpec, write_dataset};
use autoseg_templates::ComputeDevice;
use autoseg_tuner::train::{TrainOptions, phantom_config, train};

#[path = "../../tests/common/peer.rs"]
mod peer;

#[test]
fn tensorboard_reads_back_every_scalar_of_a_run() {
    let Some(python) = peer::peer_python("tensorboard") else {
        eprintln!("skipped: no peer venv with tensorboard (../shared/peer/setup.sh --interop)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let spec = PhantomSpec {
        cases: 6,
        test_cases: 0,
        ..PhantomSpec::default()
    };
    write_dataset(&spec, &dir.path().join("data")).unwrap();
    let bundle = dir.path().join("bundle");
    let mut config = phantom_config("../data/dataset.json".into());
    (config.num_epochs, config.iterations_per_epoch) = (3, 2);
    config.patch_size = [16, 16, 16];
    config.data.num_folds = 3;
    config.validation.every = 2;
    config.write(&bundle).unwrap();
    let options = TrainOptions {
        stop_after_epochs: None,
        time_budget_seconds: None,
        device: ComputeDevice::Flex,
        resume: false,
        progress_bars: false,
    };
    let run = train(&bundle, &options).unwrap();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/read_tensorboard.py");
    let out = Command::new(python)
        .arg(script)
        .arg(Bundle::new(&bundle).logs())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: BTreeMap<String, Vec<(i64, f32)>> = serde_json::from_slice(&out.stdout).unwrap();

    let mut expected: BTreeMap<String, Vec<(i64, f32)>> = BTreeMap::new();
    let labels = &config.preprocessing.labels;
    for r in &run.history {
        let step = r.epoch as i64;
        let mut put = |tag: String, v: f64| expected.entry(tag).or_default().push((step, v as f32));
        put("loss/train".into(), r.loss);
        put("learning_rate".into(), r.learning_rate);
        put("time/epoch_seconds".into(), r.seconds);
        put("time/validation_seconds".into(), r.validation_seconds);
        put("time/data_wait_seconds".into(), r.data_wait_seconds);
        if let Some(dice) = &r.dice {
            let defined: Vec<f64> = dice.iter().copied().filter(|d| !d.is_nan()).collect();
            put(
                "dice/mean".into(),
                defined.iter().sum::<f64>() / defined.len() as f64,
            );
            for (k, d) in dice.iter().enumerate().filter(|(_, d)| !d.is_nan()) {
                put(format!("dice/label_{}", labels[k + 1]), *d);
            }
        }
    }
    assert_eq!(read, expected);
    // Dice is logged on validated epochs only: the second and the last.
    assert_eq!(
        read["dice/mean"].iter().map(|s| s.0).collect::<Vec<_>>(),
        [2, 3]
    );
}
