//! The data layer on the real datasets in ../shared/data, checked against MONAI's own
//! per-case statistics (reference-outputs/, read by nibabel inside MONAI).

mod common;

use std::collections::BTreeSet;

use autoseg_datasets::nifti::{self, DataType};
use autoseg_datasets::{Dataset, LabelVolume, Orientation, Volume};
use serde_yaml::Value;

fn triple(v: &Value) -> [f64; 3] {
    let s = v.as_sequence().expect("a list of three");
    [0, 1, 2].map(|i| s[i].as_f64().unwrap())
}

#[test]
fn task04_all_208_cases_match_monai_shapes_spacing_values_and_labels() {
    let data = common::shared_data();
    let by_case: Value = serde_yaml::from_str(
        &std::fs::read_to_string(
            data.join("reference-outputs/Task04_Hippocampus_datastats_by_case.yaml"),
        )
        .unwrap(),
    )
    .unwrap();
    let dataset =
        Dataset::open(&data.join("Task04_Hippocampus/dataset.json"), None, false).unwrap();
    assert_eq!(dataset.cases.len(), 208);
    let mut datatypes = BTreeSet::new();
    let mut origins = BTreeSet::new();
    let mut compared_values = 0;
    for (case, reference) in dataset
        .cases
        .iter()
        .zip(by_case["stats_by_cases"].as_sequence().unwrap())
    {
        let expected_name = reference["image_filepath"].as_str().unwrap();
        assert!(
            case.images[0].ends_with(expected_name.trim_start_matches("shared/data/")),
            "{}",
            case.id
        );
        let image = Volume::read(&case.images[0]).unwrap();
        let stats = &reference["image_stats"];
        let shape = triple(&stats["shape"][0]).map(|v| v as usize);
        assert_eq!(image.dims(), shape, "{}", case.id);
        assert_eq!(image.spacing(), triple(&stats["spacing"]), "{}", case.id);
        assert_eq!(image.geometry().orientation(), Orientation::RAS);
        // Where MONAI's crop is the whole image, its min/max/mean are the whole image's.
        if triple(&stats["cropped_shape"][0]).map(|v| v as usize) == shape {
            let intensity = &stats["intensity"][0];
            let (mut min, mut max, mut sum) = (f32::INFINITY, f32::NEG_INFINITY, 0f64);
            for &v in image.data() {
                min = min.min(v);
                max = max.max(v);
                sum += v as f64;
            }
            assert_eq!(
                max as f64,
                intensity["max"].as_f64().unwrap(),
                "{}",
                case.id
            );
            assert_eq!(
                min as f64,
                intensity["min"].as_f64().unwrap(),
                "{}",
                case.id
            );
            let mean = sum / image.data().len() as f64;
            let monai_mean = intensity["mean"].as_f64().unwrap();
            assert!(
                (mean - monai_mean).abs() <= 1e-4 * monai_mean.abs(),
                "{}: mean {mean} vs {monai_mean}",
                case.id
            );
            compared_values += 1;
        }
        let labels = LabelVolume::read(case.label.as_ref().unwrap()).unwrap();
        assert_eq!(labels.geometry(), image.geometry());
        let present: Vec<u16> = autoseg_datasets::LabelScan::of(
            &labels.data().iter().map(|&v| v as f32).collect::<Vec<_>>(),
        )
        .present();
        let monai_labels: Vec<u16> = reference["label_stats"]["labels"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u16)
            .collect();
        assert_eq!(present, monai_labels, "{}", case.id);
        datatypes.insert(format!("{:?}", image.header().data_type().unwrap()));
        origins.insert(format!("{:?}", image.affine().origin()));
    }
    assert!(
        compared_values > 150,
        "only {compared_values} cases had uncropped stats"
    );
    // The set mixes float32 and uint8 images, and two origins.
    assert!(
        datatypes.contains(&format!("{:?}", DataType::F32))
            && datatypes.contains(&format!("{:?}", DataType::U8)),
        "{datatypes:?}"
    );
    assert_eq!(origins.len(), 2, "{origins:?}");
}

