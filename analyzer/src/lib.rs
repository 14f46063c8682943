//! Dataset statistics: MONAI's datastats (same keys, same definitions) and nnU-Net's
//! fingerprint figures, computed per case in parallel (rayon) and summarised with Polars.
//!
//! A case that cannot be read is listed in `failed_cases` with the reason, and the rest go on.
//! Per-case results are cached in the work dir, so a rerun after adding cases reads only those.

pub mod cache;
pub mod case;
pub mod grouped;
pub mod output;
pub mod sample;
pub mod scan;
pub mod sketch;
pub mod summary;
pub mod table;
pub mod window;

use std::path::{Path, PathBuf};

use autoseg_datasets::fsutil::write_atomic;
use autoseg_datasets::{Dataset, WorkDir};
use autoseg_kernels::KernelDevice;
use rayon::prelude::*;

pub use case::{CaseDistributions, CaseStats, analyze_case};
pub use summary::DatasetSummary;

/// Why the analysis as a whole failed (single cases fail into `failed_cases` instead).
#[derive(Debug, thiserror::Error)]
pub enum AnalyzerError {
    #[error("no case could be analyzed ({failed} failed); the first: {first}")]
    NoCases { failed: usize, first: String },
    #[error("the dataset has no labelled cases to analyze")]
    Empty,
    #[error("summarising the per-case table: {0}")]
    Table(#[from] polars::prelude::PolarsError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Yaml {
        path: PathBuf,
        source: serde_yaml::Error,
    },
}

/// A case left out of the statistics, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedCase {
    pub case_id: String,
    pub locator: String,
    pub files: Vec<String>,
    pub reason: String,
}

/// How to run.
#[derive(Debug, Clone)]
pub struct AnalyzeOptions {
    /// Where the datastats files and the cache go.
    pub work_dir: PathBuf,
    /// Reuse and store per-case results.
    pub use_cache: bool,
    /// Where the labels' connected components are found (the same figures on either).
    pub device: KernelDevice,
}

/// The outcome of [`analyze`].
#[derive(Debug, Clone)]
pub struct Analysis {
    pub summary: DatasetSummary,
    /// Analysed cases, in datalist order.
    pub cases: Vec<CaseStats>,
    pub failed: Vec<FailedCase>,
    /// Cases taken from the cache.
    pub from_cache: usize,
}

/// Analyzes the labelled cases (training, then validation) on the current rayon pool;
/// `tick` is called once per case done.
pub fn analyze(
    dataset: &Dataset,
    options: &AnalyzeOptions,
    tick: &(dyn Fn() + Sync),
) -> Result<Analysis, AnalyzerError> {
    if dataset.cases.is_empty() {
        return Err(AnalyzerError::Empty);
    }
    let cache_dir = WorkDir::new(&options.work_dir).analyzer_cache();
    let results: Vec<_> = dataset
        .cases
        .par_iter()
        .map(|case| {
            let result = analyze_cached(dataset, case, &cache_dir, options);
            tick();
            result
        })
        .collect();
    let (mut cases, mut dists, mut failed, mut from_cache) =
        (Vec::new(), Vec::new(), Vec::new(), 0);
    for (case, result) in dataset.cases.iter().zip(results) {
        match result {
            Ok((stats, d, cached)) => {
                cases.push(stats);
                dists.push(d);
                from_cache += cached as usize;
            }
            Err(reason) => failed.push(FailedCase {
                case_id: case.id.clone(),
                locator: case.locator(),
                files: case.files().map(|p| p.display().to_string()).collect(),
                reason,
            }),
        }
    }
    set_apart_other_channel_counts(dataset, &mut cases, &mut dists, &mut failed);
    if cases.is_empty() {
        let first = failed.first().map(|f| f.reason.clone()).unwrap_or_default();
        return Err(AnalyzerError::NoCases {
            failed: failed.len(),
            first,
        });
    }
    let summary = summary::summarize(&cases, &dists)?;
    Ok(Analysis {
        summary,
        cases,
        failed,
        from_cache,
    })
}

/// Moves cases whose channel count differs from most cases' to `failed`: statistics per
/// channel over a mix of 1- and 50-channel images would mean nothing, and no network takes
/// both.
fn set_apart_other_channel_counts(
    dataset: &Dataset,
    cases: &mut Vec<CaseStats>,
    dists: &mut Vec<CaseDistributions>,
    failed: &mut Vec<FailedCase>,
) {
    let mut counts: Vec<(usize, usize)> = Vec::new();
    for c in cases.iter() {
        match counts.iter_mut().find(|(n, _)| *n == c.channels) {
            Some((_, k)) => *k += 1,
            None => counts.push((c.channels, 1)),
        }
    }
    // The most common count; the first case's among equals.
    let Some(&(usual, _)) = counts.iter().rev().max_by_key(|(_, k)| *k) else {
        return;
    };
    let mut kept = (Vec::new(), Vec::new());
    for (stats, d) in cases.drain(..).zip(dists.drain(..)) {
        if stats.channels == usual {
            kept.0.push(stats);
            kept.1.push(d);
            continue;
        }
        let case = dataset.cases.iter().find(|c| c.id == stats.id);
        failed.push(FailedCase {
            case_id: stats.id.clone(),
            locator: case.map(|c| c.locator()).unwrap_or_default(),
            files: stats.image_paths.clone(),
            reason: format!(
                "{} channel(s), where most cases have {usual}",
                stats.channels
            ),
        });
    }
    (*cases, *dists) = kept;
}

fn analyze_cached(
    dataset: &Dataset,
    case: &autoseg_datasets::Case,
    cache_dir: &Path,
    options: &AnalyzeOptions,
) -> Result<(CaseStats, CaseDistributions, bool), String> {
    for path in case.files() {
        dataset.check_inside_root(path).map_err(|e| e.to_string())?;
    }
    let key = if options.use_cache {
        cache::key(case)
    } else {
        None
    };
    if let Some(key) = &key
        && let Some((mut stats, dists)) = cache::load(cache_dir, key)
    {
        stats.id = case.id.clone();
        return Ok((stats, dists, true));
    }
    let (stats, dists) =
        analyze_case(case, &dataset.root, &options.device).map_err(|e| e.to_string())?;
    if let Some(key) = &key {
        // A cache that cannot be written costs only time on the next run.
        let _ = cache::store(cache_dir, key, &stats, &dists);
    }
    Ok((stats, dists, false))
}

/// Writes `datastats.yaml` and `datastats_by_case.yaml` into `work_dir`, atomically.
pub fn write_datastats(
    analysis: &Analysis,
    work_dir: &Path,
) -> Result<[PathBuf; 2], AnalyzerError> {
    let (summary, by_case) =
        output::documents(&analysis.summary, &analysis.cases, &analysis.failed);
    let work_dir = WorkDir::new(work_dir);
    let paths = [work_dir.datastats(), work_dir.datastats_by_case()];
    for (path, doc) in paths.iter().zip([summary, by_case]) {
        let text = serde_yaml::to_string(&doc).map_err(|source| AnalyzerError::Yaml {
            path: path.clone(),
            source,
        })?;
        write_atomic(path, |w| w.write_all(text.as_bytes())).map_err(|source| {
            AnalyzerError::Io {
                path: path.clone(),
                source,
            }
        })?;
    }
    Ok(paths)
}
