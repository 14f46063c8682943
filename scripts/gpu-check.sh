#!/usr/bin/env bash
# The GPU check, prepared here and run in one go on a lent GPU machine (one NVIDIA GPU,
# PyTorch 2.11 with CUDA 13, no MONAI, no network):
#
#   scripts/gpu-check.sh pack [DIR]     # here: autoseg built against PyTorch 2.11's libtorch (the
#                                       # wheel from PyPI, unpacked, not installed), the CUDA
#                                       # kernels' test binary, the bench binaries, the Task04
#                                       # plan's bundle and this script, in DIR (default
#                                       # gpu-check-pack/, git-ignored); prints its size
#   scripts/gpu-check.sh run DIR [OUT]  # there: every check, under 8 minutes; OUT/summary.md
#                                       # (PYTHON=the python whose torch is 2.11; default python3)
#   scripts/gpu-check.sh --dry-run      # here and in CI: packs against this machine's libtorch
#                                       # 2.9 (scripts/setup-torch.sh) and runs every step on
#                                       # the CPU, smaller
#
# The checks: the CUDA kernels' tests (each kernel against its CPU twin); the phantom demo
# trained on cuda:0 (mixed precision: bf16 convolutions); `analyze --device cuda:0` on its
# phantoms and `evaluate --device cuda:0` on its predictions, each equal to the CPU's
# figures; its ensemble's prediction wholly on the GPU against the CPU's (Dice >= 0.99); a
# training step of the Task04 plan's DynUNet and a 240x240x155 sliding window, each timed
# against plain PyTorch doing the same on the same GPU (gpu-check/torch_reference.py).
# With the device tool: carry DIR, run `scripts/gpu-check.sh run DIR $OUT`.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cache=$HOME/.cache/autoseg
torch_version=2.11.0

# libtorch 2.11 from the cp312 wheel the GPU machines carry: include/ and lib/ only.
libtorch_211() {
  local dir=$cache/libtorch-$torch_version
  if [ ! -f "$dir/lib/libtorch_cpu.so" ]; then
    local wheels=$cache/wheels
    mkdir -p "$wheels"
    python3 -m pip download -q --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 \
      --python-version 3.12 --implementation cp --abi cp312 "torch==$torch_version" -d "$wheels" >&2
    local unpack
    unpack=$(mktemp -d)
    unzip -q "$wheels"/torch-$torch_version-*.whl 'torch/include/*' 'torch/lib/*' -d "$unpack"
    rm -rf "$dir" && mkdir -p "$dir"
    mv "$unpack/torch/include" "$unpack/torch/lib" "$dir/" && rm -rf "$unpack"
  fi
  echo "$dir"
}

# Builds the tch binaries into $1 (a target dir) with the environment set by the caller.
build_tch() {
  local target=$1
  CARGO_TARGET_DIR=$target cargo build --release --quiet --manifest-path "$here/Cargo.toml" \
    --features tch,cuda --bin autoseg
  CARGO_TARGET_DIR=$target cargo build --release --quiet --manifest-path "$here/Cargo.toml" \
    -p autoseg-tuner --features tch --example bench_bundle_step
  CARGO_TARGET_DIR=$target cargo build --release --quiet --manifest-path "$here/Cargo.toml" \
    -p autoseg-templates --features tch --example bench_sliding_window
}

# The CUDA kernels' test binary (NVRTC and the driver are loaded at run time: no libtorch).
cuda_tests_binary() {
  CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target} cargo test --release --quiet \
    --manifest-path "$here/Cargo.toml" -p autoseg-kernels --features cuda --test cuda \
    --no-run --message-format=json |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable"): print(m["executable"])' |
    tail -1
}