#[test]
fn brats_reads_as_two_channels_in_lps() {
    let data = common::shared_data();
    let dataset = Dataset::open(
        &data.join("BraTS2015-DeepMedic-mini/dataset.json"),
        None,
        false,
    )
    .unwrap();
    assert_eq!(dataset.cases.len(), 6);
    let case = &dataset.cases[0];
    let image = Volume::read(&case.images[0]).unwrap();
    assert_eq!((image.dims(), image.channels()), ([240, 240, 155], 2));
    assert_eq!(image.geometry().orientation().to_string(), "LPS");
    assert_eq!(image.spacing(), [1.0, 1.0, 1.0]);
    // Channels are stored one after the other: each is a z-scored brain, not a copy of the other.
    assert_ne!(image.channel(0), image.channel(1));
    let labels = LabelVolume::read(case.label.as_ref().unwrap()).unwrap();
    assert_eq!(labels.geometry(), image.geometry());
}

#[test]
fn totalsegmentator_mr_reorients_to_ras_and_back_exactly() {
    let data = common::shared_data();
    let dataset = Dataset::open(
        &data.join("TotalSegmentator-examples/mr/dataset.json"),
        None,
        false,
    )
    .unwrap();
    let case = &dataset.cases[0];
    let image = Volume::read(&case.images[0]).unwrap();
    let labels = LabelVolume::read(case.label.as_ref().unwrap()).unwrap();
    assert_eq!(image.geometry().orientation().to_string(), "LPS");
    let ras = image.to_ras();
    assert_eq!(ras.geometry().orientation(), Orientation::RAS);
    assert_eq!(
        ras.dims(),
        [117, 91, 20],
        "MONAI's shape after Orientationd(RAS)"
    );
    // Every voxel keeps its world position: compare the corner voxels through the affines.
    let far = ras.dims().map(|d| (d - 1) as f64);
    let corner = ras.affine().apply(far);
    let origin = image.affine().apply([0.0, 0.0, 0.0]);
    let opposite = image.affine().apply(image.dims().map(|d| (d - 1) as f64));
    let expect = [0, 1, 2].map(|a| origin[a].max(opposite[a]));
    assert!(
        (0..3).all(|a| (corner[a] - expect[a]).abs() < 1e-6),
        "{corner:?} vs {expect:?}"
    );
    let back = ras.reorient_onto(image.geometry()).unwrap();
    assert_eq!(back.data(), image.data());
    assert_eq!(back.affine(), image.affine());
    let labels_back = labels.to_ras().reorient_onto(labels.geometry()).unwrap();
    assert_eq!(labels_back.data(), labels.data());
    // Header-only reads agree with full reads.
    let header = nifti::read_header(&case.images[0]).unwrap();
    assert_eq!(header.affine(), *image.affine());
}

#[test]
fn written_files_read_back_identically() {
    let data = common::shared_data();
    let dir = tempfile::tempdir().unwrap();
    let sources = [
        "TotalSegmentator-examples/mr/imagesTr/example_mr_sm.nii.gz",
        "TotalSegmentator-examples/ct/imagesTr/example_ct_sm.nii.gz",
        "Task04_Hippocampus/imagesTr/hippocampus_001.nii.gz",
    ];
    for (i, source) in sources.iter().enumerate() {
        let image = Volume::read(&data.join(source)).unwrap();
        for name in [format!("{i}.nii.gz"), format!("{i}.nii")] {
            let path = dir.path().join(&name);
            image.write(&path).unwrap();
            let back = Volume::read(&path).unwrap();
            assert_eq!(back.data(), image.data(), "{source} -> {name}");
            assert_eq!(back.affine(), image.affine(), "{source} -> {name}");
            assert_eq!(back.header().sform_code, image.header().sform_code);
            assert_eq!(
                back.header().descrip,
                image.header().descrip,
                "descrip kept"
            );
        }
    }
}
