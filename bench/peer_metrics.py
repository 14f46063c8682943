"""The peer side of bench/metrics.sh: MONAI 1.6.1's Dice, HD95 and symmetric ASD per foreground
class, and scipy.ndimage.label (26-connected) on the reference's foreground, on the same files.

Usage: PEER_PY bench/peer_metrics.py PRED.nii.gz REF.nii.gz CLASSES  -> one JSON line.
Arrays are taken in file order with the file's spacing (what autoseg does); the timers cover
the computation only, with the files already read.
"""
import json, sys, time
import nibabel as nib, numpy as np, torch
from monai.metrics import DiceMetric, HausdorffDistanceMetric, SurfaceDistanceMetric
from scipy import ndimage

pred_img, ref_img = nib.load(sys.argv[1]), nib.load(sys.argv[2])
classes = int(sys.argv[3])
pred = np.asarray(pred_img.dataobj).astype(np.int64)
ref = np.asarray(ref_img.dataobj).astype(np.int64)
spacing = [float(s) for s in ref_img.header.get_zooms()[:3]]

def one_hot(a):
    return torch.nn.functional.one_hot(torch.from_numpy(a), classes).permute(3, 0, 1, 2)[None].float()

t0 = time.perf_counter()
p, g = one_hot(pred), one_hot(ref)
dice = DiceMetric(include_background=False, reduction="none")(p, g)[0]
hd95 = HausdorffDistanceMetric(include_background=False, percentile=95, reduction="none")(p, g, spacing=spacing)[0]
asd = SurfaceDistanceMetric(include_background=False, symmetric=True, reduction="none")(p, g, spacing=spacing)[0]
metrics_seconds = time.perf_counter() - t0

t0 = time.perf_counter()
_, count = ndimage.label(ref > 0, structure=np.ones((3, 3, 3)))
components_seconds = time.perf_counter() - t0

print(json.dumps({
    "classes": [{"class": c + 1, "dice": float(dice[c]), "hd95": float(hd95[c]), "asd": float(asd[c])}
                for c in range(classes - 1)],
    "metrics_seconds": metrics_seconds,
    "components": int(count),
    "components_seconds": components_seconds,
}))
