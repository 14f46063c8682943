//! `autoseg analyze`: dataset statistics into the work dir.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use autoseg_analyzer::{Analysis, AnalyzeOptions, analyze, write_datastats};
use autoseg_datasets::Dataset;

use super::check;
use crate::cli::AnalyzeArgs;
use crate::progress;

pub fn run(args: &AnalyzeArgs) -> anyhow::Result<ExitCode> {
    let (dataset, _task) = check::open(&args.dataset)?;
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(workers) = args.workers {
        pool = pool.num_threads(workers.max(1));
    }
    let pool = pool.build().context("starting the worker threads")?;
    let options = AnalyzeOptions {
        work_dir: args.work_dir.clone(),
        use_cache: !args.no_cache,
    };
    let analysis = pool.install(|| run_analysis(&dataset, &options))?;
    Ok(if analysis.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Analyzes with a progress bar, writes the files and prints what was found.
pub fn run_analysis(dataset: &Dataset, options: &AnalyzeOptions) -> anyhow::Result<Analysis> {
    let started = Instant::now();
    let bar = progress::counter(dataset.cases.len(), "cases");
    let analysis = analyze(dataset, options, &|| bar.inc(1)).context("analyzing the dataset")?;
    bar.finish_and_clear();
    let paths = write_datastats(&analysis, &options.work_dir).context("writing the datastats")?;
    print_summary(&analysis, started.elapsed().as_secs_f64());
    for path in paths {
        println!("  wrote {}", path.display());
    }
    Ok(analysis)
}

fn print_summary(analysis: &Analysis, seconds: f64) {
    let s = &analysis.summary;
    let f = &s.fingerprint;
    println!(
        "analyzed {} cases in {seconds:.2} s ({} from the cache), {} failed",
        s.n_cases,
        analysis.from_cache,
        analysis.failed.len()
    );
    println!(
        "  median shape {:?}, median spacing {:?} mm, anisotropy {:.2}",
        s.shape.axes.iter().map(|a| a.median).collect::<Vec<_>>(),
        f.median_spacing,
        f.anisotropy
    );
    println!(
        "  labels {:?}, channels {}",
        s.labels,
        s.intensity_exact.len()
    );
    for e in &f.foreground_intensity_properties_per_channel {
        println!(
            "  channel {} foreground: mean {:.4}, stdev {:.4}, 0.5-99.5 % [{:.4}, {:.4}]",
            e.channel, e.mean, e.stdev, e.percentile[0], e.percentile[3]
        );
    }
    for failed in &analysis.failed {
        eprintln!(
            "  FAILED {} ({}): {}",
            failed.case_id, failed.locator, failed.reason
        );
    }
}
