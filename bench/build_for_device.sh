# Sourced by the bench scripts: builds autoseg in release for the device in $device (cpu:
# flex; tch or cuda:N: libtorch, set up by scripts/setup-torch.sh) and sets $target to the
# build's target dir. Extra arguments go to cargo (e.g. `-p autoseg-tuner --example x`).
build_for_device() {
  local features=()
  if [ "$device" = cpu ]; then
    target=${CARGO_TARGET_DIR:-$HOME/.cache/autoseg/target}
  else
    eval "$("$here/scripts/setup-torch.sh")"
    target=${TCH_TARGET_DIR:-$HOME/.cache/autoseg/target-tch}
    features=(--features tch)
  fi
  CARGO_TARGET_DIR=$target cargo build --release --quiet --manifest-path "$here/Cargo.toml" \
    "${features[@]}" "$@"
}
