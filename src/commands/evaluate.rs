//! `autoseg evaluate --pred DIR --ref DIR|DATALIST`: metrics per case and class into
//! `metrics.csv`, their summary into `summary.yaml`. A case that cannot be evaluated is
//! reported and the rest go on.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use autoseg_datasets::fsutil::write_bytes_atomic;
use autoseg_datasets::{Dataset, LabelVolume, TaskConfig, Volume};
use autoseg_ensembler::evaluate::{
    ClassMetrics, Scoring, csv, evaluate_labels, read_pair, summarize,
};
use autoseg_ensembler::overlay::{SLICES, write_overlay};
use autoseg_kernels::KernelDevice;
use rayon::prelude::*;

use crate::cli::EvaluateArgs;
use crate::progress;

/// A prediction and the reference it is measured against.
struct Pair {
    case: String,
    pred: PathBuf,
    reference: Option<PathBuf>,
    /// The image's channel files, where known (for --png).
    image: Vec<PathBuf>,
}

pub fn run(args: &EvaluateArgs) -> anyhow::Result<ExitCode> {
    let (pairs, dataset) = pairs(&args.pred, &args.reference, args.images.as_deref())?;
    let task = match &args.input {
        Some(path) => Some(TaskConfig::read(path).context("reading the task config")?),
        None => None,
    };
    let from_datalist = |d: &Dataset| {
        (
            d.ignore_label(task.as_ref()),
            d.regions(task.as_ref()).cloned(),
        )
    };
    let (ignore, regions) = match &dataset {
        Some(d) => from_datalist(d),
        None => (
            task.as_ref().and_then(|t| t.ignore_label),
            task.as_ref().and_then(|t| t.regions.clone()),
        ),
    };
    anyhow::ensure!(
        regions.is_none() || args.labels.is_empty(),
        "--labels picks label ids, but the regions of {} are measured: leave --labels out",
        args.input.as_ref().unwrap_or(&args.reference).display()
    );
    let scoring = Scoring {
        labels: args.labels.clone(),
        nsd_tolerance_mm: args.nsd_tolerance,
        ignore: args.ignore_label.or(ignore),
        regions,
        device: KernelDevice::open(&args.device)?,
    };
    if scoring.device.is_gpu() {
        println!("metrics on {}", scoring.device);
    }
    if let Some(id) = scoring.ignore {
        println!("label {id} is the ignore label: its voxels count in no metric");
    }
    if let Some(plan) = &scoring.regions {
        let each: Vec<String> = (plan.regions.iter())
            .map(|r| format!("{} = {:?}", r.name, r.labels))
            .collect();
        println!(
            "measuring regions, each the union of its label ids: {}",
            each.join(", ")
        );
    }
    let out = args.out.clone().unwrap_or_else(|| args.pred.clone());
    let bar = progress::counter(pairs.len(), "cases");
    let results: Vec<(String, anyhow::Result<Vec<ClassMetrics>>)> = pairs
        .par_iter()
        .map(|p| {
            let result = match &p.reference {
                None => Err(anyhow::anyhow!("no reference for {}", p.pred.display())),
                Some(r) => read_pair(&p.pred, r).map_err(anyhow::Error::from).and_then(
                    |(pred, reference)| {
                        if args.png {
                            overlay(p, &pred, &reference, &out)?;
                        }
                        Ok(evaluate_labels(&p.case, &pred, &reference, &scoring))
                    },
                ),
            };
            bar.inc(1);
            (p.case.clone(), result)
        })
        .collect();
    bar.finish_and_clear();
    let mut rows = Vec::new();
    let mut failed = 0;
    for (case, result) in results {
        match result {
            Ok(r) => rows.extend(r),
            Err(e) => {
                eprintln!("  FAILED {case}: {}", crate::error_text(&e));
                failed += 1;
            }
        }
    }
    let evaluated = pairs.len() - failed;
    let summary = summarize(&rows, evaluated, args.nsd_tolerance);
    write(&out.join("metrics.csv"), csv(&rows).as_bytes())?;
    let yaml = serde_yaml::to_string(&summary).context("writing the summary")?;
    write(&out.join("summary.yaml"), yaml.as_bytes())?;
    for class in &summary.classes {
        let (dice, hd95) = (&class.dice, &class.hd95);
        let what = match &class.region {
            Some(name) => format!("region {name}"),
            None => format!("label {:>3}", class.label),
        };
        println!(
            "{what}: Dice {:.4} (median {:.4}, {} cases), HD95 {:.2} mm",
            dice.mean, dice.median, dice.n, hd95.mean
        );
    }
    println!(
        "{evaluated} case(s), {failed} failed; mean foreground Dice {:.4}; wrote {} and {}",
        summary.foreground_mean_dice,
        out.join("metrics.csv").display(),
        out.join("summary.yaml").display()
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Writes the case's overlay picture into `out/overlays/`.
fn overlay(
    pair: &Pair,
    pred: &LabelVolume,
    reference: &LabelVolume,
    out: &Path,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        !pair.image.is_empty(),
        "no image for the overlay of {} (give --images, or a datalist as --ref)",
        pair.case
    );
    let image = Volume::read_channels(&pair.image)?
        .into_onto(reference.geometry())
        .map_err(|m| {
            let file = pair.image[0].display();
            anyhow::anyhow!("{file} is not on the grid of the case's reference: {m}")
        })?;
    let path = out.join("overlays").join(format!("{}.png", pair.case));
    write_overlay(&image, pred, reference, SLICES, &path)
        .with_context(|| format!("writing {}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_bytes_atomic(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Each prediction file (`<case>.nii.gz` or `.nii`; probability maps that `predict` wrote
/// beside them are passed over) with its reference: the file of the same name in a folder,
/// or the datalist case of that id.
/// The pairs to measure, and the datalist when `reference` is one.
fn pairs(
    pred: &Path,
    reference: &Path,
    images: Option<&Path>,
) -> anyhow::Result<(Vec<Pair>, Option<Dataset>)> {
    let mut predictions: Vec<(String, PathBuf)> = std::fs::read_dir(pred)
        .with_context(|| format!("reading {}", pred.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?;
            let id = name.strip_suffix(".nii.gz").or(name.strip_suffix(".nii"))?;
            let maps = id.ends_with(autoseg_ensembler::predict::PROBABILITIES_SUFFIX);
            (!maps).then(|| (id.to_string(), p.clone()))
        })
        .collect();
    predictions.sort();
    anyhow::ensure!(
        !predictions.is_empty(),
        "{} holds no .nii or .nii.gz file",
        pred.display()
    );
    let same_name = |dir: &Path, file: &Path| {
        let candidate = dir.join(file.file_name()?);
        candidate.is_file().then_some(candidate)
    };
    let dataset = if reference.is_dir() {
        None
    } else {
        Some(Dataset::open(reference, None, false).context("reading the datalist")?)
    };
    let pairs = predictions
        .into_iter()
        .map(|(case, pred)| {
            let listed = dataset
                .as_ref()
                .and_then(|d| d.all_cases().find(|c| c.id == case));
            let reference = match &dataset {
                None => same_name(reference, &pred),
                Some(_) => listed.and_then(|c| c.label.clone()),
            };
            let image = match (images, listed) {
                (Some(dir), _) => same_name(dir, &pred).into_iter().collect(),
                (None, Some(c)) => c.images.clone(),
                (None, None) => Vec::new(),
            };
            Pair {
                reference,
                image,
                case,
                pred,
            }
        })
        .collect();
    Ok((pairs, dataset))
}
