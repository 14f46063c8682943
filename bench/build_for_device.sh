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

# Sets $yaml_python to a Python that has PyYAML (the machine's python3 when it has it, else a
# venv of its own under ~/.cache/autoseg), for the scripts that read the work dir's YAML.
find_yaml_python() {
  yaml_python=python3
  if ! python3 -c "import yaml" 2>/dev/null; then
    local venv=$HOME/.cache/autoseg/bench-venv
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/python" -c "import yaml" 2>/dev/null || "$venv/bin/pip" install -q pyyaml
    yaml_python=$venv/bin/python
  fi
}
