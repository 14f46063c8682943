//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod hostile;
pub mod limited;
pub mod peer;

use std::path::{Path, PathBuf};

use autoseg_datasets::phantom::{PhantomSpec, generate_case};
use autoseg_datasets::{LabelVolume, Volume};
use serde_json::{Value, json};
use std::process::{Command, Output};

/// `../shared/data` beside the checkout (CI lays a copy there). Tests that need it fail loudly
/// if it is missing rather than pass without checking anything.
pub fn shared_data() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    assert!(
        dir.is_dir(),
        "{} is missing: the tests read the shared datasets from there",
        dir.display()
    );
    dir
}

/// Runs the built `autoseg` binary.
pub fn autoseg(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_autoseg"))
        .args(args)
        .output()
        .expect("run autoseg")
}

/// Stdout and stderr of a run, for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs `autoseg` and asserts that it succeeded; returns its output.
pub fn run_ok(args: &[&str]) -> String {
    let out = autoseg(args);
    assert!(out.status.success(), "autoseg {args:?}:\n{}", text(&out));
    text(&out)
}

/// Three small dynunet trials of 8 epochs, long enough to kill one mid-way: the generate
/// (and run) arguments the interruption tests share.
pub const THREE_KILLABLE_TRIALS: &[&str] = &[
    "--algos",
    "dynunet",
    "--folds",
    "0,1,2",
    "--set",
    "network.filters=[4, 8, 16]",
    "--set",
    "num_epochs=8",
    "--set",
    "iterations_per_epoch=8",
    "--set",
    "validation.every=1",
];

/// Epochs a bundle's run has finished, from its progress.yaml (0 before the first).
pub fn epochs_done(bundle: &Path) -> usize {
    std::fs::read_to_string(bundle.join("progress.yaml"))
        .ok()
        .and_then(|t| serde_yaml::from_str::<serde_yaml::Value>(&t).ok())
        .and_then(|v| v["epochs_done"].as_u64())
        .unwrap_or(0) as usize
}

