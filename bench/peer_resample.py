"""The peer side of bench/resample.sh: MONAI 1.6.1's Spacing transform (bilinear, its default)
to an isotropic spacing, on every channel of an image. Prints one JSON line; the timer covers
the transform only, with the file already read.

Usage: PEER_PY bench/peer_resample.py IMAGE.nii.gz SPACING
"""
import json, sys, time
from monai.transforms import LoadImage, Spacing

image = LoadImage(image_only=True, ensure_channel_first=True)(sys.argv[1])
spacing = float(sys.argv[2])
t0 = time.perf_counter()
out = Spacing(pixdim=(spacing, spacing, spacing), mode="bilinear")(image)
seconds = time.perf_counter() - t0
print(json.dumps({"shape": list(out.shape[1:]), "channels": int(out.shape[0]), "seconds": seconds}))
