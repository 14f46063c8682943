#!/usr/bin/env bash
# Trains nnU-Net's 3d_fullres U-Net for Task04 Hippocampus (the plan in
# ../shared/data/reference-outputs/nnunet_Dataset004_nnUNetPlans.json: 1 mm, patch 40x56x40,
# 4 stages of 32/64/128/256, deep supervision) on fold 0 for a wall-clock budget, then prints
# the validation Dice curve and how long the model waited for data (the loader's goal: under
# 5 % of the training time).
#
# A CPU budget of minutes is a few hundred steps, not nnU-Net's 250,000: nnU-Net's SGD at 0.01
# had not found the posterior hippocampus after 200 steps here. The bench therefore uses AdamW
# at 3e-3 with a cosine decay over the budget and nnU-Net's own Dice (foreground classes,
# pooled over the batch) + cross-entropy, which learn small structures in fewer steps.
#
#   bench/train_task04.sh [MINUTES=20] [DEVICE=tch] [BATCH=2]
#
# DEVICE tch or cuda:N needs the tch build (scripts/setup-torch.sh); cpu runs on flex.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
minutes=${1:-20}
device=${2:-tch}
batch=${3:-2}
work=${WORK:-$HOME/.cache/autoseg/bench-task04}
data=$here/../shared/data/Task04_Hippocampus
features=()
if [ "$device" = cpu ]; then
  target=${CARGO_TARGET_DIR:-$HOME/.cache/autoseg/target}
else
  eval "$("$here/scripts/setup-torch.sh")"
  target=${TCH_TARGET_DIR:-$HOME/.cache/autoseg/target-tch}
  features=(--features tch)
fi
build() { CARGO_TARGET_DIR=$target cargo build --release --quiet --manifest-path "$here/Cargo.toml" "${features[@]}" "$@"; }
build
build -p autoseg-tuner --example bench_loader
rm -rf "$work/bundle"
mkdir -p "$work/bundle/configs"
datalist=$(python3 -c "import os,sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))" "$data/dataset.json" "$work/bundle")
# Epochs are sized so the decay spans the budget (about 1.8 s a step on tch here).
epochs=$(( minutes * 60 / 90 ))
cat > "$work/bundle/configs/hyper_parameters.yaml" <<YAML
data:
  datalist: $datalist
  fold: 0
  num_folds: 5
  cache_dir: ../preprocessed
  plan:
    target_spacing: [1.0, 1.0, 1.0]
    normalization: {name: z_score_nonzero}
    labels: [0, 1, 2]
network:
  name: dynunet
  in_channels: 1
  out_channels: 3
  kernel_sizes: [[3, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3]]
  strides: [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2]]
  filters: [32, 64, 128, 256]
  deep_supervision_heads: 2
loss:
  loss: {name: dice_ce, include_background: false, batch: true}
  weights: halving
optimizer: {name: adam_w, weight_decay: 1.0e-5}
schedule: {name: warmup_cosine, warmup_steps: 20}
learning_rate: 0.003
num_epochs: $epochs
iterations_per_epoch: 50
batch_size: $batch
patch_size: [40, 56, 40]
grad_clip_norm: 12
time_budget_seconds: $(( minutes * 60 ))
validation: {every: 2, overlap: 0.5, batch: 4}
YAML
echo "loader alone: $("$target/release/examples/bench_loader" "$work/bundle" 40)"
"$target/release/autoseg" train --bundle "$work/bundle" --device "$device"
python3 - "$work/bundle/metrics.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
for r in rows:
    if r["mean_dice"]:
        print(f"epoch {r['epoch']:>3}  loss {float(r['loss']):.4f}  mean Dice {float(r['mean_dice']):.4f}  "
              f"anterior {float(r['dice_1']):.4f}  posterior {float(r['dice_2']):.4f}")
train = sum(float(r["seconds"]) - float(r["validation_seconds"]) for r in rows)
wait = sum(float(r["data_wait_seconds"]) for r in rows)
print(f"training {train:.0f} s, waiting for data {wait:.1f} s ({100 * wait / train:.2f} %)")
PY
