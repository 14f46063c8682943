//! The files autoseg writes for nibabel to read (fixtures/nifti/make.sh), made the same way by
//! the example that feeds the fixture script and by the test that checks against it.

use std::path::Path;

use autoseg_datasets::affine::Affine;
use autoseg_datasets::phantom::{PhantomSpec, generate_case};
use autoseg_datasets::{Geometry, Modality, Volume};

/// Writes every fixture file into `dir`; returns their names.
pub fn write_all(dir: &Path) -> Vec<&'static str> {
    let turned = PhantomSpec {
        shape: [6, 5, 4],
        random_orientation: true,
        seed: 5,
        ..PhantomSpec::default()
    };
    let (image, labels) = generate_case(&turned, 1);
    image.write(&dir.join("phantom_mr_turned.nii.gz")).unwrap();
    labels
        .write(&dir.join("phantom_mr_turned_label.nii.gz"))
        .unwrap();
    let ct = PhantomSpec {
        shape: [5, 4, 3],
        spacing: [0.8, 0.8, 2.5],
        modality: Modality::Ct,
        seed: 9,
        ..PhantomSpec::default()
    };
    generate_case(&ct, 0)
        .0
        .write(&dir.join("phantom_ct_aniso.nii"))
        .unwrap();

    let (s, c) = 0.4f64.sin_cos();
    let oblique = Affine([
        [c, -s, 0.0, -12.5],
        [s, c, 0.0, 40.0],
        [0.0, 0.0, -3.0, 7.25],
        [0.0, 0.0, 0.0, 1.0],
    ]);
    let geometry = Geometry {
        dims: [3, 2, 2],
        affine: oblique,
    };
    let data: Vec<f32> = (0..24).map(|i| i as f32 * 0.25 - 2.0).collect();
    Volume::new(geometry, 2, data.clone())
        .write(&dir.join("two_channels_oblique.nii.gz"))
        .unwrap();
    let ids: Vec<u16> = (0..12).map(|i| i * 50).collect();
    Volume::new(geometry, 1, vec![0.0; 12])
        .with_data(1, ids)
        .write(&dir.join("labels_uint16.nii.gz"))
        .unwrap();
    // 33,000 voxels along x: more than NIfTI-1's 16-bit dims hold, so this is written as NIfTI-2.
    let long = Geometry {
        dims: [33_000, 1, 1],
        affine: Affine::IDENTITY,
    };
    let ramp: Vec<f32> = (0..33_000).map(|i| (i % 251) as f32).collect();
    Volume::new(long, 1, ramp)
        .write(&dir.join("nifti2_long.nii.gz"))
        .unwrap();
    vec![
        "phantom_mr_turned.nii.gz",
        "phantom_mr_turned_label.nii.gz",
        "phantom_ct_aniso.nii",
        "two_channels_oblique.nii.gz",
        "labels_uint16.nii.gz",
        "nifti2_long.nii.gz",
    ]
}
