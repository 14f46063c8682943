//! The analyzer's own figures against brute force on a phantom dataset stored in mixed
//! orientations: exact pooled percentiles against a full sort of every voxel, per-class voxel
//! counts and components against the label maps, and MONAI's crop rule.

use autoseg_analyzer::sample::linear_percentile;
use autoseg_analyzer::sketch::error_bound;
use autoseg_analyzer::{AnalyzeOptions, analyze};
use autoseg_datasets::phantom::{PhantomSpec, write_dataset};
use autoseg_datasets::{Dataset, LabelVolume, Volume};

/// numpy's percentile of the sorted sample, and the sketch's error bound there.
fn numpy_percentile(sorted: &[f64], q: f64) -> (f64, f64) {
    (
        linear_percentile(sorted.len() as f64, q, |r| sorted[r as usize]),
        error_bound(sorted, q),
    )
}

#[test]
fn pooled_foreground_percentiles_match_a_full_sort() {
    let dir = tempfile::tempdir().unwrap();
    let spec = PhantomSpec {
        cases: 6,
        test_cases: 0,
        shape: [20, 18, 16],
        random_orientation: true,
        seed: 5,
        ..PhantomSpec::default()
    };
    let written = write_dataset(&spec, dir.path()).unwrap();
    let dataset = Dataset::open(&written.datalist, None, false).unwrap();
    let options = AnalyzeOptions {
        work_dir: dir.path().join("work"),
        use_cache: false,
        device: Default::default(),
    };
    let analysis = analyze(&dataset, &options, &|| {}).unwrap();
    assert!(analysis.failed.is_empty());

    // Brute force: every foreground voxel of every case, sorted.
    let mut foreground = Vec::new();
    for (case, stats) in dataset.cases.iter().zip(&analysis.cases) {
        let image = Volume::read_channels(&case.images).unwrap().to_ras();
        let label = LabelVolume::read(case.label.as_ref().unwrap())
            .unwrap()
            .to_ras();
        assert_eq!(image.dims(), label.dims());
        let classes = &stats.label.as_ref().unwrap().classes;
        for class in classes {
            let count = label.data().iter().filter(|&&l| l == class.id).count() as u64;
            assert_eq!(class.voxels, count, "{} class {}", case.id, class.id);
            assert_eq!(class.component_sizes.iter().sum::<u64>(), count);
        }
        foreground.extend(
            image
                .channel(0)
                .iter()
                .zip(label.data())
                .filter(|(_, l)| **l > 0)
                .map(|(v, _)| *v as f64),
        );
    }
    foreground.sort_by(f64::total_cmp);
    let exact = &analysis.summary.foreground_intensity_exact[0];
    assert_eq!(exact.voxels as usize, foreground.len());
    assert_eq!(exact.min, foreground[0]);
    assert_eq!(exact.max, foreground[foreground.len() - 1]);
    let mean = foreground.iter().sum::<f64>() / foreground.len() as f64;
    assert!((exact.mean - mean).abs() < 1e-9 * mean.abs());
    let (median, bound) = numpy_percentile(&foreground, 50.0);
    assert!(
        (exact.median - median).abs() <= bound,
        "median {} vs {median}",
        exact.median
    );
    for (i, q) in autoseg_analyzer::sample::PERCENTILES.iter().enumerate() {
        let (want, bound) = numpy_percentile(&foreground, *q);
        assert!(
            (exact.percentile[i] - want).abs() <= bound,
            "p{q}: {} vs {want}",
            exact.percentile[i]
        );
    }
}
