//! Times one training step and one inference of the peer's small U-Net in autoseg, for
//! `bench/unet_step.sh` (which runs `../shared/peer/unet_step.py` in the same run).
//!
//!   cargo run --release -p autoseg-tuner --example bench_unet [--features tch] -- [--device cpu|tch|cuda:0] [--size 64] [--batch 2] [--steps 6]
//!
//! The same computation as the peer: softmax Dice (batch-pooled, smooth 1e-5) + cross-entropy,
//! Adam at 1e-3, input `batch x 1 x size^3`, labels `(7 i) mod 3`. Prints one JSON object with
//! the median step and inference times (first step and first inference excluded).

use std::time::Instant;

use anyhow::{Context, bail};
use autoseg_templates::ComputeDevice;
use autoseg_templates::networks::SmallUNet;
use autoseg_tuner::loss::{DiceOptions, LossConfig, RegionOptions, one_hot};
use autoseg_tuner::optim::OptimizerConfig;
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Distribution, Int, Tensor};

struct Args {
    device: ComputeDevice,
    size: usize,
    batch: usize,
    steps: usize,
}

fn parse() -> anyhow::Result<Args> {
    let mut args = Args {
        device: ComputeDevice::Flex,
        size: 64,
        batch: 2,
        steps: 6,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--device" => args.device = value.parse()?,
            "--size" => args.size = value.parse()?,
            "--batch" => args.batch = value.parse()?,
            "--steps" => args.steps = value.parse()?,
            _ => bail!("unknown flag {flag}"),
        }
    }
    Ok(args)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let args = parse()?;
    let device = args.device.training_device();
    let (s, b) = (args.size, args.batch);
    let mut net = SmallUNet::new(1, 3, &device);
    let x = Tensor::<5>::random([b, 1, s, s, s], Distribution::Normal(0.0, 1.0), &device);
    let labels: Vec<i64> = (0..b * s * s * s)
        .map(|i| (((i % (s * s * s)) * 7) % 3) as i64)
        .collect();
    let labels = Tensor::<1, Int>::from_ints(labels.as_slice(), &device).reshape([b, 1, s, s, s]);
    let target = one_hot(labels, 3);
    let loss = LossConfig::DiceCe {
        dice: DiceOptions {
            region: RegionOptions {
                batch: true,
                ..RegionOptions::default()
            },
            ..DiceOptions::default()
        },
        lambda_dice: 1.0,
        lambda_ce: 1.0,
    };
    let adam = OptimizerConfig::AdamW {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
    };
    let mut optimizer = adam.init();
    let (mut step_times, mut losses) = (Vec::new(), Vec::new());
    for _ in 0..args.steps {
        let started = Instant::now();
        let value = loss.forward(net.forward(x.clone()), target.clone(), None);
        let grads = GradientsParams::from_grads(value.backward(), &net);
        net = optimizer.step(1e-3, net, grads);
        // Reading the loss waits for the step to finish on asynchronous backends.
        losses.push(value.into_scalar::<f32>());
        step_times.push(started.elapsed().as_secs_f64());
    }
    let inference_device = args.device.burn_device();
    let net = net.valid();
    let xi = Tensor::<5>::random(
        [1, 1, s, s, s],
        Distribution::Normal(0.0, 1.0),
        &inference_device,
    );
    let mut infer_times = Vec::new();
    for _ in 0..4 {
        let started = Instant::now();
        let _ = net.forward(xi.clone()).sum().into_scalar::<f32>();
        infer_times.push(started.elapsed().as_secs_f64());
    }
    println!(
        "{{\"device\": \"{}\", \"train_step_seconds\": {:.4}, \"infer_seconds\": {:.4}, \"first_loss\": {:.4}, \"last_loss\": {:.4}}}",
        args.device,
        median(step_times[1..].to_vec()),
        median(infer_times[1..].to_vec()),
        losses[0],
        losses[losses.len() - 1]
    );
    Ok(())
}
