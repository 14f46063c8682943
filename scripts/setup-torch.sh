#!/usr/bin/env bash
# Installs libtorch for autoseg's `tch` feature: PyTorch 2.9.0 from PyPI (the version
# burn-tch 0.22.1 / torch-sys 0.22 are written for) into a venv, once per machine. The
# wheel is the CUDA 12.8 build, so the same install serves libtorch on the CPU and on a GPU.
#
#   eval "$(scripts/setup-torch.sh)"      # about 3.5 GB download, 6.7 GB on disk, ~3 min
#   cargo build --release --features tch
#
# Prints the environment a build and a run need (VIRTUAL_ENV, LIBTORCH_USE_PYTORCH,
# LD_LIBRARY_PATH); the binary has no rpath to libtorch, so LD_LIBRARY_PATH is needed to run.
set -euo pipefail
venv="${AUTOSEG_TORCH_VENV:-$HOME/.cache/autoseg/torch-2.9.0}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
fi
if ! "$venv/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.9.0')" >/dev/null 2>&1; then
  "$venv/bin/pip" install -q --disable-pip-version-check "torch==2.9.0" >&2
fi
torch_lib=$("$venv/bin/python" -c "import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))" 2>/dev/null)
# torch-sys asks `python` (not python3) for the libtorch paths when VIRTUAL_ENV is set.
echo "export VIRTUAL_ENV='$venv'"
echo "export PATH='$venv/bin':\"\$PATH\""
echo "export LIBTORCH_USE_PYTORCH=1"
echo "export LD_LIBRARY_PATH='$torch_lib':\"\${LD_LIBRARY_PATH:-}\""
