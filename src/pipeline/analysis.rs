//! The analysis stage with a progress bar and a printed summary, and the task it records.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use autoseg_analyzer::{Analysis, AnalyzeOptions, analyze, write_datastats};
use autoseg_datasets::task::Modality;
use autoseg_datasets::{Dataset, TaskConfig, WorkDir};

use crate::progress;

/// A task for a datalist given without one: its modality is the datalist's first channel
/// name (MSD's `modality` map), else unknown (normalised like MRI).
pub fn task_of_datalist(dataset: &Dataset) -> TaskConfig {
    let modality = dataset
        .datalist
        .channel_names()
        .and_then(|names| names.first().cloned())
        .unwrap_or_else(|| "unknown".into());
    TaskConfig {
        path: dataset.datalist.path.clone(),
        name: None,
        modality: Modality::parse(&modality),
        datalist: dataset.datalist.path.clone(),
        dataroot: dataset.root.clone(),
        class_names: None,
        regions: None,
        num_fold: None,
        group_key: None,
        ignore_label: dataset.datalist.ignore_label(),
        extra: Default::default(),
    }
}

/// Records the task in the work dir (`input.yaml`, data paths relative to it), where
/// `autoseg generate` finds it.
pub fn record_task(task: &TaskConfig, work_dir: &Path) -> anyhow::Result<PathBuf> {
    let path = WorkDir::new(work_dir).task();
    let text = task
        .to_yaml_relative_to(work_dir)
        .context("recording the task in the work dir")?;
    let text =
        format!("# The task as `autoseg analyze` read it; `autoseg generate` reads it.\n{text}");
    autoseg_datasets::fsutil::write_bytes_atomic(&path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Analyzes with a progress bar, writes the files and prints what was found (the task's
/// `ignore` label apart from the classes).
pub fn run_analysis(
    dataset: &Dataset,
    options: &AnalyzeOptions,
    ignore: Option<u16>,
) -> anyhow::Result<Analysis> {
    let started = Instant::now();
    let bar = progress::counter(dataset.cases.len(), "cases");
    let analysis = analyze(dataset, options, &|| bar.inc(1)).context("analyzing the dataset")?;
    bar.finish_and_clear();
    let paths = write_datastats(&analysis, &options.work_dir).context("writing the datastats")?;
    print_summary(&analysis, ignore, started.elapsed().as_secs_f64());
    for path in paths {
        println!("  wrote {}", path.display());
    }
    Ok(analysis)
}

fn print_summary(analysis: &Analysis, ignore: Option<u16>, seconds: f64) {
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
    let classes: Vec<u16> = s
        .labels
        .iter()
        .copied()
        .filter(|&l| Some(l) != ignore)
        .collect();
    let unannotated = match ignore {
        Some(id) if s.labels.contains(&id) => {
            format!(", ignore label {id} (unannotated, no class)")
        }
        _ => String::new(),
    };
    println!(
        "  {} labels ({}){unannotated}, channels {}",
        classes.len(),
        autoseg_datasets::id_ranges(classes.iter().copied()),
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
