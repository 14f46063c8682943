#!/usr/bin/env bash
# Sparse annotation against full annotation (issue 23): the same phantoms (seed, shape,
# cases) once fully labelled and once with every other axial slice of each training label
# replaced by the ignore label, trained with the same recipe and epochs, and scored on the
# same fully labelled testing cases. Prints both Dice figures and their difference.
#
#   [EPOCHS=40] [SEED=3] [FOLDS=0] [AUTOSEG=binary] bench/ignore_label.sh
set -euo pipefail
source "$(dirname "$0")/common.sh"
EPOCHS=${EPOCHS:-40}
SEED=${SEED:-3}
FOLDS=${FOLDS:-0}

# The demo's recipe (src/commands/demo.rs), at a fixed number of epochs.
RECIPE=(--set 'network.filters=[8, 16, 32, 64]' --set 'optimizer={name: adam_w}'
        --set 'schedule={name: constant}' --set learning_rate=0.01
        --set num_epochs="$EPOCHS" --set iterations_per_epoch=10 --set batch_size=2
        --set loss.loss.batch=true --set augment.p_rotation=0 --set augment.p_scale=0
        --set augment.p_low_resolution=0 --set validation.every=2)

dice_of() { # work dir, data dir -> "organ lesion" mean Dice on the testing cases
    "$autoseg" evaluate --pred "$1/predictions" --ref "$2/labelsTs" --out "$1/evaluation" \
        | awk '/^label/ {printf "%s ", $4} END {print ""}'
}

declare -A mean
for kind in full sparse; do
    flag=()
    if [ "$kind" = sparse ]; then flag=(--sparse-labels); fi
    "$autoseg" phantom --out "$out/$kind/data" --seed "$SEED" "${flag[@]}" > /dev/null
    "$autoseg" run --input "$out/$kind/data/task.yaml" --work-dir "$out/$kind/work" \
        --algos dynunet --folds "$FOLDS" "${RECIPE[@]}" > "$out/$kind/run.log" 2>&1
    read -r organ lesion <<< "$(dice_of "$out/$kind/work" "$out/$kind/data")"
    printf '%-7s organ %s  lesion %s\n' "$kind" "$organ" "$lesion"
    mean[$kind]=$(awk -v a="$organ" -v b="$lesion" 'BEGIN {print (a + b) / 2}')
done
awk -v f="${mean[full]}" -v s="${mean[sparse]}" \
    'BEGIN {printf "mean Dice: full %.4f, sparse %.4f, difference %.4f\n", f, s, f - s}'
