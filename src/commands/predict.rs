//! `autoseg predict --bundle DIR | --work-dir W`: one trained bundle's (or an ensemble's)
//! label maps (and, with `--probabilities`, class probability maps) for a folder of images
//! or a datalist's `testing` cases, each in its input's own geometry. A case that fails is
//! reported and the rest go on.

use std::process::ExitCode;

use anyhow::Context;
use autoseg_ensembler::ensemble::EnsemblePredictor;
use autoseg_ensembler::predict::inputs;
use autoseg_templates::ComputeDevice;
use autoseg_templates::bundle::runtime::{BundlePredictor, Segmenter};

use crate::cli::PredictArgs;
use crate::pipeline::predict_with_bar;

pub fn run(args: &PredictArgs) -> anyhow::Result<ExitCode> {
    let device: ComputeDevice = args.device.parse()?;
    let segmenter: Box<dyn Segmenter> = match (&args.model.bundle, &args.model.work_dir) {
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
    let failed = predict_with_bar(segmenter.as_ref(), &inputs, &args.out, args.probabilities);
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
