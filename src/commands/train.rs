//! `autoseg train`: one bundle on its fold (the unit a cluster job runs), or every bundle of
//! a work dir, skipping finished ones and resuming interrupted ones.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use autoseg_datasets::{Bundle, WorkDir};
use autoseg_ensembler::report::plot::lr_finder_png;
use autoseg_templates::ComputeDevice;
use autoseg_tuner::optim::LrFinder;
use autoseg_tuner::slurm::{self, SlurmOptions};
use autoseg_tuner::train::{TrainConfig, TrainOptions, find_lr, train};
use autoseg_tuner::trials::{Trial, TrialOptions, TrialStatus, plan, train_all};

use crate::cli::TrainArgs;

pub fn run(args: &TrainArgs) -> anyhow::Result<ExitCode> {
    let devices = args
        .device
        .iter()
        .map(|d| d.parse::<ComputeDevice>())
        .collect::<Result<Vec<_>, _>>()?;
    match (&args.bundle, &args.work_dir) {
        (Some(bundle), _) => {
            anyhow::ensure!(devices.len() == 1, "one bundle trains on one device");
            if args.find_lr {
                return find_bundle_lr(bundle, devices[0]);
            }
            if let Some(file) = &args.init_weights {
                set_init_weights(bundle, file)?;
            }
            train_bundle(bundle, devices[0], args.resume)
        }
        (None, Some(work_dir)) => train_work_dir(work_dir, devices, args),
        (None, None) => anyhow::bail!("give --bundle DIR or --work-dir W"),
    }
}

fn find_bundle_lr(bundle: &Path, device: ComputeDevice) -> anyhow::Result<ExitCode> {
    let result = find_lr(bundle, &LrFinder::default(), device)
        .with_context(|| format!("the learning-rate range test on {}", bundle.display()))?;
    let tried = match (result.lrs.first(), result.lrs.last()) {
        (Some(first), Some(last)) => {
            format!("{} rates from {first:.1e} to {last:.1e}", result.lrs.len())
        }
        _ => "no rate".into(),
    };
    match result.suggestion {
        Some(lr) => println!("{tried}: the loss fell fastest at learning_rate {lr:.2e}"),
        None => println!("{tried}: too few steps before the loss diverged to suggest a rate"),
    }
    let bundle = Bundle::new(bundle);
    let picture = lr_finder_png(&result.lrs, &result.losses, result.suggestion)
        .map_err(|e| anyhow::anyhow!("drawing the range test: {e}"))?;
    let plot = bundle.lr_finder_plot();
    autoseg_datasets::fsutil::write_bytes_atomic(&plot, &picture)
        .with_context(|| format!("writing {}", plot.display()))?;
    println!(
        "wrote {} and {}",
        bundle.lr_finder().display(),
        plot.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Records `file` (absolute) as the bundle's `init_weights`, the rest of its configuration
/// unchanged.
fn set_init_weights(bundle: &Path, file: &Path) -> anyhow::Result<()> {
    let absolute = std::fs::canonicalize(file)
        .with_context(|| format!("--init-weights {}", file.display()))?;
    let mut config = TrainConfig::read(bundle)?;
    config.init_weights = Some(absolute);
    config.write(bundle)?;
    Ok(())
}

fn train_bundle(bundle: &Path, device: ComputeDevice, resume: bool) -> anyhow::Result<ExitCode> {
    let options = TrainOptions {
        stop_after_epochs: None,
        time_budget_seconds: None,
        device,
        resume,
        progress_bars: std::io::stderr().is_terminal(),
    };
    let summary =
        train(bundle, &options).with_context(|| format!("training {}", bundle.display()))?;
    let best = summary
        .best_dice
        .map_or("none".to_string(), |d| format!("{d:.4}"));
    println!(
        "{}: {} epochs, best mean validation Dice {best} ({})",
        bundle.display(),
        summary.epochs_done,
        summary.stopped_because
    );
    Ok(ExitCode::SUCCESS)
}

fn train_work_dir(
    work_dir: &Path,
    devices: Vec<ComputeDevice>,
    args: &TrainArgs,
) -> anyhow::Result<ExitCode> {
    let options = TrialOptions {
        algos: args.algos.clone(),
        folds: args.folds.clone(),
        devices,
        progress_bars: std::io::stderr().is_terminal(),
        time_budget_per_trial: None,
    };
    let trials = if args.cluster.is_some() {
        match train_on_slurm(work_dir, &options, args)? {
            Some(trials) => trials,
            None => return Ok(ExitCode::SUCCESS),
        }
    } else {
        train_all(work_dir, &options, &print_trial)
            .with_context(|| format!("training the bundles of {}", work_dir.display()))?
    };
    let count = |s: TrialStatus| trials.iter().filter(|t| t.status == s).count();
    println!(
        "{} trial(s): {} finished, {} failed; ledger {}",
        trials.len(),
        count(TrialStatus::Finished),
        count(TrialStatus::Failed),
        WorkDir::new(work_dir).trials().display()
    );
    Ok(if count(TrialStatus::Failed) == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_trial(t: &Trial) {
    let best = t.best_dice.map_or("none".into(), |d| format!("{d:.4}"));
    let note = t.note.as_deref().unwrap_or("");
    println!(
        "{:<16} {:?}: best Dice {best} after {} epochs ({note})",
        t.bundle, t.status, t.epochs_done
    );
}

/// Submits the unfinished trials as a SLURM job array; unless detached, waits for it
/// (submitting lost trials again) and returns every selected trial.
fn train_on_slurm(
    work_dir: &Path,
    options: &TrialOptions,
    args: &TrainArgs,
) -> anyhow::Result<Option<Vec<Trial>>> {
    anyhow::ensure!(
        options.devices.len() == 1,
        "--cluster takes one --device for every task"
    );
    let all = plan(work_dir, options)?;
    let pending: Vec<Trial> = all
        .iter()
        .filter(|t| t.status != TrialStatus::Finished)
        .cloned()
        .collect();
    if pending.is_empty() {
        println!("every selected trial has finished: nothing to submit");
        return Ok(Some(all));
    }
    let slurm_options = SlurmOptions {
        autoseg: std::env::current_exe().context("locating the autoseg binary")?,
        device: args.device[0].clone(),
        cpus_per_task: args.cpus_per_task,
        sbatch_options: args.sbatch.clone(),
        retries: 1,
        poll_seconds: 2.0,
    };
    let id = slurm::submit(work_dir, &pending, &slurm_options)?;
    println!(
        "submitted {} trial(s) as job array {id} (logs in {})",
        pending.len(),
        slurm::logs_dir(work_dir).display()
    );
    if args.detach {
        println!("detached: `autoseg train --work-dir` or `autoseg rank` once the jobs are done");
        return Ok(None);
    }
    let done = slurm::wait(work_dir, id, &pending, &slurm_options, &|event| {
        println!("{event}")
    })?;
    done.iter().for_each(print_trial);
    let mut all = all;
    for t in &mut all {
        if let Some(d) = done.iter().find(|d| d.bundle == t.bundle) {
            *t = d.clone();
        }
    }
    Ok(Some(all))
}
