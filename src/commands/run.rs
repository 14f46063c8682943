//! `autoseg run`: the whole pipeline on a task: analyze, generate, train every bundle, rank,
//! ensemble, predict the datalist's testing cases, write the report. Each stage reads the last one's files, so
//! a rerun skips what is done (cached statistics, existing bundles, finished trials) and
//! resumes what was interrupted (trials from their checkpoints).

use std::process::ExitCode;

use autoseg_templates::ComputeDevice;

use crate::cli::RunArgs;
use crate::pipeline::{self, Pipeline};

pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let (dataset, task) = pipeline::open(&args.dataset)?;
    let task = task.unwrap_or_else(|| pipeline::task_of_datalist(&dataset));
    let pipeline = Pipeline {
        task,
        work_dir: args.work_dir.clone(),
        algos: args.bundles.algos.clone(),
        folds: args.bundles.folds.clone(),
        settings: pipeline::settings(&args.bundles)?,
        devices: args
            .device
            .iter()
            .map(|d| d.parse::<ComputeDevice>())
            .collect::<Result<Vec<_>, _>>()?,
        time_budget: args.time_budget,
    };
    let _lock = pipeline::lock_work_dir(&pipeline.work_dir)?;
    if args.plan_only {
        let started = std::time::Instant::now();
        pipeline::analyze_and_plan(&pipeline, &dataset, &started)?;
        let plan = autoseg_datasets::WorkDir::new(&pipeline.work_dir).plan();
        println!(
            "\nPlanned, not trained: {} (rerun without --plan-only to train it)",
            plan.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let outcome = pipeline::run_pipeline(&pipeline, &dataset)?;
    println!(
        "\nThe ensemble's cross-validation Dice: {:.4}.",
        outcome.validation_dice
    );
    if let Some(p) = outcome.predictions {
        println!("Predictions: {}", p.display());
    }
    println!(
        "Work dir:    {} (autoseg inspect it)",
        pipeline.work_dir.display()
    );
    println!("Report:      {}", outcome.report.display());
    Ok(ExitCode::SUCCESS)
}
