//! The generate stage: the templates' inputs from the task, the work dir's statistics and
//! split, and the resources, then the bundles, a line each.

use std::path::{Path, PathBuf};

use anyhow::Context;
use autoseg_datasets::folds::{FoldOptions, Folds};
use autoseg_datasets::task::ClassSpec;
use autoseg_datasets::{Dataset, TaskConfig, WorkDir, workdir};
use autoseg_templates::generate::{BundleOutcome, GenerateOptions, GenerateReport, generate};
use autoseg_templates::templates::overrides::Setting;
use autoseg_templates::templates::{DataStats, Resources, TaskInfo, TemplateInput};
use autoseg_tuner::train::TrainConfig;

use crate::cli::BundleChoice;

/// What the bundles will train on.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Plans patch and batch for a GPU with this memory (nnU-Net's 8 GB reference when
    /// `None`).
    pub gpu_memory_gb: Option<f64>,
    /// The bundles train on CPU cores alone.
    pub cpu_only: bool,
}

/// The machine's memory in GB, which bounds a training step on CPU cores.
fn host_memory_gb() -> Option<f64> {
    autoseg_datasets::memory::machine_memory_bytes().map(|b| b as f64 / 1e9)
}

/// Generates the bundles for a task from the work dir's statistics, each bundle to train
/// for `seconds` if given (which shapes its recipe).
pub fn generate_bundles(
    work_dir: &Path,
    task: &TaskConfig,
    options: &GenerateOptions,
    target: Target,
    seconds: Option<f64>,
) -> anyhow::Result<GenerateReport> {
    let dataset = Dataset::open(&task.datalist, Some(&task.dataroot), false)
        .context("reading the datalist")?;
    let stats = DataStats::read(&WorkDir::new(work_dir).datastats())?;
    let bundles = WorkDir::new(work_dir).bundles_dir();
    std::fs::create_dir_all(&bundles).with_context(|| format!("creating {}", bundles.display()))?;
    let info = task_info(task, &dataset, &WorkDir::new(work_dir))?;
    let resources = Resources {
        gpu_memory_gb: target.gpu_memory_gb,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        time_budget_seconds: seconds,
        cpu_only: target.cpu_only,
        host_memory_gb: host_memory_gb(),
    };
    let input = TemplateInput {
        stats: &stats,
        task: &info,
        resources: &resources,
    };
    Ok(generate(work_dir, &input, options, &TrainConfig::complete)?)
}

/// A line per bundle generated or kept, and per template skipped.
pub fn print_generated(report: &GenerateReport) {
    for b in &report.bundles {
        let what = match b.outcome {
            BundleOutcome::Written => "written".to_string(),
            BundleOutcome::Kept(why) => format!("kept: {why} (--force rewrites it)"),
        };
        println!(
            "{:<16} {} ({what})",
            format!("{}_{}", b.algo, b.fold),
            b.dir.display()
        );
    }
    for (algo, reason) in &report.skipped {
        println!("{algo:<16} skipped: {reason}");
    }
}

/// The task's cross-validation folds: its `num_fold` (5 by default), at most a fold per
/// labelled case, one when there are too few cases to validate on.
pub fn num_folds(task: &TaskConfig, dataset: &Dataset) -> usize {
    match dataset.cases.len() {
        0 | 1 => 1,
        cases => task.num_fold.unwrap_or(5).min(cases),
    }
}

/// The command line's changes to what the templates choose: each `--set`, then
/// `--init-weights` as the `init_weights` key (absolute, since bundles live elsewhere).
pub fn settings(choice: &BundleChoice) -> anyhow::Result<Vec<Setting>> {
    let mut settings = (choice.set.iter())
        .map(|s| Setting::parse(s, "--set"))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(file) = &choice.init_weights {
        let absolute = std::fs::canonicalize(file)
            .with_context(|| format!("--init-weights {}", file.display()))?;
        settings.push(Setting {
            key: "init_weights".into(),
            value: serde_json::Value::String(absolute.to_string_lossy().into_owned()),
            source: "--init-weights".into(),
            template: None,
        });
    }
    Ok(settings)
}

/// The task config's other keys, as generation takes them (those naming a configuration
/// key override the template's value).
pub fn task_keys(task: &TaskConfig) -> Vec<(String, serde_json::Value)> {
    (task.extra.iter())
        .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or_default()))
        .collect()
}

/// What the templates need of the task, with the data's paths relative to a bundle of
/// `work_dir`; plans the folds once, into the work dir's split file.
fn task_info(task: &TaskConfig, dataset: &Dataset, work_dir: &WorkDir) -> anyhow::Result<TaskInfo> {
    let absolute =
        |p: &Path| std::fs::canonicalize(p).with_context(|| format!("finding {}", p.display()));
    let a_bundle = absolute(&work_dir.bundles_dir())?.join("bundle");
    let relative = |p: &Path| -> anyhow::Result<PathBuf> {
        Ok(autoseg_datasets::fsutil::relative_path(
            &a_bundle,
            &absolute(p)?,
        ))
    };
    let (num_folds, folds) = if dataset.cases.len() < 2 {
        eprintln!(
            "warning: {} labelled case(s): bundles are written for one fold, but training \
             needs at least 2 cases (one to validate on)",
            dataset.cases.len()
        );
        (1, None)
    } else {
        let options = FoldOptions {
            num_folds: num_folds(task, dataset),
            group_key: task.group_key.clone(),
            ..FoldOptions::default()
        };
        let path = work_dir.folds();
        let (folds, written) = Folds::plan_once(&path, dataset, &options)?;
        let what = if written { "planned" } else { "kept" };
        println!(
            "{:<16} {} ({what}: {} folds)",
            "split",
            path.display(),
            folds.num_folds
        );
        (folds.num_folds, Some(workdir::folds_from_bundle()))
    };
    let meta = &dataset.datalist.meta;
    let text = |k: &str| meta.get(k).and_then(|v| v.as_str()).map(str::to_string);
    Ok(TaskInfo {
        name: task
            .name
            .clone()
            .or_else(|| text("name"))
            .unwrap_or_else(|| "task".into()),
        modality: task.modality.to_string(),
        channel_names: dataset.datalist.channel_names().unwrap_or_default(),
        label_names: label_names(task, dataset),
        ignore_label: dataset.ignore_label(Some(task)),
        regions: dataset.regions(Some(task)).cloned(),
        datalist: relative(&task.datalist)?,
        dataroot: relative(&task.dataroot)?,
        num_folds,
        folds,
        data_source: text("reference")
            .or_else(|| text("description"))
            .unwrap_or_else(|| "not stated in the datalist".into()),
        data_license: text("licence")
            .or_else(|| text("license"))
            .unwrap_or_else(|| "not stated in the datalist".into()),
    })
}

/// Label names from the task's `class_names` (id = position + 1), else the datalist's
/// `labels` map.
fn label_names(task: &TaskConfig, dataset: &Dataset) -> Vec<(u16, String)> {
    if let Some(classes) = &task.class_names {
        let plain: Option<Vec<(u16, String)>> = classes
            .iter()
            .enumerate()
            .map(|(i, c)| match c {
                ClassSpec::Name(n) => Some((i as u16 + 1, n.clone())),
                ClassSpec::Region { .. } => None,
            })
            .collect();
        if let Some(mut names) = plain {
            names.insert(0, (0, "background".into()));
            return names;
        }
    }
    dataset
        .datalist
        .label_names()
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, n)| (i as u16, n))
        .collect()
}
