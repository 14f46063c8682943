//! NIfTI agreement with nibabel, both ways, from fixtures/nifti/nibabel.json (made by
//! fixtures/nifti/make.sh with nibabel 5.4.2).

mod support;

use std::io::Read;
use std::path::Path;

use autoseg_datasets::hash::fnv1a64_hex as fnv1a64;
use autoseg_datasets::nifti::{self, NiftiVersion};
use autoseg_datasets::{Affine, Volume};
use serde_json::Value;

fn fixture() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/nifti/nibabel.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn affine_of(value: &Value) -> Affine {
    let rows: Vec<Vec<f64>> = serde_json::from_value(value.clone()).unwrap();
    Affine([0, 1, 2, 3].map(|r| [0, 1, 2, 3].map(|c| rows[r][c])))
}

fn floats(value: &Value) -> Vec<f64> {
    serde_json::from_value(value.clone()).unwrap()
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn files_nibabel_wrote_read_the_same_here() {
    let cases = fixture()["nibabel_written"].as_object().unwrap().clone();
    assert_eq!(cases.len(), 7);
    for (name, case) in &cases {
        let file = nifti::decode(&hex(case["hex"].as_str().unwrap()))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let shape: Vec<usize> = serde_json::from_value(case["shape"].clone()).unwrap();
        assert_eq!(file.header.dims(), shape, "{name}");
        let diff = file
            .header
            .affine()
            .max_abs_diff(&affine_of(&case["affine"]));
        // nibabel computes the qform in float32; 1e-5 mm is far below any voxel.
        assert!(diff < 1e-5, "{name}: affine differs by {diff}");
        let expected = floats(&case["values"]);
        assert_eq!(file.data.len(), expected.len(), "{name}");
        for (i, (&ours, &theirs)) in file.data.iter().zip(&expected).enumerate() {
            assert_eq!(ours, theirs as f32, "{name}: voxel {i}");
        }
    }
    assert_eq!(
        nifti::decode(&hex(cases["float64_4d_nifti2"]["hex"].as_str().unwrap()))
            .unwrap()
            .header
            .version,
        NiftiVersion::Two
    );
}

#[test]
fn files_written_here_read_the_same_in_nibabel() {
    let fixture = fixture();
    let dir = tempfile::tempdir().unwrap();
    let names = support::fixture_files::write_all(dir.path());
    let cases = fixture["autoseg_written"].as_object().unwrap();
    assert_eq!(names.len(), cases.len());
    for name in names {
        let case = &cases[name];
        let path = dir.path().join(name);
        let mut raw = std::fs::read(&path).unwrap();
        if name.ends_with(".gz") {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&raw[..])
                .read_to_end(&mut plain)
                .unwrap();
            raw = plain;
        }
        assert_eq!(
            fnv1a64(&raw),
            case["fnv1a64"],
            "{name}: the writer's bytes changed; rerun fixtures/nifti/make.sh"
        );
        let volume = Volume::read(&path).unwrap();
        let mut shape: Vec<usize> = volume.dims().to_vec();
        if volume.channels() > 1 {
            shape.push(volume.channels());
        }
        assert_eq!(
            shape,
            serde_json::from_value::<Vec<usize>>(case["shape"].clone()).unwrap(),
            "{name}"
        );
        assert!(
            volume.affine().max_abs_diff(&affine_of(&case["affine"])) < 1e-6,
            "{name}: affine"
        );
        let qdiff = volume
            .header()
            .qform_affine()
            .max_abs_diff(&affine_of(&case["qform_affine"]));
        assert!(
            qdiff < 1e-5,
            "{name}: qform differs by {qdiff}: {:?} vs {}",
            volume.header().qform_affine(),
            case["qform_affine"]
        );
        assert_eq!(
            volume.geometry().orientation().to_string(),
            case["axcodes"],
            "{name}"
        );
        let head = floats(&case["head"]);
        assert!(
            volume
                .data()
                .iter()
                .zip(&head)
                .all(|(&a, &b)| a == b as f32),
            "{name}: values"
        );
        let sum: f64 = volume.data().iter().map(|&v| v as f64).sum();
        let nib_sum = case["sum"].as_f64().unwrap();
        assert!(
            (sum - nib_sum).abs() <= 1e-9 * nib_sum.abs().max(1.0),
            "{name}: sum {sum} vs {nib_sum}"
        );
        let version = if volume.header().version == NiftiVersion::Two {
            2
        } else {
            1
        };
        assert_eq!(version, case["version"], "{name}");
    }
}
