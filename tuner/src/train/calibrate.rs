//! Calibration for the budget planner: a bundle's training steps timed on a device (its own
//! data, network, loss and optimiser; a warm-up step left out), and one window's validation
//! inference, priced over its fold's validation cases. Nothing in the bundle is written.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use autoseg_datasets::training::loader::Prefetcher;
use autoseg_datasets::training::prepared::PreparedCase;
use autoseg_templates::ComputeDevice;
use autoseg_templates::inference::{HeadSlices, mirror_passes, streamed_classes, window_starts};
use autoseg_templates::networks::Network;
use autoseg_templates::ops::AutocastScope;
use autoseg_templates::planner::Calibration;
use burn::module::Module;

use super::{TrainConfig, TrainError, epoch, prepare_fold, seeded_init, training_set};

/// Steps timed at most after the warm-up step.
const MAX_TIMED_STEPS: usize = 5;

/// Times the bundle's training and validation on `device` for about `seconds` (at least a
/// warm-up step and one timed step, whatever they take); `algo` is its template.
pub fn calibrate(
    bundle: &Path,
    algo: &str,
    device: ComputeDevice,
    seconds: f64,
) -> Result<Calibration, TrainError> {
    let _lock = super::lock_bundle(bundle)?;
    let config = TrainConfig::read(bundle)?;
    let _autocast = AutocastScope::enter(config.mixed_precision.lowered_on(device));
    let (training, validation) = prepare_fold(bundle, &config)?;
    let (net, step_seconds, steps_timed) = time_steps(&config, training, device, seconds)?;
    let window_seconds = time_window(&net, &validation, &config, device);
    let windows: usize = (validation.iter())
        .map(|case| windows(case.header.dims, &config))
        .sum();
    let validation_seconds = window_seconds * windows as f64;
    Ok(Calibration {
        algo: algo.to_string(),
        parameters: net.num_params(),
        step_seconds,
        steps_timed,
        validation_seconds,
        case_seconds: validation_seconds / validation.len().max(1) as f64,
        mirror_passes: mirror_passes(&config.inference.mirror_axes),
        steps_per_validation: config.iterations_per_epoch * config.validation.every.max(1),
        schedule_steps: config.num_epochs * config.iterations_per_epoch,
    })
}

/// The trained network and the median seconds of a step (batch wait included, as an
/// epoch sees it) over the timed steps.
fn time_steps(
    config: &TrainConfig,
    training: Vec<PreparedCase>,
    device: ComputeDevice,
    seconds: f64,
) -> Result<(Network, f64, usize), TrainError> {
    let burn_device = device.training_device();
    let set = Arc::new(training_set(config, training));
    let mut batches = Prefetcher::start(set, 0, MAX_TIMED_STEPS as u64 + 1, config.prefetch);
    let mut net = seeded_init(config, &burn_device)?;
    let mut optimizer = super::new_optimizer(config);
    let started = Instant::now();
    let mut times = Vec::new();
    for step in 0..=MAX_TIMED_STEPS {
        let begun = Instant::now();
        let batch = batches
            .next_batch()
            .expect("the prefetcher makes every batch asked for");
        let lr = config.learning_rate;
        (net, _) = epoch::optimize(net, &mut optimizer, config, &batch, lr, &burn_device);
        let took = begun.elapsed().as_secs_f64();
        // The first step allocates (and on libtorch, tunes kernels): timed only when it
        // alone spends the calibration's time.
        if step > 0 || took >= seconds {
            times.push(took);
        }
        if !times.is_empty() && started.elapsed().as_secs_f64() >= seconds {
            break;
        }
    }
    times.sort_by(f64::total_cmp);
    Ok((net, times[times.len() / 2], times.len()))
}

/// Seconds of one validation window (forward and decoding), timed on a window-sized crop
/// of the first validation case, run twice so the second is timed.
fn time_window(
    net: &Network,
    validation: &[PreparedCase],
    config: &TrainConfig,
    device: ComputeDevice,
) -> f64 {
    let Some(case) = validation.first() else {
        return 0.0;
    };
    let roi = config.patch_size;
    let dims = case.header.dims;
    let crop: [usize; 3] = std::array::from_fn(|a| dims[a].min(roi[a]));
    let channels = case.header.channels;
    let image = crop_origin(case.image(), channels, dims, crop);
    let window = config.sliding_window();
    let decoding = config.decoding();
    let outputs = config.network.out_channels();
    let valid = net.valid();
    let forward = HeadSlices {
        network: &valid,
        decoding,
        mirror_axes: &[],
    };
    let burn_device = device.burn_device();
    let mut took = 0.0;
    for _ in 0..2 {
        let begun = Instant::now();
        let run = image.clone();
        streamed_classes(
            &window,
            run,
            channels,
            crop,
            outputs,
            decoding,
            &forward,
            &burn_device,
        );
        took = begun.elapsed().as_secs_f64();
    }
    took
}

/// The `crop` block at the origin of `[channels, x, y, z]` (z fastest).
fn crop_origin(image: &[f32], channels: usize, dims: [usize; 3], crop: [usize; 3]) -> Vec<f32> {
    let [_, ny, nz] = dims;
    let [cx, cy, cz] = crop;
    let mut out = Vec::with_capacity(channels * cx * cy * cz);
    for c in 0..channels {
        for x in 0..cx {
            for y in 0..cy {
                let start = ((c * dims[0] + x) * ny + y) * nz;
                out.extend_from_slice(&image[start..start + cz]);
            }
        }
    }
    out
}

/// Windows the validation's sliding window places over a case of `dims`.
fn windows(dims: [usize; 3], config: &TrainConfig) -> usize {
    let overlap = config.validation.overlap;
    (0..3)
        .map(|a| window_starts(dims[a], config.patch_size[a], overlap).len())
        .product()
}

#[cfg(test)]
mod tests {
    use super::crop_origin;

    #[test]
    fn the_crop_holds_the_origin_block_of_every_channel() {
        // Two channels of 2x3x4; each voxel holds its own flat index.
        let image: Vec<f32> = (0..48).map(|i| i as f32).collect();
        let crop = crop_origin(&image, 2, [2, 3, 4], [1, 2, 2]);
        assert_eq!(crop, [0.0, 1.0, 4.0, 5.0, 24.0, 25.0, 28.0, 29.0]);
    }
}
