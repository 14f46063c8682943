//! `autoseg evaluate` against MONAI's metrics on the same files (fixture from
//! fixtures/evaluate/make.sh), and its handling of references and bad cases.

mod common;

use std::path::Path;

use serde_json::Value;

/// The phantoms fixtures/evaluate/make.sh measures: seed 1's labels against seed 0's.
fn phantoms(dir: &Path) {
    for seed in ["0", "1"] {
        let out = dir.join(format!("seed{seed}"));
        let run = common::autoseg(&[
            "phantom",
            "--out",
            out.to_str().unwrap(),
            "--cases",
            "3",
            "--test-cases",
            "0",
            "--shape",
            "24,24,16",
            "--spacing",
            "1,1,2.5",
            "--seed",
            seed,
        ]);
        assert!(run.status.success(), "{}", common::text(&run));
    }
}

fn evaluate(args: &[&str]) -> std::process::Output {
    let mut all = vec!["evaluate"];
    all.extend_from_slice(args);
    common::autoseg(&all)
}

#[test]
fn every_figure_equals_monais() {
    let dir = tempfile::tempdir().unwrap();
    phantoms(dir.path());
    let (pred, reference) = (
        dir.path().join("seed1/labelsTr"),
        dir.path().join("seed0/labelsTr"),
    );
    let out = dir.path().join("eval");
    let images = dir.path().join("seed0/imagesTr");
    let run = evaluate(&[
        "--pred",
        pred.to_str().unwrap(),
        "--ref",
        reference.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--png",
        "--images",
        images.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", common::text(&run));
    let golden: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/evaluate/monai_metrics.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let mut compared = 0;
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        let expected = &golden[cells[0]][cells[1]];
        for (name, cell) in header.iter().zip(&cells).skip(2) {
            let ours: f64 = cell.parse().unwrap();
            let theirs = expected[*name].as_f64().unwrap();
            // MONAI computes in float32.
            assert!(
                (ours - theirs).abs() <= 1e-5 * theirs.abs().max(1.0),
                "{} label {} {name}: ours {ours}, MONAI {theirs}",
                cells[0],
                cells[1]
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 3 * 2 * 8);
    // One overlay per case: 6 slices of 24x24 voxels, each drawn 10x, side by side.
    for case in ["phantom_000", "phantom_001", "phantom_002"] {
        let png = std::fs::read(out.join(format!("overlays/{case}.png"))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let size = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
        assert_eq!((size(16), size(20)), (6 * 240, 240), "{case}");
    }
    let summary: Value =
        serde_yaml::from_str(&std::fs::read_to_string(out.join("summary.yaml")).unwrap()).unwrap();
    assert!(summary["rules"].as_str().unwrap().contains("nnU-Net"));
    let dice_1: Vec<f64> = ["phantom_000", "phantom_001", "phantom_002"]
        .iter()
        .map(|c| golden[c]["1"]["dice"].as_f64().unwrap())
        .collect();
    let mean = dice_1.iter().sum::<f64>() / 3.0;
    assert!((summary["classes"][0]["dice"]["mean"].as_f64().unwrap() - mean).abs() < 1e-5);
}

#[test]
fn references_come_from_a_datalist_and_a_bad_case_is_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    phantoms(dir.path());
    let pred = dir.path().join("seed1/labelsTr");
    // A prediction on another grid, and one with no reference.
    let odd = common::phantom_dataset(1);
    std::fs::copy(
        odd.path().join("data/labelsTr/phantom_000.nii.gz"),
        pred.join("phantom_002.nii.gz"),
    )
    .unwrap();
    std::fs::copy(pred.join("phantom_000.nii.gz"), pred.join("stray.nii.gz")).unwrap();
    let datalist = dir.path().join("seed0/dataset.json");
    let run = evaluate(&[
        "--pred",
        pred.to_str().unwrap(),
        "--ref",
        datalist.to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(1), "{}", common::text(&run));
    common::assert_output_contains(&run, "FAILED phantom_002");
    common::assert_output_contains(&run, "does not lie on the grid of");
    common::assert_output_contains(&run, "FAILED stray: no reference");
    common::assert_output_contains(&run, "2 case(s), 2 failed");
    assert!(pred.join("metrics.csv").is_file() && pred.join("summary.yaml").is_file());
}

/// A GPU named in a build without the CUDA kernels is a named refusal, before any case is
/// read; so is a device that does not exist (for analyze as for evaluate).
#[test]
fn a_gpu_without_the_cuda_build_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    phantoms(dir.path());
    let labels = dir.path().join("seed0/labelsTr");
    let labels = labels.to_str().unwrap();
    let run = evaluate(&["--pred", labels, "--ref", labels, "--device", "cuda:0"]);
    assert!(!run.status.success());
    assert!(
        common::text(&run).contains("--features cuda"),
        "{}",
        common::text(&run)
    );
    let run = evaluate(&["--pred", labels, "--ref", labels, "--device", "tpu"]);
    assert!(common::text(&run).contains("unknown device `tpu`"));
    let datalist = dir.path().join("seed0/dataset.json");
    let work = dir.path().join("work");
    let run = common::autoseg(&[
        "analyze",
        "--datalist",
        datalist.to_str().unwrap(),
        "-w",
        work.to_str().unwrap(),
        "--device",
        "cuda:0",
    ]);
    assert!(!run.status.success());
    assert!(
        common::text(&run).contains("--features cuda"),
        "{}",
        common::text(&run)
    );
}
