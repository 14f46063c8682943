//! Times autoseg's segmentation metrics and connected components on a prediction/reference
//! pair of label files, for `bench/metrics.sh` (which runs MONAI and scipy on the same files).
//!
//!   cargo run --release --example bench_metrics -- PRED.nii.gz REF.nii.gz CLASSES
//!
//! Prints one JSON object: per foreground class Dice, HD95, symmetric ASD (MONAI's
//! definitions), the seconds the metrics took (files already read), and the seconds of a
//! 26-connected component labelling of the reference's foreground.

use std::time::Instant;

use anyhow::Context;
use autoseg_datasets::LabelVolume;
use autoseg_kernels::{ConfusionMatrix, Connectivity, SurfaceDistances, label_components};
use rayon::prelude::*;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [pred, reference, classes] = args.as_slice() else {
        anyhow::bail!("usage: bench_metrics PRED.nii.gz REF.nii.gz CLASSES");
    };
    let classes: usize = classes.parse().context("CLASSES")?;
    let pred = LabelVolume::read(pred.as_ref())?;
    let reference = LabelVolume::read(reference.as_ref())?;
    anyhow::ensure!(
        pred.dims() == reference.dims(),
        "the two label maps differ in shape"
    );
    let (dims, spacing) = (reference.dims(), reference.spacing());

    let started = Instant::now();
    let confusion = ConfusionMatrix::of(pred.data(), reference.data(), classes);
    let per_class: Vec<serde_json::Value> = (1..classes)
        .into_par_iter()
        .map(|c| {
            let mask = |labels: &[u16]| {
                labels
                    .iter()
                    .map(|&l| l as usize == c)
                    .collect::<Vec<bool>>()
            };
            let d = SurfaceDistances::between(
                &mask(pred.data()),
                &mask(reference.data()),
                dims,
                spacing,
            );
            serde_json::json!({
                "class": c,
                "dice": confusion.dice(c),
                "hd95": d.hausdorff(Some(95.0)),
                "asd": d.average(true),
            })
        })
        .collect();
    let metrics_seconds = started.elapsed().as_secs_f64();

    let foreground: Vec<u16> = reference.data().iter().map(|&l| (l > 0) as u16).collect();
    let started = Instant::now();
    let components = label_components(&foreground, dims, Connectivity::TwentySix);
    let components_seconds = started.elapsed().as_secs_f64();
    let count = components
        .components
        .iter()
        .filter(|c| c.class == 1)
        .count();

    let out = serde_json::json!({
        "classes": per_class,
        "metrics_seconds": metrics_seconds,
        "components": count,
        "components_seconds": components_seconds,
    });
    println!("{out}");
    Ok(())
}
