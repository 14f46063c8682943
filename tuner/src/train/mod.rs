//! Training one bundle on one fold: the loop of epochs x iterations on batches made ahead,
//! validation by sliding-window inference on the fold's validation cases, checkpoints after
//! every epoch, and resumption from the last one.

pub mod checkpoint;
pub mod config;
mod phantom;
mod progress;
pub mod validate;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use autoseg_datasets::Dataset;
use autoseg_datasets::folds::{FoldOptions, Folds};
use autoseg_templates::ComputeDevice;
use autoseg_templates::networks::NetworkError;
use autoseg_templates::weights::{self, WeightsError};
use burn::grad_clipping::GradientClipping;
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor};
use rayon::prelude::*;

use crate::data::DataError;
use crate::data::loader::{Batch, Prefetcher, TrainingSet};
use crate::data::preprocess::{PreparedCase, prepare};
use crate::loss::one_hot;
use checkpoint::{EpochRecord, RunState};
pub use config::TrainConfig;
pub use phantom::phantom_config;

/// Why a run could not start or go on; each names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The bundle's configuration is missing or wrong.
    #[error("{path}: {reason}")]
    Config {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The dataset or a case could not be read.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The datalist could not be opened or split (boxed: the dataset error is large).
    #[error(transparent)]
    Dataset(Box<autoseg_datasets::DatasetError>),
    /// The network configuration is invalid.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// Weights could not be written or read.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// A checkpoint file could not be written or read.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The fold has no training or no validation case.
    #[error("fold {fold}: {reason}")]
    Fold {
        /// The fold.
        fold: usize,
        /// What is missing.
        reason: String,
    },
}

impl From<autoseg_templates::bundle::BundleError> for TrainError {
    fn from(error: autoseg_templates::bundle::BundleError) -> Self {
        use autoseg_templates::bundle::BundleError;
        match error {
            BundleError::Io { path, source } => TrainError::Io { path, source },
            BundleError::Invalid { path, reason } => TrainError::Config { path, reason },
        }
    }
}

impl From<autoseg_datasets::DatasetError> for TrainError {
    fn from(error: autoseg_datasets::DatasetError) -> Self {
        TrainError::Dataset(Box::new(error))
    }
}

/// How a run is started.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Where the network trains.
    pub device: ComputeDevice,
    /// Continue from the last checkpoint (else an existing one is an error, so no work is
    /// overwritten by accident).
    pub resume: bool,
    /// Draw progress bars.
    pub progress_bars: bool,
    /// Seconds of training this run may take at most (over all its sessions), beside the
    /// configuration's own `time_budget_seconds`: the smaller holds. A scheduler sharing a
    /// budget out among trials sets it.
    pub time_budget_seconds: Option<f64>,
    /// Pause once this many epochs are done (over all sessions), validating the last one;
    /// the run stays resumable and its schedule unchanged. Tuning's rungs set it.
    pub stop_after_epochs: Option<usize>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSummary {
    /// Epochs finished, over all sessions.
    pub epochs_done: usize,
    /// Best mean validation Dice.
    pub best_dice: Option<f64>,
    /// Per-epoch records.
    pub history: Vec<EpochRecord>,
    /// Why the run stopped.
    pub stopped_because: String,
}

