#!/usr/bin/env bash
# One training step of the Task04 plan's DynUNet as `autoseg run --time-budget` generates it for
# CPU cores (16-128 channels, patch 40x56x40, batch 2, Dice + CE over deep supervision, AdamW),
# and the same network at nnU-Net's 32-256, in autoseg on flex, autoseg on burn-tch (libtorch,
# scripts/setup-torch.sh) and MONAI's DynUNet on PyTorch (bench/peer_dynunet_step.py): RUNS
# runs of each, interleaved, in one run on one machine. Each row names its precision: autoseg's
# default (`mixed_precision: auto`: bf16 on flex where the CPU has AVX-512 BF16), and beside it
# flex in f32 and PyTorch under CPU autocast to bf16 (PyTorch's and MONAI's default is f32). Prints the medians over the runs (each
# run's figure is itself the median of its steps), the ratios to PyTorch, and each step's
# achieved FLOP/s (the peer's count of one step's FLOPs, the same network for all three)
# against the machine's fp32 peak measured by a 4096^2 GEMM (PyTorch's oneDNN/MKL, and each
# backend's own).
#
#   PEER_PY=$(../shared/peer/setup.sh | tail -1) bench/dynunet_step.sh [RUNS=5]
#   WITH_TCH=0 PEER_PY=... bench/dynunet_step.sh      # flex and PyTorch only
#   MAX_ISA=avx2 PEER_PY=... bench/dynunet_step.sh    # as on a CPU without AVX-512
#
# MAX_ISA=avx2 caps every side's vector ISA, as on a CPU without AVX-512: autoseg's direct
# convolution kernels (AUTOSEG_MAX_CPU_ISA), PyTorch's and libtorch's ATen, oneDNN and MKL
# (ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA, MKL_ENABLE_INSTRUCTIONS). The `gemm` crate that
# flex's strided convolutions use has no such cap: it keeps AVX-512, so its GEMM is left out
# of the peak then, which is PyTorch's GEMM at AVX2.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
peer_py=${PEER_PY:?set PEER_PY to the peer venv python (../shared/peer/setup.sh prints it)}
runs=${1:-5}
steps=${STEPS:-6}
data=$here/../shared/data/Task04_Hippocampus
examples=(-p autoseg-tuner --example bench_bundle_step --example bench_gemm)
device=cpu
source "$here/bench/build_for_device.sh"
build_for_device --bin autoseg
build_for_device "${examples[@]}"
flex=$target/release
backends=("flex:$flex/examples:cpu")
if [ "${WITH_TCH:-1}" = 1 ]; then
  device=tch
  build_for_device "${examples[@]}"
  backends+=("tch:$target/release/examples:tch")
fi
if [ -n "${MAX_ISA:-}" ]; then
  [ "$MAX_ISA" = avx2 ] || { echo "MAX_ISA: only avx2 is known" >&2; exit 2; }
  export AUTOSEG_MAX_CPU_ISA=avx2 ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 \
    MKL_ENABLE_INSTRUCTIONS=AVX2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The bundles, as the planner writes them for a 90-minute run on CPU cores.
"$flex/autoseg" analyze --datalist "$data/dataset.json" -w "$work/w" >/dev/null
for width in 16-128 32-256; do
  set_filters=()
  [ "$width" = 32-256 ] && set_filters=(--set "network.filters=[32,64,128,256]")
  "$flex/autoseg" generate -w "$work/w" --algos dynunet --folds 0 --cpu --time-budget 5400 \
    --force "${set_filters[@]}" >/dev/null
  cp -r "$work/w/bundles/dynunet_0" "$work/$width"
  "$flex/autoseg" generate -w "$work/w" --algos dynunet --folds 0 --cpu --time-budget 5400 \
    --force "${set_filters[@]}" --set mixed_precision=off >/dev/null
  cp -r "$work/w/bundles/dynunet_0" "$work/$width-f32"
  "$flex/examples/bench_bundle_step" --bundle "$work/$width" --steps 2 > "$work/$width.spec.json"