/// A YAML (or JSON) file as a JSON value.
pub fn read_yaml(path: &Path) -> Value {
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Asserts that a run's output holds `words`, showing the whole output when it does not.
pub fn assert_output_contains(output: &Output, words: &str) {
    let all = text(output);
    assert!(all.contains(words), "expected `{words}` in:\n{all}");
}

/// Writes the phantom set [`quick_run`] trains on into `out`: 4 training cases and one
/// testing case of 24^3, with `extra` phantom options.
pub fn quick_phantoms(out: &str, extra: &[&str]) {
    let mut args = vec![
        "phantom",
        "--out",
        out,
        "--cases",
        "4",
        "--test-cases",
        "1",
        "--shape",
        "24,24,24",
    ];
    args.extend(extra);
    run_ok(&args);
}

/// `autoseg run` of the task `task` into `work`, one dynunet fold trained two tiny epochs
/// (validated after each): the whole pipeline in about a second. Returns its output.
pub fn quick_run(task: &str, work: &str) -> String {
    run_ok(&[
        "run",
        "-i",
        task,
        "-w",
        work,
        "--algos",
        "dynunet",
        "--folds",
        "0",
        "--set",
        "network.filters=[4, 8, 16]",
        "--set",
        "num_epochs=2",
        "--set",
        "iterations_per_epoch=2",
        "--set",
        "validation.every=1",
    ])
}

/// Writes a small phantom dataset with `autoseg phantom` and returns its folder.
pub fn phantom_dataset(cases: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("data");
    let run = autoseg(&[
        "phantom",
        "--out",
        out.to_str().unwrap(),
        "--cases",
        &cases.to_string(),
        "--test-cases",
        "1",
        "--shape",
        "16,16,12",
    ]);
    assert!(run.status.success(), "{}", text(&run));
    dir
}

/// Ten phantom cases, eight of them broken one way each (what `check` and `analyze` must name):
/// 0 truncated gzip, 1 bad magic, 2 label of another shape, 3 missing image, 4 label path
/// escaping the root, 5 NaN/Inf voxels, 6 a label of 1.5, 7 label id 5 past the named
/// classes; 8 and 9 healthy; plus one testing case. Returns the temp dir (dataset in `data/`).
pub fn broken_dataset() -> tempfile::TempDir {
    let dir = phantom_dataset(10);
    let root = dir.path().join("data");
    let image = |i: usize| root.join(format!("imagesTr/phantom_{i:03}.nii.gz"));
    let label = |i: usize| root.join(format!("labelsTr/phantom_{i:03}.nii.gz"));

    // 0: truncated gzip.
    let bytes = std::fs::read(image(0)).unwrap();
    std::fs::write(image(0), &bytes[..bytes.len() / 2]).unwrap();
    // 1: bad magic (an uncompressed file with its magic overwritten).
    let bad_magic = root.join("imagesTr/bad_magic.nii");
    Volume::read(&image(1)).unwrap().write(&bad_magic).unwrap();
    let mut raw = std::fs::read(&bad_magic).unwrap();
    raw[344..348].copy_from_slice(b"zzz\0");
    std::fs::write(&bad_magic, raw).unwrap();
    // 2: the label has another shape than the image.
    let (_, other_shape) = generate_case(
        &PhantomSpec {
            shape: [16, 16, 10],
            ..PhantomSpec::default()
        },
        2,
    );
    other_shape.write(&label(2)).unwrap();
    // 3: a missing file; 4: a `../` escape to a file that does exist.
    std::fs::copy(label(4), dir.path().join("outside.nii.gz")).unwrap();
    // 5: NaN voxels in the image.
    let mut nan_image = Volume::read(&image(5)).unwrap();
    nan_image.data_mut()[7] = f32::NAN;
    nan_image.data_mut()[9] = f32::INFINITY;
    nan_image.write(&image(5)).unwrap();
    // 6: a label of 1.5.
    let mut fractional = Volume::read(&label(6)).unwrap();
    fractional.data_mut()[100] = 1.5;
    fractional.write(&label(6)).unwrap();
    // 7: label id 5, beyond the 3 named classes, which leaves ids 3 and 4 as gaps.
    let mut labels = LabelVolume::read(&label(7)).unwrap();
    labels.data_mut()[0] = 5;
    labels.write(&label(7)).unwrap();
    // 8 and 9 stay healthy.

    let mut datalist: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("dataset.json")).unwrap()).unwrap();
    let training = datalist["training"].as_array_mut().unwrap();
    training[1]["image"] = json!("./imagesTr/bad_magic.nii");
    training[3]["image"] = json!("./imagesTr/does_not_exist.nii.gz");
    training[4]["label"] = json!("../outside.nii.gz");
    std::fs::write(
        root.join("dataset.json"),
        serde_json::to_string(&datalist).unwrap(),
    )
    .unwrap();

    dir
}

/// Renders `page` in headless Chromium (`AUTOSEG_CHROMIUM`, else `/usr/bin/chromium`; see
/// scripts/setup-chromium.sh) to a `width` x `height` screenshot; returns its RGB pixels.
pub fn screenshot(page: &Path, width: u32, height: u32) -> (Vec<u8>, u32, u32) {
    let chromium = std::env::var("AUTOSEG_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).is_file(),
        "{chromium} is missing: install Chromium with scripts/setup-chromium.sh (the README's \
         test command does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let shot = dir.path().join("shot.png");
    // The flags keep Chromium off the network (this machine's is closed) and out of the way.
    let out = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(
        shot.is_file(),
        "no screenshot from {chromium}:\n{}",
        text(&out)
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let channels = info.color_type.samples();
    let rgb = pixels[..info.buffer_size()]
        .chunks(channels)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    (rgb, info.width, info.height)
}

/// [`phantom_dataset`] analyzed into its `work` folder; returns the temp dir and that work
/// dir.
pub fn analyzed_phantoms(cases: usize) -> (tempfile::TempDir, PathBuf) {
    let dir = phantom_dataset(cases);
    let work = dir.path().join("work");
    let task = dir.path().join("data/task.yaml");
    run_ok(&[
        "analyze",
        "-i",
        task.to_str().unwrap(),
        "-w",
        work.to_str().unwrap(),
    ]);
    (dir, work)
}

/// `autoseg generate` into `work` for `algos` and `folds`, each of `settings` passed as
/// `--set`.
pub fn generate(work: &Path, algos: &str, folds: &str, settings: &[&str]) -> String {
    let mut args = vec![
        "generate",
        "-w",
        work.to_str().unwrap(),
        "--algos",
        algos,
        "--folds",
        folds,
    ];
    for s in settings {
        args.extend(["--set", s]);
    }
    run_ok(&args)
}
