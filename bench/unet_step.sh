#!/usr/bin/env bash
# One training step (forward + backward + Adam) and one inference of the peer's small 3D
# U-Net, batch x 1 x size^3, in PyTorch (../shared/peer/unet_step.py) and in autoseg on flex
# and, when libtorch is set up, on burn-tch; same run, same machine. Prints the ratios.
#
#   PEER_PY=$(../shared/peer/setup.sh | tail -1) bench/unet_step.sh [SIZE] [BATCH]
#   WITH_TCH=1 PEER_PY=... bench/unet_step.sh      # also libtorch (scripts/setup-torch.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
peer_py=${PEER_PY:?set PEER_PY to the peer venv python (../shared/peer/setup.sh prints it)}
size=${1:-64}
batch=${2:-2}
steps=${STEPS:-6}
target=${CARGO_TARGET_DIR:-$HOME/.cache/autoseg/target}
CARGO_TARGET_DIR=$target cargo build --release --quiet --manifest-path "$here/Cargo.toml" -p autoseg-tuner --example bench_unet
runs=("flex:$("$target/release/examples/bench_unet" --device cpu --size "$size" --batch "$batch" --steps "$steps")")
if [ "${WITH_TCH:-0}" = 1 ]; then
  eval "$("$here/scripts/setup-torch.sh")"
  tch_target=${TCH_TARGET_DIR:-$HOME/.cache/autoseg/target-tch}
  CARGO_TARGET_DIR=$tch_target cargo build --release --quiet --manifest-path "$here/Cargo.toml" \
    -p autoseg-tuner --features tch --example bench_unet
  runs+=("tch:$("$tch_target/release/examples/bench_unet" --device tch --size "$size" --batch "$batch" --steps "$steps")")
fi
torch=$(cd "$here/../shared/peer" && "$peer_py" unet_step.py --size "$size" --batch "$batch" --steps "$steps")
python3 - "$torch" "${runs[@]}" <<'PY'
import json, sys
torch = dict(line.split() for line in sys.argv[1].splitlines())
t_step, t_infer = float(torch["torch_train_step_seconds"]), float(torch["torch_infer_seconds"])
print(f"PyTorch: step {t_step:.3f} s, inference {t_infer:.3f} s")
for run in sys.argv[2:]:
    name, text = run.split(":", 1)
    r = json.loads(text)
    print(f"autoseg {name}: step {r['train_step_seconds']:.3f} s ({r['train_step_seconds'] / t_step:.2f}x PyTorch's time), "
          f"inference {r['infer_seconds']:.3f} s ({r['infer_seconds'] / t_infer:.2f}x), loss {r['first_loss']:.4f} -> {r['last_loss']:.4f}")
PY
