//! A bundle's training step timed on a random batch of its patch and batch sizes, with its
//! own network, loss, optimiser and mixed precision: the step a GPU check or a benchmark
//! compares with PyTorch's on a machine that holds no copy of the bundle's data.

use std::time::Instant;

use autoseg_datasets::rng::Rng;
use autoseg_datasets::training::loader::Batch;
use autoseg_templates::ComputeDevice;
use autoseg_templates::ops::AutocastScope;
use burn::module::Module;

use super::{TrainConfig, TrainError, epoch, new_optimizer, seeded_init};

/// What [`time_synthetic_steps`] measured.
#[derive(Debug, Clone)]
pub struct SyntheticSteps {
    /// Seconds of each step, the first (allocations, kernel tuning) included.
    pub seconds: Vec<f64>,
    /// The loss of each step.
    pub losses: Vec<f64>,
    /// The network's parameters.
    pub parameters: usize,
    /// Whether the convolutions ran in bf16.
    pub bf16: bool,
}

/// Takes `steps` optimiser steps of the bundle's configuration on `device`, each on the
/// same random batch (normal intensities, labels `(7 i) mod classes`).
pub fn time_synthetic_steps(
    config: &TrainConfig,
    device: ComputeDevice,
    steps: usize,
) -> Result<SyntheticSteps, TrainError> {
    let lowered = config.mixed_precision.lowered_on(device);
    let _autocast = AutocastScope::enter(lowered);
    let burn_device = device.training_device();
    let mut net = seeded_init(config, &burn_device)?;
    let parameters = net.num_params();
    let mut optimizer = new_optimizer(config);
    let batch = random_batch(config);
    let (mut seconds, mut losses) = (Vec::new(), Vec::new());
    for _ in 0..steps {
        let begun = Instant::now();
        let loss;
        // Reading the loss back waits for the step on asynchronous devices.
        (net, loss) = epoch::optimize(
            net,
            &mut optimizer,
            config,
            &batch,
            config.learning_rate,
            &burn_device,
        );
        seconds.push(begun.elapsed().as_secs_f64());
        losses.push(loss);
    }
    Ok(SyntheticSteps {
        seconds,
        losses,
        parameters,
        bf16: lowered.is_some(),
    })
}

/// A batch of the configuration's shape: intensities from a seeded normal draw, labels
/// cycling through the classes.
fn random_batch(config: &TrainConfig) -> Batch {
    let channels = config.network.in_channels();
    let classes = config.preprocessing.labels.len().max(2);
    let voxels: usize = config.patch_size.iter().product::<usize>() * config.batch_size;
    let mut rng = Rng::new(config.seed);
    let image = (0..voxels * channels)
        .map(|_| rng.normal() as f32)
        .collect();
    let label = (0..voxels).map(|i| ((7 * i) % classes) as u8).collect();
    Batch {
        patch: config.patch_size,
        channels,
        size: config.batch_size,
        image,
        label,
    }
}
