//! `autoseg tune`: a hyper-parameter search per bundle of a work dir, within one budget.

use std::process::ExitCode;
use std::time::Instant;

use autoseg_tuner::trials::{TrialOptions, plan};
use autoseg_tuner::tune::sampler::Sampler;
use autoseg_tuner::tune::{StudyTrial, TuneOptions, study_file, tune_bundle};

use crate::cli::{SamplerArg, TuneArgs};

pub fn run(args: &TuneArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.time_budget > 0.0, "--time-budget must be positive");
    anyhow::ensure!(args.eta >= 2, "--eta must be at least 2");
    let device = args.device.parse()?;
    let bundles = plan(
        &args.work_dir,
        &TrialOptions {
            algos: args.algos.clone(),
            folds: args.folds.clone(),
            devices: vec![device],
            progress_bars: false,
            time_budget_per_trial: None,
        },
    )?;
    anyhow::ensure!(
        !bundles.is_empty(),
        "no bundles in {} (run `autoseg generate`)",
        args.work_dir.display()
    );
    let started = Instant::now();
    for (i, b) in bundles.iter().enumerate() {
        let left = args.time_budget - started.elapsed().as_secs_f64();
        let options = TuneOptions {
            device,
            time_budget_seconds: left / (bundles.len() - i) as f64,
            sampler: match args.sampler {
                SamplerArg::Tpe => Sampler::Tpe,
                SamplerArg::Random => Sampler::Random,
            },
            first_rung: args.first_rung,
            eta: args.eta,
            seed: args.seed,
        };
        println!("[{}] {:.0} s", b.bundle, options.time_budget_seconds);
        let study = tune_bundle(&args.work_dir, &b.bundle, &options, &print_step)?;
        match &study.outcome {
            Some(o) => {
                println!(
                    "  {} trial(s), {} stopped early, in {:.0} s; at {:.1} s an epoch the budget \
                     held {:.1} full-length trial(s) of {} epochs",
                    o.trials,
                    o.stopped_early,
                    started.elapsed().as_secs_f64(),
                    o.seconds_per_epoch,
                    o.full_length_trials_in_budget,
                    study.rungs.last().unwrap_or(&0)
                );
                println!(
                    "  best {}: Dice {:.4} after {} epochs",
                    o.best, o.best_dice, o.epochs
                );
                println!("  {}", o.verdict);
                println!("  written back to {}", study.bundle);
            }
            None => println!("  no trial was scored: the budget was too short for one rung"),
        }
        println!(
            "  study: {}",
            study_file(&args.work_dir, &b.bundle).display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_step(trial: &StudyTrial, said: &str) {
    let values: Vec<String> = trial
        .values
        .iter()
        .map(|(k, v)| {
            let short = k.rsplit('.').next().unwrap_or(k);
            match (v.as_f64(), v.get("name")) {
                (Some(x), _) if v.is_f64() => format!("{short}={x:.2e}"),
                (_, Some(name)) => format!("{short}={}", name.as_str().unwrap_or("?")),
                _ => format!("{short}={v}"),
            }
        })
        .collect();
    println!("  {} [{}] {said}", trial.name, values.join(" "));
}
