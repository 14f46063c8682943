//! `autoseg predict --bundle DIR | --work-dir W`: one trained bundle's (or an ensemble's)
//! label maps (and, with `--probabilities`, class probability maps) for a folder of images
//! or a datalist's `testing` cases, each in its input's own geometry. A case that fails is
//! reported and the rest go on.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use autoseg_datasets::{Dataset, Volume};
use autoseg_ensembler::ensemble::EnsemblePredictor;
use autoseg_templates::ComputeDevice;
use autoseg_templates::bundle::runtime::{BundlePredictor, Segmenter};

use crate::cli::PredictArgs;
use crate::progress;

/// What a case's probability map adds to its id: `<case>_probabilities.nii.gz`.
pub const PROBABILITIES_SUFFIX: &str = "_probabilities";

/// One image to predict: its name and channel files.
pub struct Input {
    /// The output's name.
    pub id: String,
    /// Its channel files.
    pub files: Vec<PathBuf>,
}

pub fn run(args: &PredictArgs) -> anyhow::Result<ExitCode> {
    let device: ComputeDevice = args.device.parse()?;
    let segmenter: Box<dyn Segmenter> = match (&args.bundle, &args.work_dir) {
        (Some(bundle), _) => Box::new(
            BundlePredictor::load(bundle, device)
                .with_context(|| format!("loading {}", bundle.display()))?,
        ),
        (None, Some(work_dir)) => Box::new(
            EnsemblePredictor::load(work_dir, device)
                .with_context(|| format!("loading the ensemble of {}", work_dir.display()))?,
        ),
        (None, None) => anyhow::bail!("give --bundle DIR or --work-dir W"),
    };
    let inputs = inputs(&args.images)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    println!(
        "predicting {} case(s) with {}",
        inputs.len(),
        segmenter.describe()
    );
    let failed = predict_all(segmenter.as_ref(), &inputs, &args.out, args.probabilities);
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Predicts every input into `out` (with probability maps when `probabilities`) with a
/// progress bar; returns the cases that failed (each reported on stderr), having gone on
/// past them.
pub fn predict_all(
    segmenter: &dyn Segmenter,
    inputs: &[Input],
    out: &Path,
    probabilities: bool,
) -> Vec<String> {
    let started = Instant::now();
    let bar = progress::counter(inputs.len(), "cases");
    let mut failed = Vec::new();
    for input in inputs {
        if let Err(e) = predict_one(segmenter, input, out, probabilities) {
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

fn predict_one(
    segmenter: &dyn Segmenter,
    input: &Input,
    out: &Path,
    probabilities: bool,
) -> anyhow::Result<()> {
    let image = Volume::read_channels(&input.files)?;
    let prediction = segmenter.predict(&image, &input.files[0], probabilities)?;
    prediction
        .labels
        .write(&out.join(format!("{}.nii.gz", input.id)))?;
    if let Some(maps) = prediction.probabilities {
        maps.write(&out.join(format!("{}{PROBABILITIES_SUFFIX}.nii.gz", input.id)))?;
    }
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
