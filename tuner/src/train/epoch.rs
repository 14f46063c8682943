//! One epoch of training: batches made ahead by the loader, a step of the optimiser on each,
//! and the learning rate as the schedule (and the time budget) say; and how an epoch shows
//! on the terminal.

use std::sync::Arc;
use std::time::Instant;

use autoseg_templates::networks::Network;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Int, Tensor};

use super::checkpoint::EpochRecord;
use super::{TrainConfig, mean_dice};
use crate::loss::{one_hot, region_targets};
use autoseg_datasets::training::loader::{Batch, Prefetcher, TrainingSet};

/// What one epoch trains on.
pub(super) struct Step<'a> {
    /// The configuration.
    pub config: &'a TrainConfig,
    /// The training patches.
    pub set: &'a Arc<TrainingSet>,
    /// The epoch (from 0).
    pub epoch: usize,
    /// The share of the time budget spent before it, if there is one.
    pub budget_spent: Option<f64>,
    /// When the time budget runs out, if there is one: the epoch ends there, after at least
    /// one step, however many it was to take (on a slow device one epoch can outlast a
    /// trial's whole budget).
    pub deadline: Option<Instant>,
    /// Where the network trains.
    pub device: &'a burn::tensor::Device,
}

/// What an epoch's iterations did.
pub(super) struct Trained {
    /// The mean loss.
    pub loss: f64,
    /// The learning rate at its first iteration.
    pub learning_rate: f64,
    /// Seconds spent waiting for batches.
    pub data_wait_seconds: f64,
    /// Steps taken: all of the epoch's, or fewer where the time budget ran out.
    pub steps: usize,
}

/// Runs one epoch's iterations; `dice_so_far` is shown beside the loss.
pub(super) fn run(
    mut net: Network,
    optimizer: &mut ModuleOptimizer,
    step: Step,
    bar: &indicatif::ProgressBar,
    dice_so_far: &str,
) -> (Network, Trained) {
    let config = step.config;
    let iterations = config.iterations_per_epoch;
    let total = config.num_epochs * iterations;
    let mut batches = Prefetcher::start(
        step.set.clone(),
        (step.epoch * iterations) as u64,
        iterations as u64,
        config.prefetch,
    );
    let first = schedule_step(step.epoch * iterations, total, step.budget_spent);
    let (mut loss_sum, mut waited) = (0.0, 0.0);
    let mut steps = 0;
    for it in 0..iterations {
        if it > 0 && step.deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let wait = Instant::now();
        let batch = batches
            .next_batch()
            .expect("the prefetcher makes every batch of the epoch");
        waited += wait.elapsed().as_secs_f64();
        let at = (first + it).min(total.saturating_sub(1));
        let lr = config.schedule.lr(config.learning_rate, at, total);
        let value;
        (net, value) = optimize(net, optimizer, config, &batch, lr, step.device);
        loss_sum += value;
        steps += 1;
        bar.set_message(format!("loss {value:.4}{dice_so_far}"));
        bar.inc(1);
    }
    let trained = Trained {
        loss: loss_sum / steps as f64,
        learning_rate: config.schedule.lr(config.learning_rate, first, total),
        data_wait_seconds: waited,
        steps,
    };
    (net, trained)
}

/// One optimiser step on `batch` at rate `lr`; returns the network and the batch's loss.
pub(super) fn optimize(
    net: Network,
    optimizer: &mut ModuleOptimizer,
    config: &TrainConfig,
    batch: &Batch,
    lr: f64,
    device: &burn::tensor::Device,
) -> (Network, f64) {
    let (image, target, labelled) = tensors(batch, config, device);
    let loss = config
        .loss
        .forward(net.forward_deep(image), target, labelled);
    let grads = GradientsParams::from_grads(loss.backward(), &net);
    let net = optimizer.step(lr, net, grads);
    (net, loss.into_scalar::<f32>() as f64)
}

/// The batch as tensors: images, one-hot targets (or one binary channel per region), and
/// where the bundle has an ignore label, the mask of annotated voxels (the ignore class's
/// one-hot is all zeros).
fn tensors(
    batch: &Batch,
    config: &TrainConfig,
    device: &burn::tensor::Device,
) -> (Tensor<5>, Tensor<5>, Option<Tensor<5>>) {
    let [x, y, z] = batch.patch;
    let image = Tensor::<1>::from_floats(batch.image.as_slice(), device).reshape([
        batch.size,
        batch.channels,
        x,
        y,
        z,
    ]);
    let labels: Vec<i64> = batch.label.iter().map(|&l| l as i64).collect();
    let labels =
        Tensor::<1, Int>::from_ints(labels.as_slice(), device).reshape([batch.size, 1, x, y, z]);
    let labelled = config
        .preprocessing
        .ignore_class()
        .map(|ignore| labels.clone().not_equal_elem(ignore as i64).float());
    let target = match &config.regions {
        None => one_hot(labels, config.network.out_channels()),
        Some(plan) => region_targets(labels, &plan.class_sets(&config.preprocessing.labels)),
    };
    (image, target, labelled)
}

/// Where the schedule stands at an epoch's first iteration `step`: with a time budget
/// (`budget_spent`, the share of it used so far), the further of the iterations' share and
/// the budget's, so the schedule completes when the budget is spent even if the epochs would
/// not have (a decaying rate then ends low, not cut off high). Without one, the step itself:
/// runs stay reproducible.
pub(super) fn schedule_step(step: usize, total: usize, budget_spent: Option<f64>) -> usize {
    let by_time = budget_spent.map_or(0, |spent| (spent.min(1.0) * total as f64) as usize);
    step.max(by_time).min(total.saturating_sub(1))
}

/// One finished epoch in words, for the terminal.
pub(super) fn line(r: &EpochRecord, epochs: usize) -> String {
    let dice = match r.dice.as_deref() {
        Some(d) => {
            let each: Vec<String> = d.iter().map(|v| format!("{v:.3}")).collect();
            let mean = mean_dice(d).map_or("-".into(), |m| format!("{m:.3}"));
            format!(", Dice {mean} ({})", each.join(" "))
        }
        None => String::new(),
    };
    format!(
        "epoch {}/{epochs}: loss {:.4}{dice}, {:.1} s",
        r.epoch, r.loss, r.seconds
    )
}

/// The bar of epoch `epoch` (from 1), hidden unless `visible`.
pub(super) fn progress_bar(
    visible: bool,
    config: &TrainConfig,
    epoch: usize,
) -> indicatif::ProgressBar {
    if !visible {
        return indicatif::ProgressBar::hidden();
    }
    let epochs = config.num_epochs;
    let bar = indicatif::ProgressBar::new(config.iterations_per_epoch as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("epoch {epoch}/{epochs}"));
    bar
}
