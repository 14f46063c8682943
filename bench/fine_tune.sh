#!/usr/bin/env bash
# Fine-tuning against training from scratch: `autoseg demo` trains dynunet on phantoms; a
# second phantom dataset (another seed, so no case is shared) then trains one fold-0 bundle
# from the demo's fold-0 weights (`train --init-weights`) and the same bundle from a random
# draw, EPOCHS epochs each with a validation every epoch, and the epochs each needs to reach
# a mean validation Dice of DICE are printed.
#
#   [EPOCHS=30] [DICE=0.9] [AUTOSEG=binary] [DEMO=dir of a finished demo] bench/fine_tune.sh
set -euo pipefail
source "$(dirname "$0")/common.sh"
epochs=${EPOCHS:-30} dice=${DICE:-0.9}

demo=${DEMO:-$out/demo}
if [ ! -f "$demo/work_dir/bundles/dynunet_0/model/best.safetensors" ]; then
  "$autoseg" demo --dir "$demo" >/dev/null
fi
demo_bundle=$demo/work_dir/bundles/dynunet_0

# The demo's recipe (src/commands/demo.rs) on a dataset of another seed, without its budget.
"$autoseg" phantom --out "$out/data" --seed 7 --random-orientation >/dev/null
w=$out/work
"$autoseg" analyze -i "$out/data/task.yaml" -w "$w" >/dev/null
"$autoseg" generate -w "$w" --algos dynunet --folds 0 --cpu \
  --set 'network.filters=[8, 16, 32, 64]' --set 'optimizer={name: adam_w}' \
  --set 'schedule={name: constant}' --set learning_rate=0.01 --set num_epochs="$epochs" \
  --set iterations_per_epoch=10 --set batch_size=2 --set loss.loss.batch=true \
  --set augment.p_rotation=0 --set augment.p_scale=0 --set augment.p_low_resolution=0 \
  --set validation.every=1 >/dev/null
# The same network as the demo's, whatever the planner made of this dataset.
cp "$demo_bundle/configs/network.yaml" "$w/bundles/dynunet_0/configs/network.yaml"
cp -r "$w/bundles/dynunet_0" "$w/bundles/finetuned_0"

"$autoseg" train --bundle "$w/bundles/dynunet_0" >/dev/null 2>&1
"$autoseg" train --bundle "$w/bundles/finetuned_0" \
  --init-weights "$demo_bundle/model/best.safetensors" 2>&1 | grep "started from" || true

# The first epoch whose mean validation Dice (metrics.csv's last column) reaches $dice.
first_epoch() {
  awk -F, -v d="$dice" 'NR > 1 && $NF != "" && $NF + 0 >= d {print $1; found = 1; exit}
    END {if (!found) print "not within the epochs"}' "$1/metrics.csv"
}
best() { awk -F, 'NR > 1 && $NF != "" && $NF + 0 > b {b = $NF + 0} END {printf "%.3f", b}' "$1/metrics.csv"; }
s=$w/bundles/dynunet_0 f=$w/bundles/finetuned_0
echo "epochs to mean Dice $dice: from scratch $(first_epoch "$s"), fine-tuned $(first_epoch "$f")"
echo "best mean Dice in $epochs epochs: from scratch $(best "$s"), fine-tuned $(best "$f")"
lscpu | grep -E 'Model name' | sed 's/^/cpu: /'
