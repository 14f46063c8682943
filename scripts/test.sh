#!/usr/bin/env bash
# Every test: the workspace on the default CPU build (with Debian's Chromium, installed once
# by scripts/setup-chromium.sh, to render report.html headless, and a single-node SLURM,
# started by scripts/slurm-single-node.sh, for the cluster path); the kernels' CUDA paths with NVRTC
# from PyPI (nvidia-cuda-nvrtc-cu12, no GPU needed): the CUDA sources must compile to PTX, and
# where a GPU is present every kernel must agree with its CPU twin; then the networks, losses
# and optimisers again on libtorch (PyPI's torch 2.9.0, scripts/setup-torch.sh), in a target
# dir of its own since the tch feature rebuilds burn; then scripts/gpu-check.sh's dry run (the
# GPU check's every step, on the CPU). .ci/run calls this.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/autoseg/target}"
eval "$(scripts/setup-chromium.sh)"
scripts/slurm-single-node.sh
cargo test --workspace --release

venv="${AUTOSEG_NVRTC_VENV:-$HOME/.cache/autoseg/nvrtc-venv}"
if [ ! -x "$venv/bin/python" ]; then python3 -m venv "$venv"; fi
if ! "$venv/bin/python" -c "import nvidia.cuda_nvrtc" 2>/dev/null; then
  "$venv/bin/pip" install -q "nvidia-cuda-nvrtc-cu12==12.9.*"
fi
nvrtc_lib=$("$venv/bin/python" -c "import nvidia.cuda_nvrtc, os; print(os.path.join(list(nvidia.cuda_nvrtc.__path__)[0], 'lib'))")
LD_LIBRARY_PATH="$nvrtc_lib:${LD_LIBRARY_PATH:-}" cargo test --release -p autoseg-kernels --features cuda

eval "$(scripts/setup-torch.sh)"
CARGO_TARGET_DIR="${TCH_TARGET_DIR:-$HOME/.cache/autoseg/target-tch}" \
  cargo test --release -p autoseg-templates -p autoseg-tuner --features tch

# The GPU check's dry run: its binaries built on libtorch 2.9, every step on the CPU.
LD_LIBRARY_PATH="$nvrtc_lib:${LD_LIBRARY_PATH:-}" scripts/gpu-check.sh --dry-run
