#!/usr/bin/env bash
# The ensemble stage's time with the validation probabilities training kept, against
# predicting every validation case again (what `ensemble --selection greedy` did before
# training kept them): a 5-fold phantom run of dynunet, each way REPEAT times, alternating.
#
#   [REPEAT=3] [CASES=20] [AUTOSEG=binary] bench/ensemble_crossval.sh
#
# Prints each run's seconds, the medians and their ratio (re-predicting / reading kept).
set -euo pipefail
source "$(dirname "$0")/common.sh"
repeat=${REPEAT:-3}

"$autoseg" phantom --out "$out/data" --cases "${CASES:-20}" --test-cases 1 --shape 32,32,32 >/dev/null
w=$out/work
"$autoseg" analyze -i "$out/data/task.yaml" -w "$w" >/dev/null
"$autoseg" generate -w "$w" --algos dynunet --cpu \
  --set 'network.filters=[8, 16, 32, 64]' --set num_epochs=2 --set iterations_per_epoch=5 \
  --set batch_size=2 >/dev/null
"$autoseg" train -w "$w" >/dev/null
"$autoseg" rank -w "$w" >/dev/null

seconds() { /usr/bin/time -f %e "$@" 2>&1 >/dev/null | tail -1; }
median() {
  printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
kept=() again=()
for _ in $(seq "$repeat"); do
  rm -rf "$w"/bundles/*/validation
  again+=("$(seconds "$autoseg" ensemble -w "$w" --selection greedy)")
  kept+=("$(seconds "$autoseg" ensemble -w "$w" --selection greedy)")
done
echo "predicting again (s): ${again[*]}"
echo "reading kept (s):     ${kept[*]}"
a=$(median "${again[@]}") k=$(median "${kept[@]}")
echo "medians: predicting again $a s, reading kept $k s, ratio $(awk -v a="$a" -v k="$k" 'BEGIN {printf "%.1fx", a / k}')"
lscpu | grep -E 'Model name' | sed 's/^/cpu: /'
