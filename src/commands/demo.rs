//! `autoseg demo`: the embedded phantom dataset through every finished stage.

use std::process::ExitCode;
use std::time::Instant;

use std::path::Path;

use anyhow::Context;
use autoseg_datasets::phantom::PhantomSpec;
use autoseg_datasets::{Dataset, TaskConfig};
use autoseg_ensembler::evaluate::{Scoring, evaluate_files, summarize};
use autoseg_templates::ComputeDevice;
use autoseg_templates::templates::overrides::Setting;

use crate::cli::DemoArgs;
use crate::pipeline::{self, Pipeline};

pub fn run(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let spec = PhantomSpec {
        random_orientation: true,
        seed: args.seed,
        ..PhantomSpec::default()
    };
    println!(
        "[1/4] phantom dataset: {} labelled + {} testing cases of {:?} voxels, random orientations",
        spec.cases, spec.test_cases, spec.shape
    );
    let started = Instant::now();
    let written = pipeline::write_phantom(&spec, &args.dir)?;
    println!(
        "      written in {:.2} s to {}",
        started.elapsed().as_secs_f64(),
        written.root.display()
    );

    println!("[2/4] check");
    let task = TaskConfig::read(&written.task).context("reading the demo's task config")?;
    let dataset = Dataset::open(&task.datalist, Some(&task.dataroot), false)
        .context("reading the demo's datalist")?;
    let started = Instant::now();
    let report = pipeline::check(&dataset, Some(&task));
    pipeline::print_report(&report, &dataset.root, started.elapsed().as_secs_f64());
    anyhow::ensure!(
        !report.has_errors(),
        "the demo dataset failed its own check: this is a bug, please report it"
    );

    let work_dir = args.dir.join("work_dir");
    // The demo starts afresh each time: an earlier demo's bundles are not resumed.
    if work_dir.exists() {
        std::fs::remove_dir_all(&work_dir)
            .with_context(|| format!("removing the earlier demo's {}", work_dir.display()))?;
    }
    let device: ComputeDevice = args.device.parse()?;
    let (time_budget, length) = match args.epochs {
        Some(epochs) => (None, format!("{epochs} epochs each")),
        None => (
            Some(args.time_budget),
            format!("{} s in all", args.time_budget),
        ),
    };
    println!(
        "[3/4] the pipeline: dynunet (nnU-Net's rules, narrowed for a CPU) on folds 0 and 1, \
         {length} on {device}"
    );
    let pipeline = Pipeline {
        task,
        work_dir: work_dir.clone(),
        algos: vec!["dynunet".into()],
        folds: vec![0, 1],
        settings: demo_settings(args.epochs)?,
        devices: vec![device],
        time_budget,
    };
    let outcome = pipeline::run_pipeline(&pipeline, &dataset)?;
    let predictions = outcome
        .predictions
        .context("the demo's datalist lists testing cases")?;

    println!("[4/4] evaluate the ensemble's predictions against the phantoms' true labels");
    let dice = evaluate_demo(&predictions, &written.root.join("labelsTs"))?;
    println!(
        "      ensemble Dice on the {} testing cases: organ {:.3}, lesion {:.3} (validation: {:.3})",
        spec.test_cases, dice[0], dice[1], outcome.validation_dice
    );

    println!("\nTask config: {}", written.task.display());
    println!("Work dir:    {} (autoseg inspect it)", work_dir.display());
    println!("Predictions: {}", predictions.display());
    println!("Report:      {}", outcome.report.display());
    println!("Next: autoseg run --input YOUR_TASK.yaml --work-dir W --time-budget 3600");
    Ok(ExitCode::SUCCESS)
}

/// Mean Dice per foreground class of the predictions against the true labels.
fn evaluate_demo(predictions: &Path, truth: &Path) -> anyhow::Result<Vec<f64>> {
    let scoring = Scoring {
        regions: None,
        labels: vec![1, 2],
        nsd_tolerance_mm: 1.0,
        ignore: None,
        device: Default::default(),
    };
    let mut rows = Vec::new();
    for entry in std::fs::read_dir(predictions)? {
        let pred = entry?.path();
        let name = pred.file_name().context("a file name")?.to_owned();
        let case = name.to_string_lossy().into_owned();
        rows.extend(evaluate_files(&case, &pred, &truth.join(&name), &scoring)?);
    }
    let summary = summarize(&rows, rows.len() / 2, 1.0);
    Ok(summary.classes.iter().map(|c| c.dice.mean).collect())
}

/// What the demo changes of nnU-Net's plan so that a CPU learns the phantoms in a couple of
/// minutes: a narrow network, AdamW at a constant 0.01, short epochs, Dice pooled over the
/// batch, no spatial augmentation (the phantoms share one scale and orientation). Under a
/// time budget the 60 epochs are a ceiling the budget cuts; `epochs` fixes the count.
fn demo_settings(epochs: Option<u64>) -> anyhow::Result<Vec<Setting>> {
    let epochs = format!("num_epochs={}", epochs.unwrap_or(60));
    [
        "network.filters=[8, 16, 32, 64]",
        "optimizer={name: adam_w}",
        "schedule={name: constant}",
        "learning_rate=0.01",
        &epochs,
        "iterations_per_epoch=10",
        "batch_size=2",
        "loss.loss.batch=true",
        "augment.p_rotation=0",
        "augment.p_scale=0",
        "augment.p_low_resolution=0",
        "validation.every=2",
    ]
    .into_iter()
    .map(|s| Setting::parse(s, "demo").map_err(anyhow::Error::from))
    .collect()
}
