//! Times a bundle's training step (its network, loss, optimiser, patch, batch and mixed
//! precision) on a random batch, for `scripts/gpu-check.sh`, whose plain PyTorch twin
//! (`scripts/gpu-check/torch_reference.py step`) builds the same step from the JSON printed
//! here.
//!
//!   cargo run --release -p autoseg-tuner --example bench_bundle_step [--features tch] -- \
//!       --bundle B [--device cpu|tch|cuda:0] [--steps 8]
//!
//! Prints one JSON object: the median step (the first, which allocates, left out), the
//! losses, and the configuration the step ran.

use anyhow::{Context, bail};
use autoseg_templates::ComputeDevice;
use autoseg_tuner::train::{TrainConfig, time_synthetic_steps};
use serde_json::json;

mod common;

fn main() -> anyhow::Result<()> {
    let (mut bundle, mut device, mut steps) = (None, ComputeDevice::Flex, 8usize);
    for (flag, value) in common::flag_pairs()? {
        match flag.as_str() {
            "--bundle" => bundle = Some(std::path::PathBuf::from(value)),
            "--device" => device = value.parse()?,
            "--steps" => steps = value.parse()?,
            _ => bail!("unknown flag {flag}"),
        }
    }
    let bundle = bundle.context("--bundle is needed")?;
    if steps < 2 {
        bail!("--steps must be at least 2 (the first is not timed)");
    }
    let config = TrainConfig::read(&bundle)?;
    let run = time_synthetic_steps(&config, device, steps)?;
    let mut timed = run.seconds[1..].to_vec();
    timed.sort_by(f64::total_cmp);
    let report = json!({
        "device": device.to_string(),
        "mixed_precision": if run.bf16 { "bf16" } else { "f32" },
        "step_seconds": timed[timed.len() / 2],
        "first_step_seconds": run.seconds[0],
        "first_loss": run.losses[0],
        "last_loss": run.losses[run.losses.len() - 1],
        "parameters": run.parameters,
        "patch_size": config.patch_size,
        "batch_size": config.batch_size,
        "classes": config.preprocessing.labels.len().max(2),
        "learning_rate": config.learning_rate,
        "network": config.network,
        "loss": config.loss,
        "optimizer": config.optimizer,
        "grad_clip_norm": config.grad_clip_norm,
    });
    println!("{report}");
    Ok(())
}
