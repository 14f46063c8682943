#!/usr/bin/env bash
# Resampling a BraTS image (2 channels, 240x240x155, 1 mm) to 1.5 mm: autoseg (linear, and
# cubic as nnU-Net resamples images) against MONAI's Spacing transform (bilinear), same run.
#
#   PEER_PY=$(../shared/peer/setup.sh | tail -1) bench/resample.sh [IMAGE.nii.gz [SPACING]]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
data=${DATA:-$here/../shared/data}
peer_py=${PEER_PY:?set PEER_PY to the peer venv python (../shared/peer/setup.sh prints it)}
image=${1:-$data/BraTS2015-DeepMedic-mini/imagesTr/brats_2013_pat0005_1.nii.gz}
spacing=${2:-1.5}
target=${CARGO_TARGET_DIR:-$HOME/.cache/autoseg/target}
CARGO_TARGET_DIR=$target cargo build --release --quiet --manifest-path "$here/Cargo.toml" --example bench_resample
ours=$("$target/release/examples/bench_resample" "$image" "$spacing")
theirs=$("$peer_py" "$here/bench/peer_resample.py" "$image" "$spacing" 2>/dev/null)
python3 - "$ours" "$theirs" <<'PY'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"output shape: autoseg {a['shape']} x{a['channels']}, MONAI {b['shape']} x{b['channels']}")
print(f"linear: autoseg {a['linear_seconds']:.3f} s, MONAI {b['seconds']:.3f} s, ratio {b['seconds'] / a['linear_seconds']:.1f}x")
print(f"cubic (nnU-Net's order 3): autoseg {a['cubic_seconds']:.3f} s")
PY
