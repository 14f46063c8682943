"""The peer's side of bench/predict_memory.sh.

  peer_predict_memory.py image PATH X,Y,Z SX,SY,SZ   writes a CT-like volume (air, a body of
      soft tissue with brighter organs and bone, noise) as uncompressed NIfTI, seeded
  peer_predict_memory.py monai BUNDLE IMAGES OUT      runs an exported MONAI bundle (MONAI's
      own transforms, sliding_window_inference, Invertd back to the image's grid) on IMAGES
"""
import os
import sys

import nibabel as nib
import numpy as np


def image(path, shape, spacing):
    rng = np.random.default_rng(0)
    x, y, z = np.meshgrid(*[np.linspace(-1, 1, n, dtype=np.float32) for n in shape], indexing="ij")
    body = (x / 0.8) ** 2 + (y / 0.6) ** 2 < 1
    ct = np.full(shape, -1000, np.float32)
    ct[body] = 40
    for i in range(12):
        c = rng.uniform(-0.5, 0.5, 3).astype(np.float32)
        r = rng.uniform(0.08, 0.25)
        blob = (x - c[0]) ** 2 + (y - c[1]) ** 2 + ((z - c[2]) / 2) ** 2 < r * r
        ct[blob & body] = rng.uniform(-100, 300)
    ct += rng.normal(0, 20, shape).astype(np.float32)
    nib.save(nib.Nifti1Image(ct, np.diag([*spacing, 1.0])), path)


def monai(bundle, images, out):
    from monai.bundle import run

    run(
        config_file=os.path.join(bundle, "configs/inference.json"),
        meta_file=os.path.join(bundle, "configs/metadata.json"),
        bundle_root=bundle,
        dataset_dir=images,
        output_dir=out,
    )


if __name__ == "__main__":
    if sys.argv[1] == "image":
        triple = lambda s, t: tuple(t(v) for v in s.split(","))
        image(sys.argv[2], triple(sys.argv[3], int), triple(sys.argv[4], float))
    else:
        monai(*sys.argv[2:5])
