#!/usr/bin/env bash
# Region-based training on real multi-channel MR (issue 23): the BraTS subset
# (../shared/data/BraTS2015-DeepMedic-mini, 2 channels, labels 1-4) with BraTS' regions
# whole tumour {1,2,3,4}, tumour core {1,3,4} and enhancing tumour {4}, written back by
# nnU-Net's regions_class_order rule as labels 2, 1 and 4. One case is held out as the
# testing case; `autoseg run` trains, ranks, ensembles and predicts it; `evaluate` scores
# each region. Prints the cross-validation Dice, the held-out case's Dice per region and the
# peak RSS of the run. Reads the images where they lie; writes only into a temporary folder.
#
#   [BUDGET=1800] [ALGOS=dynunet,...] [FOLDS=0,1,...] [HELD_OUT=brats_2013_pat0001_1]
#   [AUTOSEG=binary] bench/brats_regions.sh
#
# By default every template and fold shares the budget, as `autoseg run` plans it; on a
# CPU, ALGOS=dynunet FOLDS=0,1 leaves each bundle enough of a short budget to learn.
set -euo pipefail
source "$(dirname "$0")/common.sh"
BUDGET=${BUDGET:-1800}
HELD_OUT=${HELD_OUT:-brats_2013_pat0001_1}
data=$(cd "$here/../shared/data/BraTS2015-DeepMedic-mini" && pwd)

python3 - "$data/dataset.json" "$out/datalist.json" "$HELD_OUT" <<'PY'
import json, sys
source, target, held_out = sys.argv[1:]
d = json.load(open(source))
d["testing"] = [c for c in d["training"] if held_out in c["image"]]
d["training"] = [c for c in d["training"] if held_out not in c["image"]]
json.dump(d, open(target, "w"), indent=1)
PY
cat > "$out/task.yaml" <<YAML
name: brats_regions
modality: MRI
datalist: $out/datalist.json
dataroot: $data
class_names:
  - {name: whole_tumor, index: [1, 2, 3, 4]}
  - {name: tumor_core, index: [1, 3, 4]}
  - {name: enhancing_tumor, index: [4]}
regions_class_order: [2, 1, 4]
YAML

choice=()
if [ -n "${ALGOS:-}" ]; then choice+=(--algos "$ALGOS"); fi
if [ -n "${FOLDS:-}" ]; then choice+=(--folds "$FOLDS"); fi
/usr/bin/time -v "$autoseg" run --input "$out/task.yaml" --work-dir "$out/work" \
    --time-budget "$BUDGET" "${choice[@]}" > "$out/run.log" 2> "$out/time.log" || {
    tail -n 30 "$out/run.log" "$out/time.log"; exit 1; }
grep -E "cross-validation Dice|per class|mean Dice" "$out/run.log"
"$autoseg" evaluate --pred "$out/work/predictions" --ref "$data/labelsTr" \
    --input "$out/task.yaml" --out "$out/evaluation" | grep -E "^region|measuring"
awk '/Maximum resident/ {printf "peak RSS of the run: %.0f MB\n", $6 / 1024}
     /Elapsed/ {print "wall time of the run: " $8}' "$out/time.log"
