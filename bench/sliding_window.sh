#!/usr/bin/env bash
# Sliding-window inference of the peer's small U-Net (random weights) on a 240x240x155
# volume, ROI 96, overlap 0.5, 2 windows a pass, Gaussian blending: MONAI's
# sliding_window_inference (../shared/peer/sliding_window.py, 2 threads) and autoseg on
# libtorch's CPU (and flex with WITH_FLEX=1), same run, same machine. Prints the ratios.
#
#   PEER_PY=$(../shared/peer/setup.sh | tail -1) bench/sliding_window.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
peer_py=${PEER_PY:?set PEER_PY to the peer venv python (../shared/peer/setup.sh prints it)}
args=(--size 240,240,155 --roi 96 --overlap 0.5 --sw-batch 2)
eval "$("$here/scripts/setup-torch.sh")"
tch_target=${TCH_TARGET_DIR:-$HOME/.cache/autoseg/target-tch}
CARGO_TARGET_DIR=$tch_target cargo build --release --quiet --manifest-path "$here/Cargo.toml" \
  -p autoseg-templates --features tch --example bench_sliding_window
runs=("$("$tch_target/release/examples/bench_sliding_window" --device tch "${args[@]}")")
if [ "${WITH_FLEX:-0}" = 1 ]; then
  target=${CARGO_TARGET_DIR:-$HOME/.cache/autoseg/target}
  CARGO_TARGET_DIR=$target cargo build --release --quiet --manifest-path "$here/Cargo.toml" \
    -p autoseg-templates --example bench_sliding_window
  runs+=("$("$target/release/examples/bench_sliding_window" --device cpu "${args[@]}")")
fi
monai=$(cd "$here/../shared/peer" && "$peer_py" sliding_window.py --threads 2 "${args[@]}" | tail -1)
python3 - "$monai" "${runs[@]}" <<'PY'
import json, sys
monai = float(sys.argv[1].split()[1])
print(f"MONAI sliding_window_inference (PyTorch CPU): {monai:.2f} s")
for run in sys.argv[2:]:
    r = json.loads(run)
    t = r["sliding_window_seconds"]
    print(f"autoseg on {r['device']}: {t:.2f} s ({t / monai:.2f}x MONAI's time)")
PY