/// Writes a file atomically (synced temporary file, then rename).
pub(crate) fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    autoseg_datasets::fsutil::write_bytes_atomic(path, bytes).map_err(|source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The mean of the classes' Dice that are defined (NaN: class absent everywhere).
pub(crate) fn mean_dice(dice: &[f64]) -> Option<f64> {
    let defined: Vec<f64> = dice.iter().copied().filter(|d| !d.is_nan()).collect();
    (!defined.is_empty()).then(|| defined.iter().sum::<f64>() / defined.len() as f64)
}

/// The fold's training and validation cases, preprocessed (cached under the plan's id).
pub fn prepare_fold(
    bundle: &Path,
    config: &TrainConfig,
) -> Result<(Vec<PreparedCase>, Vec<PreparedCase>), TrainError> {
    let data = &config.data;
    let dataset = Dataset::open(
        &bundle.join(&data.datalist),
        data.dataroot.as_ref().map(|r| bundle.join(r)).as_deref(),
        false,
    )?;
    let folds = Folds::plan(
        &dataset,
        // The split has a seed of its own (FoldOptions' default), not the run's: bundles
        // trained with other seeds must validate on the same cases to be compared.
        &FoldOptions {
            num_folds: data.num_folds,
            ..FoldOptions::default()
        },
    )?;
    let plan = &config.preprocessing;
    let cache = bundle.join(&data.cache_dir).join(plan.id());
    let load = |indices: Vec<usize>| -> Result<Vec<PreparedCase>, TrainError> {
        indices
            .into_par_iter()
            .map(|i| prepare(&dataset.cases[i], plan, &cache).map_err(TrainError::from))
            .collect()
    };
    let (training, validation) = (folds.training(data.fold), folds.validation(data.fold));
    if training.is_empty() || validation.is_empty() {
        return Err(TrainError::Fold {
            fold: data.fold,
            reason: format!(
                "{} training and {} validation cases",
                training.len(),
                validation.len()
            ),
        });
    }
    Ok((load(training)?, load(validation)?))
}

/// The training patches and batches a configuration asks for.
pub fn training_set(config: &TrainConfig, cases: Vec<PreparedCase>) -> TrainingSet {
    let mut set = TrainingSet::new(cases, config.patch_size, config.batch_size, config.seed);
    set.sampling = config.sampling.clone();
    set.augment = config.augment.clone();
    set.planar = config.network.spatial_dims() == 2;
    set
}

/// The batch as tensors: images and one-hot targets.
fn tensors(batch: &Batch, classes: usize, device: &burn::tensor::Device) -> (Tensor<5>, Tensor<5>) {
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
    (image, one_hot(labels, classes))
}

/// Trains the bundle in `bundle` as its configuration says.
pub fn train(bundle: &Path, options: &TrainOptions) -> Result<TrainSummary, TrainError> {
    let config = TrainConfig::read(bundle)?;
    let device = options.device.training_device();
    let classes = config.network.out_channels();
    let mut net = seeded_init(&config, &device)?;
    let mut optimizer = config.optimizer.init();
    if let Some(norm) = config.grad_clip_norm {
        optimizer = optimizer.with_grad_clipping(GradientClipping::Norm(norm));
    }
    let mut state = RunState::default();
    checkpoint::remove_partials(bundle)?;
    if let Some(found) = checkpoint::latest(bundle) {
        if !options.resume {
            return Err(TrainError::Checkpoint {
                path: found,
                reason: "a previous run left this checkpoint: pass --resume to continue it, or delete the model folder".into(),
            });
        }
        (net, optimizer, state) = checkpoint::load(&found, net, optimizer)?;
    }
    let (training, validation) = prepare_fold(bundle, &config)?;
    let set = Arc::new(training_set(&config, training));
    let total_iterations = config.num_epochs * config.iterations_per_epoch;
    let budget = match (config.time_budget_seconds, options.time_budget_seconds) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let mut stopped_because = "all epochs done".to_string();
    let pause = options.stop_after_epochs.unwrap_or(usize::MAX);
    while state.epochs_done < config.num_epochs.min(pause) {
        let epoch = state.epochs_done;
        let started = Instant::now();
        let first = (epoch * config.iterations_per_epoch) as u64;
        let mut batches = Prefetcher::start(
            set.clone(),
            first,
            config.iterations_per_epoch as u64,
            config.prefetch,
        );
        // The bar shows the last validation's mean Dice beside the running loss.
        let dice_so_far = state
            .history
            .iter()
            .rev()
            .find_map(|r| r.dice.as_deref().and_then(mean_dice))
            .map_or(String::new(), |d| format!(", Dice {d:.3}"));
        let bar = progress_bar(
            options.progress_bars,
            config.iterations_per_epoch,
            epoch + 1,
            config.num_epochs,
        );
        let (mut loss_sum, mut waited) = (0.0, 0.0);
        let first_step = schedule_step(
            epoch * config.iterations_per_epoch,
            total_iterations,
            budget.map(|b| state.seconds / b),
        );
        let lr0 = config
            .schedule
            .lr(config.learning_rate, first_step, total_iterations);
        for it in 0..config.iterations_per_epoch {
            let wait = Instant::now();
            let batch = batches
                .next_batch()
                .expect("the prefetcher makes every batch of the epoch");
            waited += wait.elapsed().as_secs_f64();
            let (image, target) = tensors(&batch, classes, &device);
            let loss = config.loss.forward(net.forward_deep(image), target);
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            let step = (first_step + it).min(total_iterations.saturating_sub(1));
            net = optimizer.step(
                config
                    .schedule
                    .lr(config.learning_rate, step, total_iterations),
                net,
                grads,
            );
            let value = loss.into_scalar::<f32>() as f64;
            loss_sum += value;
            bar.set_message(format!("loss {value:.4}{dice_so_far}"));
            bar.inc(1);
        }
        drop(batches);
        // The last epoch validates whatever the schedule, so a run always ends with a
        // validation Dice: the configured last one, or the one that spends the budget.
        let training_seconds = state.seconds + started.elapsed().as_secs_f64();
        let last_epoch = epoch + 1 == config.num_epochs
            || budget.is_some_and(|b| training_seconds >= b)
            || options.stop_after_epochs == Some(epoch + 1);
        let validating = Instant::now();
        let dice = ((epoch + 1) % config.validation.every.max(1) == 0 || last_epoch).then(|| {
            validate::dice(
                &net.valid(),
                &validation,
                &config,
                &options.device.burn_device(),
            )
        });
        let validation_seconds = validating.elapsed().as_secs_f64();
        bar.finish_and_clear();
        state.epochs_done += 1;
        state.seconds += started.elapsed().as_secs_f64();
        let mean = dice.as_deref().and_then(mean_dice);
        if let Some(mean) = mean {
            if state.best_dice.is_none_or(|best| mean > best) {
                state.best_dice = Some(mean);
                state.best_epoch = Some(epoch + 1);
                state.since_best = 0;
                weights::save(&net, &checkpoint::best_weights(bundle))?;
            } else {
                state.since_best += 1;
            }
        }
        state.history.push(EpochRecord {
            epoch: epoch + 1,
            loss: loss_sum / config.iterations_per_epoch as f64,
            learning_rate: lr0,
            dice,
            seconds: started.elapsed().as_secs_f64(),
            validation_seconds,
            data_wait_seconds: waited,
        });
        if options.progress_bars {
            eprintln!(
                "{}",
                epoch_line(
                    state.history.last().expect("just pushed"),
                    config.num_epochs
                )
            );
        }
        checkpoint::save(bundle, &net, &optimizer, &state)?;
        let stop = if config
            .early_stop_patience
            .is_some_and(|p| state.since_best >= p)
        {
            Some(format!(
                "no better validation Dice in {} validations",
                state.since_best
            ))
        } else {
            budget
                .filter(|b| state.seconds >= *b)
                .map(|b| format!("time budget of {b:.0} s spent"))
        };
        let stop = stop.or_else(|| {
            (state.epochs_done == config.num_epochs).then(|| "all epochs done".to_string())
        });
        progress::write(bundle, &state, config.num_epochs, stop.as_deref())?;
        if let Some(reason) = stop {
            stopped_because = reason;
            break;
        }
        if options.stop_after_epochs == Some(state.epochs_done) {
            stopped_because = format!("paused after epoch {}", state.epochs_done);
            break;
        }
    }
    Ok(TrainSummary {
        epochs_done: state.epochs_done,
        best_dice: state.best_dice,
        history: state.history,
        stopped_because,
    })
}

/// Where the schedule stands at an epoch's first iteration `step`: with a time budget
/// (`budget_spent`, the share of it used so far), the further of the iterations' share and
/// the budget's, so the schedule completes when the budget is spent even if the epochs would
/// not have (a decaying rate then ends low, not cut off high). Without one, the step itself:
/// runs stay reproducible.
fn schedule_step(step: usize, total: usize, budget_spent: Option<f64>) -> usize {
    let by_time = budget_spent.map_or(0, |spent| (spent.min(1.0) * total as f64) as usize);
    step.max(by_time).min(total.saturating_sub(1))
}

/// The backend's random generator is one per process: seeding it and drawing the initial
/// weights happen under one lock, so runs side by side in a process (trials, tests) each
/// get the weights of their own seed.
fn seeded_init(
    config: &TrainConfig,
    device: &burn::tensor::Device,
) -> Result<autoseg_templates::networks::Network, TrainError> {
    static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = INIT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    device.seed(config.seed);
    let net = config.network.init(device)?;
    // burn draws parameters lazily, at first use: draw them all now, under the lock.
    struct Materialize;
    impl burn::module::ModuleVisitor for Materialize {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    net.visit(&mut Materialize);
    Ok(net)
}

/// One finished epoch in words, for the terminal.
fn epoch_line(r: &EpochRecord, epochs: usize) -> String {
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

fn progress_bar(
    visible: bool,
    iterations: usize,
    epoch: usize,
    epochs: usize,
) -> indicatif::ProgressBar {
    if !visible {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(iterations as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("epoch {epoch}/{epochs}"));
    bar
}

#[cfg(test)]
mod tests {
    use super::schedule_step;

    #[test]
    fn the_schedule_follows_the_budget_when_it_runs_out_first() {
        // No budget: the step itself.
        assert_eq!(schedule_step(10, 100, None), 10);
        // Half the budget spent by step 10 of 100: the schedule is at 50.
        assert_eq!(schedule_step(10, 100, Some(0.5)), 50);
        // The epochs ahead of the clock: the step.
        assert_eq!(schedule_step(80, 100, Some(0.5)), 80);
        // Never past the last step.
        assert_eq!(schedule_step(10, 100, Some(3.0)), 99);
    }
}
