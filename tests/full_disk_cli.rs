//! A full disk: training that cannot write its next checkpoint (ENOSPC on a small tmpfs) stops
//! with an error that says so, and leaves the last checkpoint and every artefact as they
//! were, with no temporary file; once there is room, `--resume` goes on from that checkpoint.
//!
//! The tmpfs is mounted in a mount namespace of the test's own (`unshare`, as root or through
//! a user namespace), so nothing outside the test sees it.

mod common;

use std::process::Command;

#[test]
fn a_full_disk_keeps_the_last_checkpoint_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("full_disk.sh");
    std::fs::write(&script, SCRIPT).unwrap();
    let out = Command::new("unshare")
        .args(["--map-root-user", "--mount", "bash"])
        .arg(&script)
        .arg(env!("CARGO_BIN_EXE_autoseg"))
        .arg(dir.path())
        .output()
        .expect("run unshare (util-linux)");
    let said = common::text(&out);
    assert!(out.status.success(), "{said}");
    for step in [
        "trained one epoch",
        "refused: exit 2",
        "No space left on device",
        "checkpoint unchanged",
        "no temporary files",
        "resumed to 2 epochs",
    ] {
        assert!(said.contains(step), "`{step}` missing:\n{said}");
    }
}

/// Run inside the namespace: `$1` the binary, `$2` a scratch folder.
const SCRIPT: &str = r#"
set -euo pipefail
autoseg="$1"; disk="$2/disk"
mkdir -p "$disk" && mount -t tmpfs -o size=6m tmpfs "$disk" && cd "$disk"
"$autoseg" phantom --out data --cases 4 --shape 16,16,12 >/dev/null
"$autoseg" analyze -i data/task.yaml -w w >/dev/null
"$autoseg" generate -w w --algos dynunet --folds 0 --set "network.filters=[4, 8, 16]" \
  --set num_epochs=1 --set iterations_per_epoch=2 >/dev/null
b=w/bundles/dynunet_0
"$autoseg" train --bundle "$b" >/dev/null && echo "trained one epoch"
# Every file but the lock and the kept validation outputs: those are the best weights'
# predictions, cleared before new best weights are written (here, the write that fails).
sums() { (cd "$b" && find . -type f ! -name .lock ! -path './validation/*' | sort | xargs sha256sum); }
before=$(sums)
sed -i 's/^num_epochs: 1$/num_epochs: 2/' "$b/configs/hyper_parameters.yaml"
dd if=/dev/zero of=filler bs=4k 2>/dev/null || true
set +e
"$autoseg" train --bundle "$b" --resume > "$2/said.txt" 2>&1
code=$?
set -e
rm filler
cat "$2/said.txt"
[ "$code" = 2 ] && echo "refused: exit 2"
after=$(sums | grep -v -e ' ./configs/hyper_parameters.yaml$')
if [ "$after" = "$(echo "$before" | grep -v -e ' ./configs/hyper_parameters.yaml$')" ]; then
  echo "checkpoint unchanged"
else
  diff <(echo "$before") <(echo "$after") || true
fi
if ! find "$b" -name '.autoseg-tmp-*' -o -name '*.partial*' | grep -q .; then echo "no temporary files"; fi
"$autoseg" train --bundle "$b" --resume >/dev/null
grep -q 'epochs_done: 2' "$b/progress.yaml" && echo "resumed to 2 epochs"
"#;
