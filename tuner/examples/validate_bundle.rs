//! Validates a trained bundle's best weights on its fold, as training does (sliding window,
//! Dice per case and class, averaged over cases).
//!
//!   cargo run --release -p autoseg-tuner --example validate_bundle [--features tch] -- BUNDLE [DEVICE]

use std::path::PathBuf;

use anyhow::Context;
use autoseg_datasets::Bundle;
use autoseg_templates::ComputeDevice;
use autoseg_templates::weights;
use autoseg_tuner::train::validate::dice;
use autoseg_tuner::train::{TrainConfig, prepare_fold};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let bundle = PathBuf::from(
        args.next()
            .context("usage: validate_bundle BUNDLE [DEVICE]")?,
    );
    let device: ComputeDevice = args.next().unwrap_or_else(|| "cpu".into()).parse()?;
    let config = TrainConfig::read(&bundle)?;
    let burn_device = device.burn_device();
    let net = weights::load(
        config.network.init(&burn_device)?,
        &Bundle::new(&bundle).best_weights(),
    )?;
    let (_, validation) = prepare_fold(&bundle, &config)?;
    let per_class = dice(&net, &validation, &config, &burn_device);
    let mean = per_class.iter().sum::<f64>() / per_class.len() as f64;
    println!(
        "{{\"cases\": {}, \"dice_per_class\": {per_class:?}, \"mean_dice\": {mean:.4}}}",
        validation.len()
    );
    Ok(())
}
