//! The peer (MONAI, PyTorch, ONNX Runtime, TensorBoard in the venv `../shared/peer/setup.sh`
//! makes), for the tests that compare with it. Shared by the workspace's test crates
//! (`#[path]`-included), so one rule finds it everywhere.

use std::path::{Path, PathBuf};

/// The peer's python (`PEER_PY`, else `~/.cache/autoseg-peer/venv/bin/python`), if it can
/// import `module`.
pub fn peer_python(module: &str) -> Option<PathBuf> {
    let python = std::env::var_os("PEER_PY").map(PathBuf::from).or_else(|| {
        let home = std::env::var_os("HOME")?;
        Some(Path::new(&home).join(".cache/autoseg-peer/venv/bin/python"))
    })?;
    let ok = std::process::Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(python)
}
