#!/usr/bin/env bash
# Issue 24's acceptance run: `autoseg run` on ../shared/data/Task04_Hippocampus under one
# wall-clock budget (90 minutes by default) with no other flag: the budget planner chooses
# templates, folds, each model's seconds and test-time mirroring from a calibration on this
# machine (W/plan.yaml says why). Then the plan, each trial's learning curve and the
# cross-validation Dice per class that the run measured (the ensemble's greedy selection
# predicts each fold's validation cases with that fold's bundle, on the original grid,
# clean-ups applied). Extra arguments go to `autoseg run` (e.g. `--device tch --folds 0`).
#
#   bench/run_task04.sh [MINUTES=90] [RUN ARGS...]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
minutes=${1:-90}
shift || true
device=cpu
for a in "$@"; do case $a in tch|cuda:*) device=$a ;; esac; done
work=${WORK:-$HOME/.cache/autoseg/run-task04}
data=$here/../shared/data/Task04_Hippocampus
source "$here/bench/build_for_device.sh"
[ -n "${AUTOSEG:-}" ] || build_for_device
autoseg=${AUTOSEG:-$target/release/autoseg}
find_yaml_python
rm -rf "$work"
start=$(date +%s)
"$autoseg" run --datalist "$data/dataset.json" -w "$work" --time-budget $(( minutes * 60 )) "$@"
end=$(date +%s)
cat "$work/plan.yaml"
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
