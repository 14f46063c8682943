//! The dataset a command names, its check, and the phantom writer the demo uses.

use std::path::Path;

use anyhow::Context;
use autoseg_datasets::check::{CheckOptions, CheckReport, ProblemKind, Severity, check_dataset};
use autoseg_datasets::phantom::{PhantomDataset, PhantomSpec, write_dataset};
use autoseg_datasets::task::ClassSpec;
use autoseg_datasets::{Dataset, TaskConfig};

use crate::cli::DatasetArgs;
use crate::progress;

/// Opens the dataset named by `--input` or `--datalist`/`--dataroot`.
pub fn open(args: &DatasetArgs) -> anyhow::Result<(Dataset, Option<TaskConfig>)> {
    let (task, datalist, root) = match (&args.input, &args.datalist) {
        (Some(input), _) => {
            let task = TaskConfig::read(input).context("reading the task config")?;
            let (datalist, root) = (task.datalist.clone(), Some(task.dataroot.clone()));
            (Some(task), datalist, root)
        }
        (None, Some(datalist)) => (None, datalist.clone(), args.dataroot.clone()),
        (None, None) => anyhow::bail!("give --input TASK.yaml or --datalist FILE"),
    };
    let dataset = Dataset::open(&datalist, root.as_deref(), args.allow_outside_root)
        .context("reading the datalist")?;
    Ok((dataset, task))
}

/// Checks the dataset with what the task config and datalist say of classes and channels,
/// and reports unused task keys; a progress bar runs on stderr.
pub fn check(dataset: &Dataset, task: Option<&TaskConfig>) -> CheckReport {
    let options = CheckOptions {
        class_count: class_count(dataset, task),
        channels: dataset.datalist.channel_names().map(|names| names.len()),
        ignore_label: dataset.ignore_label(task),
        ..CheckOptions::default()
    };
    let bar = progress::counter(dataset.cases.len() + dataset.testing.len(), "cases");
    let mut report = check_dataset(dataset, &options, &|| bar.inc(1));
    bar.finish_and_clear();
    if let Some(plan) = dataset.regions(task) {
        let declared_in = task
            .filter(|t| t.regions.is_some())
            .map_or(&dataset.datalist.path, |t| &t.path);
        for region in &plan.regions {
            let absent: Vec<u16> = (region.labels.iter().copied())
                .filter(|id| !report.label_voxels.contains_key(id))
                .collect();
            if !absent.is_empty() && report.failed_cases == 0 {
                let message = format!(
                    "region `{}` names label id(s) {absent:?}, which no case holds: it \
                     could never be learnt",
                    region.name
                );
                report.push_dataset_problem(
                    Severity::Error,
                    ProblemKind::EmptyRegion,
                    Some(declared_in.clone()),
                    message,
                );
            }
        }
    }
    if let Some(task) = task {
        for key in task.unused_keys() {
            let message = format!(
                "task key `{key}` is not used by this version of autoseg (kept as written)"
            );
            report.push_dataset_problem(
                Severity::Warning,
                ProblemKind::UnusedConfigKey,
                Some(task.path.clone()),
                message,
            );
        }
    }
    report
}

/// Classes including background: from the task's `class_names`, else the datalist's `labels`.
fn class_count(dataset: &Dataset, task: Option<&TaskConfig>) -> Option<usize> {
    if let Some(names) = task.and_then(|t| t.class_names.as_ref()) {
        let highest = names
            .iter()
            .enumerate()
            .map(|(i, spec)| match spec {
                ClassSpec::Name(_) => i + 1,
                ClassSpec::Region { index, .. } => {
                    index.iter().copied().max().unwrap_or(0) as usize
                }
            })
            .max()
            .unwrap_or(0);
        return Some(highest + 1);
    }
    dataset.datalist.label_names().map(|names| names.len())
}

/// Prints the summary line, the label table, and one row per problem.
pub fn print_report(report: &CheckReport, root: &Path, seconds: f64) {
    let errors = report.count(Severity::Error);
    let warnings = report.count(Severity::Warning);
    println!(
        "checked {} cases in {seconds:.2} s: {} failed, {errors} errors, {warnings} warnings",
        report.cases_checked, report.failed_cases
    );
    if let Some(channels) = report.channels {
        println!("channels per case: {channels}");
    }
    if !report.label_voxels.is_empty() {
        let total: u64 = report.label_voxels.values().sum();
        let parts: Vec<String> = report
            .label_voxels
            .iter()
            .filter(|(id, _)| Some(**id) != report.ignore_label)
            .map(|(id, n)| format!("{id}: {:.2}%", 100.0 * *n as f64 / total as f64))
            .collect();
        println!("label voxels: {}", parts.join(", "));
        if let Some(id) = report.ignore_label {
            let n = report.label_voxels.get(&id).copied().unwrap_or(0);
            println!(
                "ignore label {id} (unannotated, no class): {n} voxels, {:.2}%",
                100.0 * n as f64 / total as f64
            );
        }
    }
    if report.problems.is_empty() {
        return;
    }
    let rows: Vec<[String; 4]> = report
        .problems
        .iter()
        .map(|p| {
            let case = match (&p.locator, &p.case) {
                (Some(at), Some(id)) => format!("{id} ({at})"),
                _ => "(dataset)".to_string(),
            };
            let severity = match p.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            let file = p
                .file
                .as_deref()
                .map(|f| f.strip_prefix(root).unwrap_or(f).display().to_string())
                .unwrap_or_default();
            [case, severity.to_string(), file, p.message.clone()]
        })
        .collect();
    let width = |i: usize| rows.iter().map(|r| r[i].len()).max().unwrap_or(0).max(4);
    let (w0, w1, w2) = (width(0), width(1), width(2));
    println!(
        "\n{:<w0$}  {:<w1$}  {:<w2$}  PROBLEM",
        "CASE", "SEVERITY", "FILE"
    );
    for [case, severity, file, message] in rows {
        println!("{case:<w0$}  {severity:<w1$}  {file:<w2$}  {message}");
    }
}

/// Writes the phantom dataset with a message that names the folder on failure.
pub fn write_phantom(spec: &PhantomSpec, out: &Path) -> anyhow::Result<PhantomDataset> {
    write_dataset(spec, out)
        .with_context(|| format!("writing the phantom dataset to {}", out.display()))
}
