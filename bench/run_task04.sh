#!/usr/bin/env bash
# Issue 10's acceptance run: `autoseg run` on ../shared/data/Task04_Hippocampus under one
# wall-clock budget (90 minutes by default) on libtorch CPU, then the cross-validation Dice
# per class that the run measured (the ensemble's greedy selection predicts each fold's
# validation cases with that fold's bundle, on the original grid, clean-ups applied).
#
# A CPU budget trains a few thousand steps, not nnU-Net's 250,000: under 12 hours the dynunet
# template keeps nnU-Net's plan (patch, network, loss) and swaps its recipe for the one
# bench/train_task04.sh found to learn in few steps (AdamW at 3e-3 with a cosine decay that
# ends with the budget, batch 2, validations every 4 epochs of 50 steps), and since the
# devices are CPUs it halves nnU-Net's widths (16-128 channels), for about 3x the steps. Folds
# default to 0 alone: on 2 cores a 90-minute budget spread over 5 folds leaves each too few
# steps, and the acceptance asks for "the folds it had time for".
#
#   bench/run_task04.sh [MINUTES=90] [FOLDS=0] [DEVICE=tch]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
minutes=${1:-90}
folds=${2:-0}
device=${3:-tch}
work=${WORK:-$HOME/.cache/autoseg/run-task04}
data=$here/../shared/data/Task04_Hippocampus
source "$here/bench/build_for_device.sh"
build_for_device
find_yaml_python
rm -rf "$work"
start=$(date +%s)
"$target/release/autoseg" run --datalist "$data/dataset.json" -w "$work" \
  --time-budget $(( minutes * 60 )) --device "$device" --algos dynunet --folds "$folds"
end=$(date +%s)
"$yaml_python" - "$work" $(( end - start )) $(( minutes * 60 )) <<'PY'
import csv, sys, yaml, pathlib
work, took, budget = pathlib.Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
print(f"\nwall clock {took} s of a {budget} s budget ({100 * took / budget:.1f} %)")
for t in yaml.safe_load(open(work / "trials.yaml")):
    print(f"{t['bundle']}: best validation Dice {t['best_dice']:.4f} after {t['epochs_done']} epochs "
          f"({t['seconds']:.0f} s), per class {[round(d, 4) for d in t['dice_per_class']]}")
    for r in csv.DictReader(open(work / "bundles" / t["bundle"] / "metrics.csv")):
        if r["mean_dice"]:
            print(f"  epoch {r['epoch']:>3}  loss {float(r['loss']):.4f}  Dice {float(r['mean_dice']):.4f}")
e = yaml.safe_load(open(work / "ensemble" / "ensemble.yaml"))
print(f"cross-validation Dice (ensemble, clean-ups {e['keep_largest']}): {e['cross_validation_dice']:.4f}")
for label, dice in e["cross_validation_dice_per_class"].items():
    print(f"  label {label}: {dice:.4f}")
PY
