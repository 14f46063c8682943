//! `autoseg demo`: the embedded phantom dataset through every finished stage.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use autoseg_datasets::phantom::PhantomSpec;
use autoseg_datasets::{Dataset, TaskConfig};

use autoseg_analyzer::AnalyzeOptions;
use autoseg_templates::ComputeDevice;
use autoseg_tuner::train::{TrainOptions, phantom_config, train};

use super::{analyze, check, phantom};
use crate::cli::DemoArgs;

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
    let written = phantom::write(&spec, &args.dir)?;
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
    let report = check::check(&dataset, Some(&task));
    check::print_report(&report, &dataset.root, started.elapsed().as_secs_f64());
    anyhow::ensure!(
        !report.has_errors(),
        "the demo dataset failed its own check: this is a bug, please report it"
    );

    println!("[3/4] analyze");
    let options = AnalyzeOptions {
        work_dir: args.dir.join("work_dir"),
        use_cache: true,
    };
    analyze::run_analysis(&dataset, &options)?;

    let device: ComputeDevice = args.device.parse()?;
    println!(
        "[4/4] train: a small nnU-Net-style U-Net, fold 0, {} s on {device}",
        args.time_budget
    );
    let bundle = options.work_dir.join("dynunet_0");
    let mut config = phantom_config("../../dataset.json".into());
    config.time_budget_seconds = Some(args.time_budget);
    config.write(&bundle)?;
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

    println!("\nTask config: {}", written.task.display());
    println!(
        "Bundle:      {} (metrics.csv, model/best.safetensors)",
        bundle.display()
    );
    println!(
        "Next: autoseg train --bundle {} --resume   (after raising num_epochs or the budget)",
        bundle.display()
    );
    Ok(ExitCode::SUCCESS)
}
