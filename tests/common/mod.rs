//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
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

/// Asserts that a run's output holds `words`, showing the whole output when it does not.
pub fn assert_output_contains(output: &Output, words: &str) {
    let all = text(output);
    assert!(all.contains(words), "expected `{words}` in:\n{all}");
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
