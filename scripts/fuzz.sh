#!/usr/bin/env bash
# Fuzzes what autoseg reads from files (NIfTI, datalists, task and bundle configs, weights)
# with AFL++ through cargo-afl, on stable Rust: each target for SECONDS (default 3600),
# FUZZ_JOBS of them at a time (default 1; AFL++ gives each a core of its own), seeded from the
# regression corpus (tests/common/hostile.rs), phantoms and real files from ../shared/data. A
# target fuzzed before resumes its queue (AFL_AUTORESUME). Crashes land in
# fuzz/out/<target>/default/crashes; a summary line per target (executions and seconds of
# this session, crashes in all) goes to fuzz/out/summary.txt.
#
#   [FUZZ_JOBS=2] scripts/fuzz.sh [SECONDS] [TARGET...]   targets: nifti datalist task bundle_config weights
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-3600}"
shift || true
if [ $# -gt 0 ]; then targets=("$@"); else targets=(nifti datalist task bundle_config weights); fi
# autoseg itself (to make seed configs) from the usual build; the targets in a dir of their own.
main_target="${CARGO_TARGET_DIR:-$HOME/.cache/autoseg/target}"
CARGO_TARGET_DIR="$main_target" cargo build --release -q
autoseg="$main_target/release/autoseg"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/autoseg/target-fuzz}"

if ! cargo afl --version >/dev/null 2>&1; then
  cargo install cargo-afl --locked
fi
cargo afl config --build >/dev/null 2>&1 || true
(cd fuzz && cargo afl build --release --bins)

data=../shared/data
seeds=fuzz/seeds
rm -rf "$seeds"
real=()
for f in "$data"/Task04_Hippocampus/imagesTr/hippocampus_001.nii.gz \
         "$data"/Task04_Hippocampus/labelsTr/hippocampus_001.nii.gz; do
  [ -f "$f" ] && real+=(--nifti "$f")
done
for f in "$data"/Task04_Hippocampus/dataset.json "$data"/BraTS2015-DeepMedic-mini/dataset.json; do
  [ -f "$f" ] && real+=(--text datalist "$f")
done
# A task config and a bundle's configs, made by autoseg on phantoms.
work=$(mktemp -d)
"$autoseg" phantom --out "$work/data" --cases 3 --shape 16,16,12 >/dev/null
"$autoseg" analyze -i "$work/data/task.yaml" -w "$work/w" >/dev/null
"$autoseg" generate -w "$work/w" --folds 0 >/dev/null
real+=(--text task "$work/data/task.yaml")
for b in "$work"/w/bundles/*; do
  cat "$b"/configs/*.yaml > "$work/$(basename "$b").yaml"
  real+=(--text bundle_config "$work/$(basename "$b").yaml")
done
"$CARGO_TARGET_DIR/release/seeds" "$seeds" "${real[@]}"
# Weights: an empty file and a header-only safetensors.
mkdir -p "$seeds/weights"
printf '\x02\x00\x00\x00\x00\x00\x00\x00{}' > "$seeds/weights/empty.safetensors"

mkdir -p fuzz/out
echo "# $(date -u +%F) $(lscpu | sed -n 's/^Model name: *//p')" >> fuzz/out/summary.txt
# One target for $seconds; the figures are this session's (AFL++ carries a resumed run's
# stats over from its earlier sessions).
fuzz_one() {
  local t=$1 stats="fuzz/out/$1/default/fuzzer_stats" before_execs=0 before_time=0
  if [ -f "$stats" ]; then
    before_execs=$(awk -F': *' '/^execs_done/ {print $2}' "$stats")
    before_time=$(awk -F': *' '/^run_time/ {print $2}' "$stats")
  fi
  AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_AUTORESUME=1 \
    cargo afl fuzz -i "$seeds/$t" -o "fuzz/out/$t" -V "$seconds" -m none \
    "$CARGO_TARGET_DIR/release/$t" > "fuzz/out/$t.log" 2>&1 || true
  local execs run crashes
  execs=$(awk -F': *' '/^execs_done/ {print $2}' "$stats" 2>/dev/null || echo 0)
  run=$(awk -F': *' '/^run_time/ {print $2}' "$stats" 2>/dev/null || echo 0)
  crashes=$(find "fuzz/out/$t/default/crashes" -type f -name 'id:*' 2>/dev/null | wc -l)
  # A resumed run that did not carry its old stats over reports this session's alone.
  if [ "$run" -lt "$before_time" ]; then before_execs=0; before_time=0; fi
  echo "$t: $((execs - before_execs)) executions in $((run - before_time)) s, $crashes crashes" \
    | tee -a fuzz/out/summary.txt
}
jobs="${FUZZ_JOBS:-1}"
running=0
for t in "${targets[@]}"; do
  fuzz_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait
rm -rf "$work"
