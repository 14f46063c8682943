# Sourced by the bench scripts that drive the autoseg binary: sets $autoseg (AUTOSEG, else a
# release build made now) and $out (a temporary folder, removed on exit).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target=${CARGO_TARGET_DIR:-$HOME/.cache/autoseg/target}
if [ -z "${AUTOSEG:-}" ]; then
  CARGO_TARGET_DIR=$target cargo build --release --quiet --manifest-path "$here/Cargo.toml"
fi
autoseg=${AUTOSEG:-$target/release/autoseg}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