done
# Under an ISA cap, flex's default is f32 and PyTorch's bf16 has no bf16 instructions.
bf16_rows=1
[ -n "${MAX_ISA:-}" ] && bf16_rows=0

echo "ISA cap: ${MAX_ISA:-none}"
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores;" \
  "flags: $(grep -o -w -E 'avx2|fma|avx512f|avx512bw|avx512vl|avx512_vnni|avx512_bf16|amx_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')"
: > "$work/gemm.jsonl"
"$peer_py" "$here/bench/peer_dynunet_step.py" --gemm | sed 's/^/{"who": "PyTorch", "r": /; s/$/}/' >> "$work/gemm.jsonl"
for b in "${backends[@]}"; do
  IFS=: read -r name dir dev <<< "$b"
  [ -n "${MAX_ISA:-}" ] && [ "$name" = flex ] && continue
  "$dir/bench_gemm" --device "$dev" | sed "s/^/{\"who\": \"$name\", \"r\": /; s/\$/}/" >> "$work/gemm.jsonl"
done
: > "$work/steps.jsonl"
for ((r = 1; r <= runs; r++)); do
  for width in 16-128 32-256; do
    for b in "${backends[@]}"; do
      IFS=: read -r name dir dev <<< "$b"
      bundles=("$work/$width")
      [ "$name" = flex ] && [ $bf16_rows = 1 ] && bundles+=("$work/$width-f32")
      for bundle in "${bundles[@]}"; do
        echo "{\"width\": \"$width\", \"who\": \"$name\", \"r\": $("$dir/bench_bundle_step" \
          --bundle "$bundle" --device "$dev" --steps "$steps")}" >> "$work/steps.jsonl"
      done
    done
    peer_flags=("")
    [ $bf16_rows = 1 ] && peer_flags+=(--bf16)
    for flag in "${peer_flags[@]}"; do
      echo "{\"width\": \"$width\", \"who\": \"PyTorch\", \"r\": $("$peer_py" "$here/bench/peer_dynunet_step.py" \
        --spec "$work/$width.spec.json" --steps "$steps" $flag)}" >> "$work/steps.jsonl"
    done
  done
done

python3 - "$work/steps.jsonl" "$work/gemm.jsonl" <<'PY'
import json, statistics, sys
steps = [json.loads(l) for l in open(sys.argv[1])]
gemm = {g["who"]: g["r"]["gemm_gflops"] for g in map(json.loads, open(sys.argv[2]))}
peak = max(gemm.values())
bf16 = [g["r"]["gemm_bf16_gflops"] for g in map(json.loads, open(sys.argv[2])) if "gemm_bf16_gflops" in g["r"]]
print("fp32 GEMM 4096^2: " + ", ".join(f"{w} {v:.0f} GFLOP/s" for w, v in gemm.items())
      + f"; the peak below is {peak:.0f}" + (f" (PyTorch's bf16 GEMM: {bf16[0]:.0f})" if bf16 else ""))
for width in ("16-128", "32-256"):
    rows = [s for s in steps if s["width"] == width]
    flops = statistics.median(s["r"]["step_flops"] for s in rows if s["who"] == "PyTorch")
    times = {}
    for s in rows:
        who = f'{s["who"]} {s["r"].get("mixed_precision", "f32")}'
        times.setdefault(who, []).append(s["r"]["step_seconds"])
    torch = statistics.median(times["PyTorch f32"])
    print(f"\nDynUNet {width}: {flops / 1e9:.1f} GFLOP a step (forward and backward), "
          f"{len(times['PyTorch f32'])} runs")
    for who, ts in times.items():
        t = statistics.median(ts)
        gflops = flops / t / 1e9
        print(f"  {who:12} step {t:.3f} s (runs {min(ts):.3f}-{max(ts):.3f}); PyTorch f32's time / "
              f"this {torch / t:.2f}x; {gflops:.1f} GFLOP/s = {100 * gflops / peak:.0f} % of the peak")
PY
