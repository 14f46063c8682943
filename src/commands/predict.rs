//! `autoseg predict --bundle DIR`: one trained bundle's label maps for a folder of images or
//! a datalist's `testing` cases, each in its input's own geometry. A case that fails is
//! reported and the rest go on.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use autoseg_datasets::{Dataset, Volume};
use autoseg_templates::ComputeDevice;
use autoseg_templates::bundle::runtime::BundlePredictor;

use crate::cli::PredictArgs;
use crate::progress;

/// One image to predict: its name and channel files.
pub struct Input {
    /// The output's name.
    pub id: String,
    /// Its channel files.
    pub files: Vec<PathBuf>,
}

pub fn run(args: &PredictArgs) -> anyhow::Result<ExitCode> {
    let device: ComputeDevice = args.device.parse()?;
    let predictor = BundlePredictor::load(&args.bundle, device)
        .with_context(|| format!("loading {}", args.bundle.display()))?;
    let inputs = inputs(&args.images)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    println!(
        "predicting {} case(s) with {} ({}), window {:?}, overlap {}",
        inputs.len(),
        args.bundle.display(),
        predictor.weights.display(),
        predictor.settings.sliding_window().roi,
        predictor.settings.inference.overlap
    );
    let failed = predict_all(&predictor, &inputs, &args.out);
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Predicts every input into `out` with a progress bar; returns the cases that failed
/// (each reported on stderr), having gone on past them.
pub fn predict_all(predictor: &BundlePredictor, inputs: &[Input], out: &Path) -> Vec<String> {
    let started = Instant::now();
    let bar = progress::counter(inputs.len(), "cases");
    let mut failed = Vec::new();
    for input in inputs {
        let file = out.join(format!("{}.nii.gz", input.id));
        if let Err(e) = predict_one(predictor, input, &file) {
            bar.suspend(|| eprintln!("  FAILED {}: {e:#}", input.id));
            failed.push(input.id.clone());
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    println!(
        "wrote {} label map(s) to {} in {:.1} s; {} failed",
        inputs.len() - failed.len(),
        out.display(),
        started.elapsed().as_secs_f64(),
        failed.len()
    );
    failed
}

fn predict_one(predictor: &BundlePredictor, input: &Input, out: &Path) -> anyhow::Result<()> {
    let image = Volume::read_channels(&input.files)?;
    let labels = predictor.predict(&image, &input.files[0])?;
    labels.write(out)?;
    Ok(())
}

/// The images: every NIfTI file of a folder (one channel each), or a datalist's `testing`
/// cases.
pub fn inputs(images: &Path) -> anyhow::Result<Vec<Input>> {
    if images.is_dir() {
        let mut found: Vec<Input> = std::fs::read_dir(images)
            .with_context(|| format!("reading {}", images.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter_map(|p| {
                let name = p.file_name()?.to_str()?;
                let id = name.strip_suffix(".nii.gz").or(name.strip_suffix(".nii"))?;
                Some(Input {
                    id: id.to_string(),
                    files: vec![p.clone()],
                })
            })
            .collect();
        found.sort_by(|a, b| a.id.cmp(&b.id));
        anyhow::ensure!(
            !found.is_empty(),
            "{} holds no .nii or .nii.gz file",
            images.display()
        );
        return Ok(found);
    }
    let dataset = Dataset::open(images, None, false).context("reading the datalist")?;
    anyhow::ensure!(
        !dataset.testing.is_empty(),
        "{} lists no `testing` cases to predict",
        images.display()
    );
    Ok(dataset
        .testing
        .iter()
        .map(|c| Input {
            id: c.id.clone(),
            files: c.images.clone(),
        })
        .collect())
}
