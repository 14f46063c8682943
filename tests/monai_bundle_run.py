"""Runs an exported MONAI bundle with MONAI's own runner and compares its label maps with
autoseg's; used by tests/export_cli.rs.

usage: monai_bundle_run.py BUNDLE IMAGES MONAI_OUT AUTOSEG_OUT
`monai.bundle.run` is what `python -m monai.bundle run` calls (its command line needs the
`fire` package, which the peer's venv may lack). Prints JSON: per case, the Dice of each
label either holds, and the share of voxels that agree.
"""
import json
import os
import sys

import nibabel as nib
import numpy as np
from monai.bundle import run

bundle, images, monai_out, autoseg_out = sys.argv[1:5]
run(
    config_file=os.path.join(bundle, "configs/inference.json"),
    meta_file=os.path.join(bundle, "configs/metadata.json"),
    bundle_root=bundle,
    dataset_dir=images,
    output_dir=monai_out,
)
report = {}
for name in sorted(os.listdir(autoseg_out)):
    if not name.endswith(".nii.gz"):
        continue
    case = name[: -len(".nii.gz")]
    ours_img = nib.load(os.path.join(autoseg_out, name))
    theirs_img = nib.load(os.path.join(monai_out, f"{case}_seg.nii.gz"))
    ours, theirs = np.asarray(ours_img.dataobj), np.asarray(theirs_img.dataobj)
    assert ours.shape == theirs.shape, (case, ours.shape, theirs.shape)
    assert np.allclose(ours_img.affine, theirs_img.affine, atol=1e-4), case
    dice = {}
    for label in np.union1d(np.unique(ours), np.unique(theirs)):
        a, b = ours == label, theirs == label
        dice[int(label)] = float(2 * (a & b).sum() / (a.sum() + b.sum()))
    report[case] = {"dice": dice, "agreement": float((ours == theirs).mean())}
print(json.dumps(report))
