//! `autoseg analyze`: dataset statistics into the work dir.

use std::process::ExitCode;

use anyhow::Context;
use autoseg_analyzer::AnalyzeOptions;

use crate::cli::AnalyzeArgs;
use crate::pipeline;

pub fn run(args: &AnalyzeArgs) -> anyhow::Result<ExitCode> {
    autoseg_datasets::memory::keep_freed_memory();
    let _lock = pipeline::lock_work_dir(&args.work_dir)?;
    let (dataset, task) = pipeline::open(&args.dataset)?;
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(workers) = args.workers {
        pool = pool.num_threads(workers.max(1));
    }
    let pool = pool.build().context("starting the worker threads")?;
    let options = AnalyzeOptions {
        work_dir: args.work_dir.clone(),
        use_cache: !args.no_cache,
        device: autoseg_kernels::KernelDevice::open(&args.device)?,
    };
    if options.device.is_gpu() {
        println!("  connected components on {}", options.device);
    }
    let task = task.unwrap_or_else(|| pipeline::task_of_datalist(&dataset));
    let ignore = dataset.ignore_label(Some(&task));
    let analysis = pool.install(|| pipeline::run_analysis(&dataset, &options, ignore))?;
    let recorded = pipeline::record_task(&task, &args.work_dir)?;
    println!("  wrote {}", recorded.display());
    Ok(if analysis.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
