#!/usr/bin/env bash
# Many classes through the stages (issue 23), each stage's peak RSS and seconds:
#  - the TotalSegmentator CT example (../shared/data, 117 names, 41 present; one case,
#    listed twice so one fold has a case to validate on): analyze, generate, a short train,
#    predict;
#  - a 40-class CT phantom set (CASES cases of SHAPE) through `autoseg run` with a budget,
#    then `ensemble --selection greedy` over every bundle it trained, against one bundle
#    predicting one case (peak RSS). RUN_FLAGS go to `autoseg run`: the issue's selection
#    check wants 5 folds x 2 templates (`--algos dynunet,segresnet --folds 0,1,2,3,4`),
#    more than a budget on 2 cores would plan.
#
#   [CASES=20] [SHAPE=192,192,160] [BUDGET=1200] [RUN_FLAGS=...] [WORK=dir to keep]
#   [AUTOSEG=binary] bench/many_classes.sh [ts|phantom]...
set -euo pipefail
source "$(dirname "$0")/common.sh"
data=${SHARED_DATA:-$here/../shared/data}
parts=("${@:-ts phantom}")
parts=(${parts[*]})

stage() { # name, command...: prints the stage's peak RSS (MB) and wall seconds
    local name=$1; shift
    /usr/bin/time -f "%M %e" -o "$out/time" "$@" > "$out/$name.log" 2>&1 \
        || { echo "$name failed:"; tail -20 "$out/$name.log"; exit 1; }
    read -r kb seconds < "$out/time"
    peak_mb=$(echo "$kb / 1024" | bc -l)
    printf '  %-10s peak RSS %6.0f MB  %7.1f s\n' "$name" "$(echo "$kb / 1024" | bc -l)" "$seconds"
}

for part in "${parts[@]}"; do
  case $part in
  ts)
    echo "TotalSegmentator CT example"
    ts=$data/TotalSegmentator-examples/ct
    python3 - "$ts" "$out/ts.json" <<'PY'
import json, sys
src, dst = sys.argv[1], sys.argv[2]
d = json.load(open(f"{src}/dataset.json"))
case = {"image": f"{src}/imagesTr/example_ct_sm.nii.gz", "label": f"{src}/labelsTr/example_ct_sm.nii.gz"}
d["training"] = [dict(case, fold=0), dict(case, fold=1)]
d["testing"] = [case["image"]]
json.dump(d, open(dst, "w"))
PY
    w=$out/ts-work
    stage analyze "$autoseg" analyze --datalist "$out/ts.json" --allow-outside-root -w "$w"
    stage generate "$autoseg" generate -w "$w" --algos dynunet --folds 0 --cpu \
        --set num_epochs=2 --set iterations_per_epoch=4
    stage train "$autoseg" train -w "$w"
    stage predict "$autoseg" predict --bundle "$w/bundles/dynunet_0" \
        --images "$ts/imagesTr" --out "$out/ts-pred"
    classes=$(grep -c . <(python3 -c "import json;print('\n'.join(json.load(open('$ts/dataset.json'))['labels']))"))
    echo "  $classes names in the datalist; network outputs: $(grep -m1 out_channels -r "$w/bundles/dynunet_0/configs" | awk '{print $NF}')"
    ;;
  phantom)
    echo "40-class CT phantoms: ${CASES:-20} cases of ${SHAPE:-192,192,160}, budget ${BUDGET:-1200} s"
    keep=${WORK:-$out}
    p=$keep/p40
    w=$keep/p40-work
    "$autoseg" phantom --out "$p" --classes 40 --modality ct --cases "${CASES:-20}" \
        --test-cases 1 --shape "${SHAPE:-192,192,160}" --spacing 0.8,0.8,1.5 > /dev/null
    # shellcheck disable=SC2086 # RUN_FLAGS is a list of flags
    python3 "$here/bench/stage_rss.py" "$out/run.log" -- "$autoseg" run -i "$p/task.yaml" \
        -w "$w" --time-budget "${BUDGET:-1200}" ${RUN_FLAGS:-} \
        || { tail -n 30 "$out/run.log"; exit 1; }
    grep -E "skipped|trial\(s\)|cross-validation Dice|mean Dice" "$out/run.log" | sed 's/^/  /'
    du -sh "$w/preprocessed" | awk '{print "  preprocessed cache " $1}'
    # Selection over every fold and algorithm the run trained, against one bundle
    # predicting one case.
    stage greedy "$autoseg" ensemble -w "$w" --selection greedy
    greedy_mb=$peak_mb
    bundle=$(ls -d "$w"/bundles/*_0 | head -1)
    stage predict "$autoseg" predict --bundle "$bundle" --images "$p/imagesTs" --out "$out/p40-pred"
    printf '  greedy selection over %s bundles / %s predicting one case: %.2fx peak RSS\n' \
        "$(ls -d "$w"/bundles/* | wc -l)" "$(basename "$bundle")" "$(echo "$greedy_mb / $peak_mb" | bc -l)"
    ;;
  esac
done
