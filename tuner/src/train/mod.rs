//! Training one bundle on one fold: the loop of epochs x iterations on batches made ahead,
//! validation by sliding-window inference on the fold's validation cases, checkpoints after
//! every epoch, and resumption from the last one.

mod calibrate;
pub mod checkpoint;
pub mod config;
mod epoch;
mod find_lr;
mod phantom;
mod progress;
mod synthetic;
pub mod tensorboard;
pub mod validate;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use autoseg_datasets::{Bundle, Volume};
use autoseg_templates::ComputeDevice;
use autoseg_templates::bundle::runtime::BundlePredictor;
use autoseg_templates::bundle::validation as validation_outputs;
use autoseg_templates::networks::{Network, NetworkError};
use autoseg_templates::ops::AutocastScope;
use autoseg_templates::weights::{self, WeightsError};
use burn::grad_clipping::GradientClipping;
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use rayon::prelude::*;

use autoseg_datasets::training::DataError;
use autoseg_datasets::training::loader::TrainingSet;
use autoseg_datasets::training::prepared::{PreparedCase, prepare};
pub use calibrate::calibrate;
use checkpoint::{EpochRecord, RunState};
pub use config::TrainConfig;
pub use find_lr::find_lr;
pub use phantom::phantom_config;
pub use synthetic::{SyntheticSteps, time_synthetic_steps};

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
    /// An epoch's weights could not be written (a full disk, say); what was saved before is
    /// untouched.
    #[error(
        "{source}\nnothing was lost: the files of epoch {epochs} are intact; free space (or fix the cause) and run again with --resume"
    )]
    NotSaved {
        /// Epochs the intact checkpoint holds.
        epochs: usize,
        /// Why the write failed.
        source: Box<TrainError>,
    },
    /// Another run holds the bundle.
    #[error(transparent)]
    Locked(#[from] autoseg_datasets::lock::LockError),
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

/// The bundle's exclusive lock, held for a whole training session (or range test): a second
/// run of the same bundle is refused, naming the first.
pub(crate) fn lock_bundle(bundle: &Path) -> Result<autoseg_datasets::lock::Lock, TrainError> {
    let lock_file = autoseg_datasets::Bundle::new(bundle).lock_file();
    Ok(autoseg_datasets::lock::acquire(bundle, &lock_file)?)
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
    let (dataset, folds) = data.open(bundle)?;
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

/// Trains the bundle in `bundle` as its configuration says.
pub fn train(bundle: &Path, options: &TrainOptions) -> Result<TrainSummary, TrainError> {
    let _lock = lock_bundle(bundle)?;
    let config = TrainConfig::read(bundle)?;
    let device = options.device.training_device();
    let lowered = config.mixed_precision.lowered_on(options.device);
    let _autocast = AutocastScope::enter(lowered);
    if options.progress_bars && lowered.is_some() {
        eprintln!("mixed precision: bf16 convolutions; f32 weights, norms and losses");
    }
    let (mut net, mut optimizer, mut state) = start(bundle, &config, options, &device)?;
    let budget = match (config.time_budget_seconds, options.time_budget_seconds) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let mut log =
        tensorboard::EventLog::start(bundle, &state.history, &config.preprocessing.labels)?;
    if let Some(reason) = stop_reason(&config, &state, budget).filter(|_| state.epochs_done > 0) {
        // Resumed after the run's last epoch (killed between its checkpoint and its progress
        // file, say): nothing to train; the progress and the outputs to write again.
        progress::write(bundle, &state, config.num_epochs, Some(&reason))?;
        let reason = kept_or_said(bundle, &config, options.device, reason);
        return Ok(summary(state, reason));
    }
    let (training, validation) = prepare_fold(bundle, &config)?;
    let set = Arc::new(training_set(&config, training));
    let pause = options.stop_after_epochs.unwrap_or(usize::MAX);
    while state.epochs_done < config.num_epochs.min(pause) {
        let epoch = state.epochs_done;
        let started = Instant::now();
        let trainable = budget.map(|b| trainable_seconds(b, &state));
        let bar = epoch::progress_bar(options.progress_bars, &config, epoch + 1);
        let trained;
        (net, trained) = epoch::run(
            net,
            &mut optimizer,
            epoch::Step {
                config: &config,
                set: &set,
                epoch,
                budget_spent: trainable.map(|b| state.seconds / b),
                deadline: trainable.map(|b| {
                    started + std::time::Duration::from_secs_f64((b - state.seconds).max(0.0))
                }),
                device: &device,
            },
            &bar,
            &dice_so_far(&state),
        );
        // The last epoch validates whatever the schedule, so a run always ends with a
        // validation Dice: the configured last one, or the one that spends the budget.
        let training_seconds = state.seconds + started.elapsed().as_secs_f64();
        let last_epoch = epoch + 1 == config.num_epochs
            || trainable.is_some_and(|b| training_seconds >= b)
            || pause == epoch + 1;
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
        state.seconds += started.elapsed().as_secs_f64();
        let record = EpochRecord {
            epoch: epoch + 1,
            loss: trained.loss,
            learning_rate: trained.learning_rate,
            dice,
            seconds: started.elapsed().as_secs_f64(),
            validation_seconds,
            data_wait_seconds: trained.data_wait_seconds,
        };
        if options.progress_bars {
            eprintln!("{}", epoch::line(&record, config.num_epochs));
            if trained.steps < config.iterations_per_epoch {
                eprintln!(
                    "  cut short after {} of {} steps: the time budget ran out",
                    trained.steps, config.iterations_per_epoch
                );
            }
        }
        let kept = state.epochs_done;
        let not_saved = |source| TrainError::NotSaved {
            epochs: kept,
            source: Box::new(source),
        };
        if state.record(record) {
            // The validation outputs kept are the best weights' predictions: stale once
            // these are replaced (and still valid while they are not).
            validation_outputs::clear(bundle)?;
            weights::save(&net, &Bundle::new(bundle).best_weights())
                .map_err(|e| not_saved(e.into()))?;
        }
        checkpoint::save(bundle, &net, &optimizer, &state).map_err(not_saved)?;
        let stop = stop_reason(&config, &state, budget);
        progress::write(bundle, &state, config.num_epochs, stop.as_deref())?;
        if let Some(last) = state.history.last() {
            log.append(last)?;
        }
        if let Some(reason) = stop {
            let reason = kept_or_said(bundle, &config, options.device, reason);
            return Ok(summary(state, reason));
        }
    }
    // Every other way out of the loop returned with its stop reason.
    let paused = format!("paused after epoch {}", state.epochs_done);
    Ok(summary(state, paused))
}

/// The bundle's optimiser, with its gradient clipping.
fn new_optimizer(config: &TrainConfig) -> ModuleOptimizer {
    let optimizer = config.optimizer.init();
    match config.grad_clip_norm {
        Some(norm) => optimizer.with_grad_clipping(GradientClipping::Norm(norm)),
        None => optimizer,
    }
}

/// The network, optimiser and run state to start from: fresh, or the last checkpoint's
/// when resuming (a checkpoint found without `resume` is an error, so no work is lost).
fn start(
    bundle: &Path,
    config: &TrainConfig,
    options: &TrainOptions,
    device: &burn::tensor::Device,
) -> Result<(Network, ModuleOptimizer, RunState), TrainError> {
    let net = seeded_init(config, device)?;
    let optimizer = new_optimizer(config);
    checkpoint::remove_partials(bundle)?;
    match checkpoint::latest(bundle) {
        None => {
            let net = start_from_init_weights(bundle, config, net)?;
            Ok((net, optimizer, RunState::default()))
        }
        Some(found) if !options.resume => Err(TrainError::Checkpoint {
            path: found,
            reason: "a previous run left this checkpoint: pass --resume to continue it, or \
                     delete the model folder"
                .into(),
        }),
        Some(found) => checkpoint::load(&found, net, optimizer),
    }
}

/// A fresh run's network with the configuration's `init_weights` loaded where they fit
/// (fine-tuning); what loaded is written to `model/init_weights.yaml` and said on stderr.
fn start_from_init_weights(
    bundle: &Path,
    config: &TrainConfig,
    net: Network,
) -> Result<Network, TrainError> {
    let Some(file) = &config.init_weights else {
        return Ok(net);
    };
    let (net, report) = weights::load_matching(net, &bundle.join(file))?;
    let path = Bundle::new(bundle).init_report();
    std::fs::create_dir_all(Bundle::new(bundle).model_dir()).map_err(|source| TrainError::Io {
        path: path.clone(),
        source,
    })?;
    let text = serde_yaml::to_string(&report).expect("the report serialises");
    atomic_write(&path, text.as_bytes())?;
    eprintln!("{}: {}", bundle.display(), report.summary());
    Ok(net)
}

/// The last validation's mean Dice, for the progress bar.
fn dice_so_far(state: &RunState) -> String {
    (state.history.iter().rev())
        .find_map(|r| r.dice.as_deref().and_then(mean_dice))
        .map_or(String::new(), |d| format!(", Dice {d:.3}"))
}

/// Why the run stops after the epoch just recorded, if it does: early stopping, the time
/// budget, or the last epoch.
fn stop_reason(config: &TrainConfig, state: &RunState, budget: Option<f64>) -> Option<String> {
    if config
        .early_stop_patience
        .is_some_and(|p| state.since_best >= p)
    {
        return Some(format!(
            "no better validation Dice in {} validations",
            state.since_best
        ));
    }
    if let Some(b) = budget.filter(|&b| state.seconds >= trainable_seconds(b, state)) {
        let kept = b - trainable_seconds(b, state);
        let why = match kept >= 0.5 {
            true => format!(" ({kept:.0} s of it kept for the last validations)"),
            false => String::new(),
        };
        return Some(format!("time budget of {b:.0} s spent{why}"));
    }
    (state.epochs_done >= config.num_epochs).then(|| "all epochs done".to_string())
}

/// What of a `budget` of seconds training may spend: the rest is kept for what follows its
/// last step, that epoch's validation and the final one that keeps the validation outputs
/// for cross-validation, each priced at the last validation's seconds (none before the
/// first). Without it a run overran its budget by both (on Mindboggle's 67 classes, 712 s
/// of validation after 408 s of training).
fn trainable_seconds(budget: f64, state: &RunState) -> f64 {
    let last_validation = (state.history.iter().rev())
        .find(|r| r.dice.is_some())
        .map_or(0.0, |r| r.validation_seconds);
    (budget - 2.0 * last_validation).max(0.0)
}

fn summary(state: RunState, stopped_because: String) -> TrainSummary {
    TrainSummary {
        epochs_done: state.epochs_done,
        best_dice: state.best_dice,
        history: state.history,
        stopped_because,
    }
}

/// Keeps the validation outputs; a failure there does not undo the finished run (the
/// weights stand, and cross-validation predicts what is missing): it is said in the reason
/// the run stopped, which the trials ledger records.
fn kept_or_said(
    bundle: &Path,
    config: &TrainConfig,
    device: ComputeDevice,
    reason: String,
) -> String {
    match keep_validation_probabilities(bundle, config, device) {
        Ok(()) => reason,
        Err(e) => format!("{reason}; validation outputs not kept: {e}"),
    }
}

/// Predicts the fold's validation cases with the best weights and keeps each one's
/// probabilities in the bundle, where cross-validation selection reads them (nnU-Net's
/// final validation).
fn keep_validation_probabilities(
    bundle: &Path,
    config: &TrainConfig,
    device: ComputeDevice,
) -> Result<(), TrainError> {
    let predictor = BundlePredictor::load(bundle, device)?;
    let (dataset, folds) = config.data.open(bundle)?;
    for i in folds.validation(config.data.fold) {
        let case = &dataset.cases[i];
        let image = Volume::read_channels(&case.images)?.into_ras();
        predictor.kept_validation_probabilities(&case.id, &image, &case.images[0])?;
    }
    Ok(())
}

/// The bundle's network with the weights of its seed.
fn seeded_init(
    config: &TrainConfig,
    device: &burn::tensor::Device,
) -> Result<autoseg_templates::networks::Network, TrainError> {
    Ok(config.network.init_seeded(device, config.seed)?)
}

#[cfg(test)]
mod tests {
    use super::checkpoint::{EpochRecord, RunState};
    use super::epoch::schedule_step;
    use super::trainable_seconds;

    #[test]
    fn twice_the_last_validation_is_kept_from_the_budget() {
        let record = |dice: Option<Vec<f64>>, validation_seconds| EpochRecord {
            epoch: 1,
            loss: 0.5,
            learning_rate: 1e-3,
            dice,
            seconds: 100.0,
            validation_seconds,
            data_wait_seconds: 0.0,
        };
        let mut state = RunState::default();
        assert_eq!(
            trainable_seconds(600.0, &state),
            600.0,
            "nothing measured yet"
        );
        state.history.push(record(Some(vec![0.5]), 40.0));
        state.history.push(record(None, 0.0));
        assert_eq!(
            trainable_seconds(600.0, &state),
            520.0,
            "the last validation's 40 s, twice"
        );
        assert_eq!(trainable_seconds(60.0, &state), 0.0);
    }

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
