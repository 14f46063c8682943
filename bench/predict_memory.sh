#!/usr/bin/env bash
# Prediction's memory and time against MONAI's on the same prediction (issue 23): a DynUNet
# of CLASSES outputs with seeded weights (window ROI) (one training step on phantoms), a 1.5 mm network
# grid, the same window and overlap, no test-time mirroring; a CT-like volume of X x Y x Z at
# 0.8 x 0.8 x 1.5 mm for each Z in ZS. autoseg predicts it with the bundle; MONAI runs the
# same bundle exported (`autoseg export --format monai`: Spacingd, sliding_window_inference,
# Invertd back, as Auto3DSeg's inferer does). Prints peak RSS and seconds of each, and the
# ratios; a peer run the machine cannot hold is reported as such (and larger ones skipped).
#
#   [CLASSES=105] [XY=512,512] [ZS="100 200 400"] [ROI=96] [PEER=0] [AUTOSEG=binary] bench/predict_memory.sh
#
# PEER=0 runs autoseg alone (the peer's largest runs need most of the machine's memory).
set -euo pipefail
source "$(dirname "$0")/common.sh"
py=${PEER_PYTHON:-$HOME/.cache/autoseg-peer/venv/bin/python}
classes=${CLASSES:-105}
xy=${XY:-512,512}
zs=${ZS:-100 200 400}
roi=${ROI:-96}

"$autoseg" phantom --out "$out/p" --classes "$classes" --modality ct --cases 2 --test-cases 0 \
    --shape 48,48,48 --spacing 1.5,1.5,1.5 > /dev/null
w=$out/work
"$autoseg" analyze -i "$out/p/task.yaml" -w "$w" > /dev/null
"$autoseg" generate -w "$w" --algos dynunet --folds 0 --cpu --set num_epochs=1 \
    --set iterations_per_epoch=1 --set batch_size=1 --set 'network.filters=[8, 16, 32, 64]' \
    --set "patch_size=[$roi, $roi, $roi]" \
    --set 'preprocessing.target_spacing=[1.5, 1.5, 1.5]' --set 'inference.mirror_axes=[]' > /dev/null
"$autoseg" train -w "$w" > /dev/null
bundle=$w/bundles/dynunet_0
"$autoseg" export --bundle "$bundle" --format monai --out "$out/monai" > /dev/null
echo "DynUNet 8-64, $classes classes, window $roi^3, overlap 0.5, no mirroring; $(lscpu | sed -n 's/^Model name: *//p')"

measure() { # command...: "peak_MB seconds", or "failed CODE"
    local code=0
    /usr/bin/time -f "%M %e" -o "$out/time" "$@" > "$out/log" 2>&1 || code=$?
    if [ "$code" -ne 0 ]; then echo "failed $code"; else awk '{printf "%.0f %.1f\n", $1 / 1024, $2}' "$out/time"; fi
}

printf '%-14s %16s %16s %10s %10s\n' volume "autoseg MB, s" "MONAI MB, s" "RSS ratio" "time ratio"
peer_fits=${PEER:-1}
for z in $zs; do
    rm -rf "$out/img" "$out/pred-a" "$out/pred-m"; mkdir -p "$out/img"
    "$py" "$here/bench/peer_predict_memory.py" image "$out/img/ct.nii" "$xy,$z" 0.8,0.8,1.5
    read -r a_mb a_s <<< "$(measure "$autoseg" predict --bundle "$bundle" --images "$out/img" --out "$out/pred-a")"
    m="not run (PEER=0, or a smaller volume did not fit)"
    if [ "$peer_fits" = 1 ]; then
        m=$(measure "$py" "$here/bench/peer_predict_memory.py" monai "$out/monai" "$out/img" "$out/pred-m")
    fi
    if [[ $m == failed* ]]; then
        peer_fits=0
        printf '%-14s %16s %s\n' "${xy/,/x}x$z" "$a_mb, $a_s" "MONAI $m (137: killed, out of memory)"
    elif [[ $m == not* ]]; then
        printf '%-14s %16s MONAI %s\n' "${xy/,/x}x$z" "$a_mb, $a_s" "$m"
    else
        read -r m_mb m_s <<< "$m"
        printf '%-14s %16s %16s %9.1fx %9.2fx\n' "${xy/,/x}x$z" "$a_mb, $a_s" "$m_mb, $m_s" \
            "$(echo "$m_mb / $a_mb" | bc -l)" "$(echo "$a_s / $m_s" | bc -l)"
    fi
done
