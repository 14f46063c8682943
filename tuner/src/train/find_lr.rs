//! `autoseg train --find-lr`: the learning-rate range test on a bundle's own data, network
//! and optimiser (MONAI's `LearningRateFinder`), written to `B/lr_finder.yaml`. The
//! bundle's weights and checkpoints are left alone.

use std::path::Path;
use std::sync::Arc;

use autoseg_datasets::Bundle;
use autoseg_datasets::training::loader::Prefetcher;
use autoseg_templates::ComputeDevice;
use autoseg_templates::ops::AutocastScope;

use super::{
    TrainConfig, TrainError, atomic_write, epoch, prepare_fold, seeded_init, training_set,
};
use crate::optim::{LrFinder, LrFinderResult};

/// Runs the range test on the bundle's training cases (its fold's) on `device` and writes
/// the rates, smoothed losses and suggestion to the bundle's `lr_finder.yaml`.
pub fn find_lr(
    bundle: &Path,
    finder: &LrFinder,
    device: ComputeDevice,
) -> Result<LrFinderResult, TrainError> {
    let _lock = super::lock_bundle(bundle)?;
    let config = TrainConfig::read(bundle)?;
    let burn_device = device.training_device();
    let _autocast = AutocastScope::enter(config.mixed_precision.lowered_on(device));
    let (training, _) = prepare_fold(bundle, &config)?;
    let set = Arc::new(training_set(&config, training));
    let mut batches = Prefetcher::start(set, 0, finder.iterations as u64, config.prefetch);
    let mut net = Some(seeded_init(&config, &burn_device)?);
    let mut optimizer = super::new_optimizer(&config);
    let result = finder.run(|lr| {
        let batch = batches
            .next_batch()
            .expect("the prefetcher makes every batch asked for");
        let current = net.take().expect("a network between steps");
        let (next, loss) =
            epoch::optimize(current, &mut optimizer, &config, &batch, lr, &burn_device);
        net = Some(next);
        loss
    });
    let yaml = serde_yaml::to_string(&result).expect("results serialise");
    atomic_write(&Bundle::new(bundle).lr_finder(), yaml.as_bytes())?;
    Ok(result)
}
