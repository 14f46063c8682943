#!/usr/bin/env bash
# autoseg analyze vs MONAI's DataAnalyzer (the peer), same data, same run, 2 workers each.
#
#   PEER_PY=$(../shared/peer/setup.sh | tail -1) [REPEAT=3] bench/analyze.sh [DATASET_DIR ...]
#
# Default datasets: Task04_Hippocampus (208 cases) and the BraTS subset (6 cases, 2 channels).
# Each tool runs REPEAT times per dataset, the two alternating. Printed per tool: the median
# wall seconds, and the peak RSS (KB, of the largest single process, the largest over the
# runs); and the ratio of the medians, peer/autoseg. The peer's time includes its Python start-up, which the
# `monai_datastats_seconds` line (DataAnalyzer alone) leaves out; both ratios are printed.
# autoseg runs without its cache (--no-cache), so every case is read and analyzed.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
data=${DATA:-$here/../shared/data}
peer_py=${PEER_PY:?set PEER_PY to the peer venv python (../shared/peer/setup.sh prints it)}
peer_script=${PEER_SCRIPT:-$here/../shared/peer/datastats.py}
target=${CARGO_TARGET_DIR:-$HOME/.cache/autoseg/target}
CARGO_TARGET_DIR=$target cargo build --release --quiet --manifest-path "$here/Cargo.toml"
autoseg=$target/release/autoseg
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
sets=("$@")
[ ${#sets[@]} -gt 0 ] || sets=("$data/Task04_Hippocampus" "$data/BraTS2015-DeepMedic-mini")

repeat=${REPEAT:-3}

timed() { # timed LOG CMD... -> prints "seconds kb"
  local log=$1; shift
  /usr/bin/time -f "%e %M" -o "$log.time" "$@" >"$log" 2>&1
  cat "$log.time"
}

largest() { printf '%s\n' "$@" | sort -g | tail -1; }

median() { # median of the arguments
  printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

printf '%-28s %10s %10s %10s %10s %10s %8s %10s\n' dataset autoseg_s peer_s peer_core_s \
  autoseg_kb peer_kb ratio ratio_core
for ds in "${sets[@]}"; do
  name=$(basename "$ds")
  a_runs=() a_kbs=() p_runs=() p_kbs=() p_cores=()
  for _ in $(seq "$repeat"); do
    read -r s kb < <(timed "$out/$name.autoseg" "$autoseg" analyze --datalist "$ds/dataset.json" \
      --work-dir "$out/$name-work" --no-cache --workers 2)
    a_runs+=("$s") a_kbs+=("$kb")
    read -r s kb < <(timed "$out/$name.peer" "$peer_py" "$peer_script" "$ds" "$out/$name-monai.yaml" 2)
    p_runs+=("$s") p_kbs+=("$kb")
    p_cores+=("$(awk '/monai_datastats_seconds/ {print $2}' "$out/$name.peer")")
  done
  a_s=$(median "${a_runs[@]}") a_kb=$(largest "${a_kbs[@]}")
  p_s=$(median "${p_runs[@]}") p_kb=$(largest "${p_kbs[@]}") p_core=$(median "${p_cores[@]}")
  echo "# $name runs (s): autoseg ${a_runs[*]}; peer ${p_runs[*]}"
  printf '%-28s %10.2f %10.2f %10.2f %10d %8d %10.1f %10.1f\n' "$name" "$a_s" "$p_s" "$p_core" \
    "$a_kb" "$p_kb" "$(echo "$p_s / $a_s" | bc -l)" "$(echo "$p_core / $a_s" | bc -l)"
done
