//! `autoseg train --bundle DIR`: trains one bundle on its fold (the unit a cluster job runs).

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use autoseg_templates::ComputeDevice;
use autoseg_tuner::train::{TrainOptions, train};

use crate::cli::TrainArgs;

pub fn run(args: &TrainArgs) -> anyhow::Result<ExitCode> {
    let device: ComputeDevice = args.device.parse()?;
    let options = TrainOptions {
        device,
        resume: args.resume,
        progress_bars: std::io::stderr().is_terminal(),
    };
    let summary = train(&args.bundle, &options)
        .with_context(|| format!("training {}", args.bundle.display()))?;
    let best = summary
        .best_dice
        .map_or("none".to_string(), |d| format!("{d:.4}"));
    println!(
        "{}: {} epochs, best mean validation Dice {best} ({})",
        args.bundle.display(),
        summary.epochs_done,
        summary.stopped_because
    );
    Ok(ExitCode::SUCCESS)
}