# pack DIR LIBTORCH_MODE: LIBTORCH_MODE is 2.11 (for the GPU machine) or 2.9 (the dry run).
pack() {
  local dir=$1 mode=$2 target
  if [ "$mode" = 2.11 ]; then
    local libtorch
    libtorch=$(libtorch_211)
    target=${TCH211_TARGET_DIR:-$cache/target-tch-$torch_version}
    # Seeded from the libtorch 2.9 build when there is one: only torch-sys and what links it
    # rebuild (about 3 minutes instead of a clean build's 25).
    local seed=${TCH_TARGET_DIR:-$cache/target-tch}
    if [ ! -d "$target" ] && [ -d "$seed" ]; then cp -a "$seed" "$target"; fi
    LIBTORCH=$libtorch LIBTORCH_BYPASS_VERSION_CHECK=1 build_tch "$target"
  else
    eval "$("$here/scripts/setup-torch.sh")"
    target=${TCH_TARGET_DIR:-$cache/target-tch}
    build_tch "$target"
  fi
  rm -rf "$dir" && mkdir -p "$dir"
  # The binaries, stripped, travel as one xz archive (80 MB as they are, 15 MB packed).
  local bin
  bin=$(mktemp -d)
  cp "$target/release/autoseg" "$target/release/examples/bench_bundle_step" \
    "$target/release/examples/bench_sliding_window" "$bin/"
  cp "$(cuda_tests_binary)" "$bin/kernels-cuda-tests"
  strip "$bin"/*
  XZ_OPT=-T0 tar -cJf "$dir/bin.tar.xz" -C "$bin" . && rm -rf "$bin"
  cp "$here/scripts/gpu-check.sh" "$here/scripts/gpu-check/torch_reference.py" \
    "$here/scripts/gpu-check/summary.py" "$dir/"
  # The Task04 plan's bundle as generate writes it for a GPU (configs only: the step is
  # timed on random batches of its patch and batch sizes), by the default CPU build.
  local flex=${CARGO_TARGET_DIR:-$cache/target} work
  CARGO_TARGET_DIR=$flex cargo build --release --quiet --manifest-path "$here/Cargo.toml" --bin autoseg
  work=$(mktemp -d)
  "$flex/release/autoseg" analyze \
    --datalist "$here/../shared/data/Task04_Hippocampus/dataset.json" -w "$work" >/dev/null
  "$flex/release/autoseg" generate -w "$work" --algos dynunet --folds 0 >/dev/null
  mkdir -p "$dir/task04-dynunet"
  cp -r "$work/bundles/dynunet_0/configs" "$dir/task04-dynunet/"
  rm -rf "$work"
  echo "$mode" > "$dir/libtorch"
  echo "packed $(du -sh "$dir" | cut -f1) in $dir" >&2
}

# run DIR OUT DRY: every check; a failing one is recorded and the others go on.
run_checks() {
  local dir=$1 out=$2 dry=$3 device=cuda:0 torch_device=cuda
  local python=${PYTHON:-python3} size=240,240,155 roi=96 steps=10 epochs=30 kernels=cuda:0
  if [ "$dry" = 1 ]; then
    eval "$("$here/scripts/setup-torch.sh")"
    python=python device=tch torch_device=cpu size=96,96,64 roi=48 steps=3 epochs=1 kernels=cpu
  fi
  mkdir -p "$out"
  local bin=$out/bin
  python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
    "$dir/bin.tar.xz" "$bin"
  local torch_lib
  torch_lib=$("$python" -c "import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))")
  export LD_LIBRARY_PATH=$torch_lib:${LD_LIBRARY_PATH:-}
  # cudarc (built for CUDA 12) asks for libnvrtc.so or .so.12; CUDA 13's pip NVRTC is .so.13.
  local nvrtc
  nvrtc=$("$python" -c 'import glob, os, site
hits = [p for b in site.getsitepackages() for p in glob.glob(os.path.join(b, "nvidia", "**", "libnvrtc.so*"), recursive=True)]
print(min(hits, key=len) if hits else "")')
  if [ -n "$nvrtc" ]; then
    mkdir -p "$out/lib" && ln -sf "$nvrtc" "$out/lib/libnvrtc.so"
    LD_LIBRARY_PATH=$out/lib:$(dirname "$nvrtc"):$LD_LIBRARY_PATH
  fi
  {
    echo "date: $(date -u +%FT%TZ)"
    echo "glibc: $(ldd --version | head -1)"
    echo "torch: $("$python" -c 'import torch; print(torch.__version__, torch.version.cuda)' 2>/dev/null)"
    echo "autoseg built against libtorch: $(cat "$dir/libtorch")"
    if command -v nvidia-smi >/dev/null; then nvidia-smi -L; fi
    lscpu | grep -m1 'Model name'
  } > "$out/machine.txt" 2>&1
  check() { # name seconds command...: status into $out/NAME.status, output into $out/NAME.log
    local name=$1 seconds=$2
    shift 2
    local started=$SECONDS status=0
    timeout "$seconds" "$@" > "$out/$name.log" 2>&1 || status=$?
    echo "$status $((SECONDS - started))" > "$out/$name.status"
    echo "$name: exit $status in $((SECONDS - started)) s" >&2
  }
  check cuda-tests 120 "$bin/kernels-cuda-tests" --test-threads 1
  check demo 240 "$bin/autoseg" demo --device "$device" --epochs "$epochs" --dir "$out/demo"
  # analyze's components and evaluate's metrics on the GPU against the CPU's figures, on
  # the demo's phantoms and predictions.
  local task predictions labels
  task=$(sed -n 's/^Task config: *//p' "$out/demo.log")
  check analyze-cpu 60 "$bin/autoseg" analyze -i "$task" -w "$out/analyze-cpu" --no-cache \
    --device cpu
  check analyze-gpu 60 "$bin/autoseg" analyze -i "$task" -w "$out/analyze-gpu" --no-cache \
    --device "$kernels"
  check analyze-same 10 cmp "$out/analyze-cpu/datastats.yaml" "$out/analyze-gpu/datastats.yaml"
  predictions=$(sed -n 's/^Predictions: *//p' "$out/demo.log")
  labels=$(find "$out/demo" -type d -name labelsTs | head -1)
  check evaluate-cpu 60 "$bin/autoseg" evaluate --pred "$predictions" --ref "$labels" \
    -o "$out/evaluate-cpu" --device cpu
  check evaluate-gpu 60 "$bin/autoseg" evaluate --pred "$predictions" --ref "$labels" \
    -o "$out/evaluate-gpu" --device "$kernels"
  check evaluate-same 10 cmp "$out/evaluate-cpu/summary.yaml" "$out/evaluate-gpu/summary.yaml"
  # The whole prediction on the GPU (preprocessing, windows, restoring, argmax on the device)
  # against the CPU's streamed prediction of the same ensemble: Dice of one against the other.
  local work
  work=$(sed -n 's/^Work dir: *\([^ ]*\).*/\1/p' "$out/demo.log")
  check predict-gpu 120 "$bin/autoseg" predict -w "$work" --images "$out/demo/imagesTs" \
    -o "$out/predict-gpu" --device "$device"
  check predict-cpu 120 "$bin/autoseg" predict -w "$work" --images "$out/demo/imagesTs" \
    -o "$out/predict-cpu" --device cpu
  check predict-agree 60 "$bin/autoseg" evaluate --pred "$out/predict-gpu" \
    --ref "$out/predict-cpu" -o "$out/predict-agree"
  check step-autoseg 60 "$bin/bench_bundle_step" --bundle "$dir/task04-dynunet" \
    --device "$device" --steps "$steps"
  check step-torch 60 "$python" "$dir/torch_reference.py" step --spec "$out/step-autoseg.log" \
    --device "$torch_device" --steps "$steps"
  check window-autoseg 90 "$bin/bench_sliding_window" --device "$device" --size "$size" --roi "$roi"
  check window-torch 90 "$python" "$dir/torch_reference.py" window --device "$torch_device" \
    --size "$size" --roi "$roi"
  python3 "$dir/summary.py" "$out" > "$out/summary.md"
  cat "$out/summary.md"
}

case "${1:-}" in
  pack) pack "${2:-$here/gpu-check-pack}" 2.11 ;;
  run)
    dir=$(cd "${2:?run DIR [OUT]}" && pwd)
    run_checks "$dir" "${3:-$dir/out}" 0
    ;;
  --dry-run)
    dir=${GPU_CHECK_DRY_DIR:-$cache/gpu-check-dry}
    pack "$dir" 2.9
    run_checks "$dir" "$dir/out" 1
    grep -q '^all checks passed' "$dir/out/summary.md"
    ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d'
    exit 2
    ;;
esac
