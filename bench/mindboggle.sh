#!/usr/bin/env bash
# Mindboggle-OASIS-TRT-20 (../shared/data: 20 brain MR of 256x256x160, 66 cortical classes
# with FreeSurfer codes 1002-2035) through `autoseg run` as a user would run it, with a
# time budget (issue 23): each stage's peak RSS and seconds, the cross-validation Dice per
# class (mean and worst), and the preprocessed cache's size on disk.
#
#   [BUDGET=3600] [WORK=dir to keep] [AUTOSEG=binary] bench/mindboggle.sh [run flags...]
#
# Extra arguments go to `autoseg run` (`--algos dynunet` on a 2-core CPU, where ten bundles
# would share the hour).
set -euo pipefail
source "$(dirname "$0")/common.sh"
data=${SHARED_DATA:-$here/../shared/data}/Mindboggle-OASIS-TRT-20
work=${WORK:-$out/work}

python3 "$here/bench/stage_rss.py" "$out/run.log" -- \
    "$autoseg" run --datalist "$data/dataset.json" -w "$work" --time-budget "${BUDGET:-3600}" "$@" \
    || { tail -n 30 "$out/run.log"; exit 1; }
grep -E "skipped|trial\(s\)|cross-validation Dice" "$out/run.log" | sed 's/^/  /'
python3 - "$work/ensemble/ensemble.yaml" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
block = text.split("cross_validation_dice_per_class:", 1)[1]
# YAML says NaN (a class in no validation case) as .nan.
dice = {int(k): float(v.replace(".nan", "nan")) for k, v in re.findall(r"^\s+(\d+):\s*([-\d.eE+a-z]+)", block, re.M)}
finite = {k: v for k, v in dice.items() if v == v}
worst = min(finite, key=finite.get)
print(f"  cross-validation Dice over {len(dice)} classes: mean {sum(finite.values()) / len(finite):.3f}, "
      f"worst {finite[worst]:.3f} (label {worst}), {len(dice) - len(finite)} undefined")
PY
du -sh "$work/preprocessed" | awk '{print "  preprocessed cache on disk: " $1}'
