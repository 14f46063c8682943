#!/usr/bin/env bash
# autoseg's kernels vs the peer on a BraTS-sized pair (240x240x155, 5 classes), same run:
# Dice + HD95 + symmetric ASD for the 4 foreground classes vs MONAI's metrics, and 26-connected
# components vs scipy.ndimage.label. The reference is a BraTS label map; the prediction is the
# same map shifted 2 voxels along x with a 10-voxel box of class 2 carved out, so no metric is
# trivial.
#
#   PEER_PY=$(../shared/peer/setup.sh | tail -1) bench/metrics.sh [REF.nii.gz]
#
# The peer needs scipy (MONAI's surface distances use it): `$PEER_PY -m pip install scipy`.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
data=${DATA:-$here/../shared/data}
peer_py=${PEER_PY:?set PEER_PY to the peer venv python (../shared/peer/setup.sh prints it)}
ref=${1:-$data/BraTS2015-DeepMedic-mini/labelsTr/brats_2013_pat0005_1.nii.gz}
target=${CARGO_TARGET_DIR:-$HOME/.cache/autoseg/target}
CARGO_TARGET_DIR=$target cargo build --release --quiet --manifest-path "$here/Cargo.toml" --example bench_metrics
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$peer_py" - "$ref" "$out/pred.nii.gz" <<'PY'
import sys, nibabel as nib, numpy as np
img = nib.load(sys.argv[1]); a = np.asarray(img.dataobj).astype(np.uint8)
p = np.roll(a, 2, axis=0); c = np.argwhere(p == 2)
if len(c): x, y, z = c[len(c) // 2]; p[x-5:x+5, y-5:y+5, z-5:z+5][p[x-5:x+5, y-5:y+5, z-5:z+5] == 2] = 0
nib.save(nib.Nifti1Image(p, img.affine, img.header), sys.argv[2])
PY
ours=$("$target/release/examples/bench_metrics" "$out/pred.nii.gz" "$ref" 5)
theirs=$("$peer_py" "$here/bench/peer_metrics.py" "$out/pred.nii.gz" "$ref" 5 2>/dev/null)
python3 - "$ours" "$theirs" <<'PY'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"{'class':>5} {'dice':>18} {'hd95':>18} {'asd':>18}   (autoseg / MONAI)")
for x, y in zip(a["classes"], b["classes"]):
    print(f"{x['class']:>5} " + " ".join(f"{x[k]:9.6f}/{y[k]:<10.6f}" for k in ("dice", "hd95", "asd")))
print(f"metrics:    autoseg {a['metrics_seconds']:.3f} s, MONAI {b['metrics_seconds']:.3f} s, ratio {b['metrics_seconds'] / a['metrics_seconds']:.1f}x")
print(f"components: autoseg {a['components_seconds']:.3f} s, scipy {b['components_seconds']:.3f} s, ratio {b['components_seconds'] / a['components_seconds']:.1f}x ({a['components']} vs {b['components']} components)")
PY
