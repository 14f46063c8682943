//! `autoseg demo`: the embedded phantom dataset through every finished stage.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use autoseg_datasets::phantom::PhantomSpec;
use autoseg_datasets::{Dataset, TaskConfig};

use autoseg_analyzer::AnalyzeOptions;
use autoseg_templates::ComputeDevice;
use autoseg_templates::bundle::runtime::BundlePredictor;
use autoseg_templates::generate::GenerateOptions;
use autoseg_templates::templates::Resources;
use autoseg_templates::templates::overrides::Setting;
use autoseg_tuner::train::{TrainOptions, train};

use super::{analyze, check, generate, phantom, predict};
use crate::cli::DemoArgs;

pub fn run(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let spec = PhantomSpec {
        random_orientation: true,
        seed: args.seed,
        ..PhantomSpec::default()
    };
    println!(
        "[1/6] phantom dataset: {} labelled + {} testing cases of {:?} voxels, random orientations",
        spec.cases, spec.test_cases, spec.shape
    );
    let started = Instant::now();
    let written = phantom::write(&spec, &args.dir)?;
    println!(
        "      written in {:.2} s to {}",
        started.elapsed().as_secs_f64(),
        written.root.display()
    );

    println!("[2/6] check");
    let task = TaskConfig::read(&written.task).context("reading the demo's task config")?;
    let dataset = Dataset::open(&task.datalist, Some(&task.dataroot), false)
        .context("reading the demo's datalist")?;
    let started = Instant::now();
    let report = check::check(&dataset, Some(&task));
    check::print_report(&report, &dataset.root, started.elapsed().as_secs_f64());
    anyhow::ensure!(
        !report.has_errors(),
        "the demo dataset failed its own check: this is a bug, please report it"
    );

    println!("[3/6] analyze");
    let work_dir = args.dir.join("work_dir");
    let options = AnalyzeOptions {
        work_dir: work_dir.clone(),
        use_cache: true,
    };
    analyze::run_analysis(&dataset, &options)?;
    analyze::record_task(&task, &work_dir)?;

    println!("[4/6] generate: the dynunet template (nnU-Net's rules), fold 0, sized for the CPU");
    let generate = GenerateOptions {
        algos: vec!["dynunet".into()],
        folds: vec![0],
        task_keys: Vec::new(),
        settings: demo_settings(args.time_budget)?,
        force: true,
    };
    let resources = Resources {
        gpu_memory_gb: None,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        time_budget_seconds: Some(args.time_budget),
    };
    let report = generate::generate_bundles(&work_dir, &task, &generate, &resources)?;
    let bundle = report.bundles[0].dir.clone();

    let device: ComputeDevice = args.device.parse()?;
    println!("[5/6] train: {} s on {device}", args.time_budget);
    // The demo starts afresh each time: an earlier demo's run is not resumed.
    for old in ["model", "progress.yaml", "metrics.csv"].map(|f| bundle.join(f)) {
        if old.is_dir() {
            std::fs::remove_dir_all(&old)?;
        } else if old.exists() {
            std::fs::remove_file(&old)?;
        }
    }
    let progress_bars = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let summary = train(
        &bundle,
        &TrainOptions {
            device,
            resume: false,
            progress_bars,
        },
    )?;
    let best = summary
        .best_dice
        .map_or("none".into(), |d| format!("{d:.3}"));
    println!(
        "      {} epochs, best validation Dice {best} (mean of organ and lesion)",
        summary.epochs_done
    );

    println!("[6/6] predict the testing cases");
    let predictions = args.dir.join("predictions");
    let predictor = BundlePredictor::load(&bundle, device)?;
    let inputs = predict::inputs(&task.datalist)?;
    std::fs::create_dir_all(&predictions)?;
    let failed = predict::predict_all(&predictor, &inputs, &predictions);
    anyhow::ensure!(failed.is_empty(), "the demo could not predict {failed:?}");

    println!("\nTask config: {}", written.task.display());
    println!("Bundle:      {} (autoseg inspect it)", bundle.display());
    println!("Predictions: {}", predictions.display());
    println!(
        "Next: autoseg train --bundle {} --resume   (after raising num_epochs or the budget)",
        bundle.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// What the demo changes of nnU-Net's plan so that a CPU learns the phantoms in a couple of
/// minutes: a narrow network, AdamW at a constant 0.01, short epochs, Dice pooled over the
/// batch, no spatial augmentation (the phantoms share one scale and orientation).
fn demo_settings(time_budget: f64) -> anyhow::Result<Vec<Setting>> {
    let budget = format!("time_budget_seconds={time_budget}");
    [
        "network.filters=[8, 16, 32, 64]",
        "optimizer={name: adam_w}",
        "schedule={name: constant}",
        "learning_rate=0.01",
        "num_epochs=60",
        "iterations_per_epoch=10",
        "batch_size=2",
        "loss.loss.batch=true",
        "augment.p_rotation=0",
        "augment.p_scale=0",
        "augment.p_low_resolution=0",
        "validation.every=2",
        budget.as_str(),
    ]
    .iter()
    .map(|s| Setting::parse(s, "demo").map_err(anyhow::Error::from))
    .collect()
}
