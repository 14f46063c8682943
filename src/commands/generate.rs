//! `autoseg generate`: one bundle per algorithm template and fold, from the work dir's
//! statistics and task.

use std::process::ExitCode;

use anyhow::Context;
use autoseg_datasets::{TaskConfig, WorkDir};
use autoseg_templates::generate::GenerateOptions;

use crate::cli::GenerateArgs;
use crate::pipeline;

pub fn run(args: &GenerateArgs) -> anyhow::Result<ExitCode> {
    let work_dir = &args.work_dir;
    let _lock = pipeline::lock_work_dir(work_dir)?;
    let task_path = args
        .input
        .clone()
        .unwrap_or_else(|| WorkDir::new(work_dir).task());
    let task = TaskConfig::read(&task_path).with_context(
        || "reading the task (run `autoseg analyze` on this work dir, or give --input)",
    )?;
    let settings = pipeline::settings(&args.bundles)?;
    let options = GenerateOptions {
        algos: args.bundles.algos.clone(),
        folds: args.bundles.folds.clone(),
        task_keys: pipeline::task_keys(&task),
        settings,
        force: args.force,
        scratch: false,
    };
    let target = pipeline::Target {
        gpu_memory_gb: args.gpu_memory,
        cpu_only: args.cpu,
    };
    let report = pipeline::generate_bundles(work_dir, &task, &options, target, args.time_budget)?;
    pipeline::print_generated(&report);
    println!(
        "Inspect the bundles: autoseg inspect {}",
        WorkDir::new(work_dir).bundles_dir().display()
    );
    Ok(ExitCode::SUCCESS)
}
