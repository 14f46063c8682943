//! `autoseg demo`: the embedded phantom dataset through every finished stage.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use autoseg_datasets::phantom::PhantomSpec;
use autoseg_datasets::{Dataset, TaskConfig};

use autoseg_analyzer::AnalyzeOptions;

use super::{analyze, check, phantom};
use crate::cli::DemoArgs;

pub fn run(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let spec = PhantomSpec {
        random_orientation: true,
        seed: args.seed,
        ..PhantomSpec::default()
    };
    println!(
        "[1/3] phantom dataset: {} labelled + {} testing cases of {:?} voxels, random orientations",
        spec.cases, spec.test_cases, spec.shape
    );
    let started = Instant::now();
    let written = phantom::write(&spec, &args.dir)?;
    println!(
        "      written in {:.2} s to {}",
        started.elapsed().as_secs_f64(),
        written.root.display()
    );

    println!("[2/3] check");
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

    println!("[3/3] analyze");
    let options = AnalyzeOptions {
        work_dir: args.dir.join("work_dir"),
        use_cache: true,
    };
    analyze::run_analysis(&dataset, &options)?;

    println!("\nTask config: {}", written.task.display());
    println!(
        "Next: autoseg analyze --input {} --work-dir {}",
        written.task.display(),
        options.work_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
