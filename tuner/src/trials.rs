//! Training every bundle of a work dir: each bundle (one algorithm on one fold) is a trial;
//! finished ones are skipped, interrupted ones resume from their checkpoints, and the rest
//! run side by side, one per device slot. `W/trials.yaml` records each trial's state: the
//! bundle files are the truth, the ledger is rewritten from them and from each result.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use autoseg_datasets::WorkDir;
use autoseg_templates::ComputeDevice;
use autoseg_templates::bundle::progress::Progress;
use autoseg_templates::bundle::read_config;
use serde::{Deserialize, Serialize};

use crate::train::checkpoint::{self, RunState};
use crate::train::{TrainError, TrainOptions, TrainSummary, train};

/// Where a trial stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrialStatus {
    /// Not started.
    Pending,
    /// Started and interrupted (a checkpoint exists) or training now.
    Partial,
    /// Ran to its end (all epochs, early stop or time budget).
    Finished,
    /// Stopped by an error (see `error`).
    Failed,
}

/// One bundle's trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// The bundle's folder name (`dynunet_0`).
    pub bundle: String,
    /// The algorithm (template).
    pub algo: String,
    /// The validation fold.
    pub fold: usize,
    /// A hash of the bundle's configuration when the ledger was written: a changed hash
    /// means the configuration was edited since.
    pub config_hash: String,
    /// Where it stands.
    pub status: TrialStatus,
    /// Best mean validation Dice.
    pub best_dice: Option<f64>,
    /// Dice per foreground class at the best epoch.
    pub dice_per_class: Option<Vec<f64>>,
    /// Epochs finished.
    pub epochs_done: usize,
    /// Seconds of training.
    pub seconds: f64,
    /// The device of its last session.
    pub device: Option<String>,
    /// Why it stopped, or the error.
    pub note: Option<String>,
}

/// What `train_all` trains and on what.
#[derive(Debug, Clone)]
pub struct TrialOptions {
    /// Algorithms (all when empty).
    pub algos: Vec<String>,
    /// Folds (all when empty).
    pub folds: Vec<usize>,
    /// One slot per entry: trials run side by side, one on each.
    pub devices: Vec<ComputeDevice>,
    /// Draw each run's progress bars (with one slot only).
    pub progress_bars: bool,
    /// Seconds of training each trial may take at most, beside its own configuration's
    /// budget (the smaller holds).
    pub time_budget_per_trial: Option<f64>,
}

/// The bundles of a work dir, sorted.
pub fn bundles(work_dir: &Path) -> Result<Vec<PathBuf>, TrainError> {
    let work_dir = WorkDir::new(work_dir);
    let found = work_dir.list_bundles().map_err(|source| TrainError::Io {
        path: work_dir.bundles_dir(),
        source,
    })?;
    Ok(found.into_iter().map(|b| b.dir().to_path_buf()).collect())
}

/// A short hash of a bundle's merged configuration.
fn config_hash(bundle: &Path) -> Result<String, TrainError> {
    let merged = read_config(bundle)?;
    let text = serde_json::to_string(&merged.values).expect("configurations serialise");
    Ok(autoseg_datasets::hash::fnv1a64_hex(text.as_bytes()))
}

/// A bundle's trial as its files tell it.
pub fn trial_of(bundle: &Path) -> Result<Trial, TrainError> {
    let config = crate::train::TrainConfig::read(bundle)?;
    let name = bundle
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let algo = name
        .rsplit_once('_')
        .map_or(name.as_str(), |(algo, _)| algo)
        .to_string();
    let progress = Progress::read(bundle).transpose()?;
    let state = checkpoint::latest(bundle)
        .map(|c| checkpoint::read_state(&c))
        .transpose()?;
    let finished = progress.as_ref().is_some_and(Progress::finished);
    let status = match (&state, finished) {
        (_, true) => TrialStatus::Finished,
        (Some(_), false) => TrialStatus::Partial,
        (None, false) => TrialStatus::Pending,
    };
    let mut trial = Trial {
        bundle: name,
        algo,
        fold: config.data.fold,
        config_hash: config_hash(bundle)?,
        status,
        best_dice: None,
        dice_per_class: None,
        epochs_done: 0,
        seconds: 0.0,
        device: None,
        note: progress.and_then(|p| p.stopped_because),
    };
    if let Some(state) = &state {
        record(&mut trial, state);
    }
    Ok(trial)
}

fn record(trial: &mut Trial, state: &RunState) {
    trial.best_dice = state.best_dice;
    trial.dice_per_class = state.best_record().and_then(|r| r.dice.clone());
    trial.epochs_done = state.epochs_done;
    trial.seconds = state.seconds;
}

/// The ledger, shared by the slots and rewritten after each change.
struct Ledger {
    path: PathBuf,
    trials: Mutex<Vec<Trial>>,
}

impl Ledger {
    /// Replaces a trial's entry (when given) and rewrites the file.
    fn update(&self, trial: Option<Trial>) -> Result<(), TrainError> {
        let mut trials = self
            .trials
            .lock()
            .expect("no slot panics holding the ledger");
        if let Some(trial) = trial
            && let Some(t) = trials.iter_mut().find(|t| t.bundle == trial.bundle)
        {
            *t = trial;
        }
        // Other processes (cluster jobs on a shared work dir) write their own trials: under
        // an exclusive lock, this process's entries replace theirs on disk, the rest stay.
        let _lock = lock(&self.path)?;
        let mut all = read_ledger(&self.path).unwrap_or_default();
        all.retain(|d| !trials.iter().any(|t| t.bundle == d.bundle));
        all.extend(trials.iter().cloned());
        all.sort_by(|a, b| a.bundle.cmp(&b.bundle));
        let text = serde_yaml::to_string(&all).expect("trials serialise");
        crate::train::atomic_write(&self.path, text.as_bytes())
    }
}

/// An exclusive lock on `ledger` (on `<ledger>.lock`, released when dropped), held while
/// the ledger is read and rewritten.
fn lock(ledger: &Path) -> Result<std::fs::File, TrainError> {
    let path = ledger.with_extension("yaml.lock");
    let io = |source| TrainError::Io {
        path: path.clone(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io)?;
    file.lock().map_err(io)?;
    Ok(file)
}

/// The ledger's trials as last written, if it is there and readable.
pub fn read_ledger(path: &Path) -> Option<Vec<Trial>> {
    autoseg_datasets::textfile::from_yaml(&autoseg_datasets::textfile::read_text(path).ok()?).ok()
}

/// The selected trials of a work dir, as their bundles' files tell them.
pub fn plan(work_dir: &Path, options: &TrialOptions) -> Result<Vec<Trial>, TrainError> {
    let mut trials = Vec::new();
    for bundle in bundles(work_dir)? {
        let trial = trial_of(&bundle)?;
        let wanted = (options.algos.is_empty() || options.algos.contains(&trial.algo))
            && (options.folds.is_empty() || options.folds.contains(&trial.fold));
        if wanted {
            trials.push(trial);
        }
    }
    Ok(trials)
}

/// Trains every selected bundle that has not finished (resuming those interrupted), on
/// the device slots side by side; a trial that fails is recorded and the others go on.
/// `on_done` hears of each trial as it ends. Returns every selected trial.
pub fn train_all(
    work_dir: &Path,
    options: &TrialOptions,
    on_done: &(dyn Fn(&Trial) + Sync),
) -> Result<Vec<Trial>, TrainError> {
    let trials = plan(work_dir, options)?;
    let queue: Mutex<VecDeque<Trial>> = Mutex::new(
        trials
            .iter()
            .filter(|t| t.status != TrialStatus::Finished)
            .cloned()
            .collect(),
    );
    let ledger = Ledger {
        path: WorkDir::new(work_dir).trials(),
        trials: Mutex::new(trials),
    };
    ledger.update(None)?;
    let bars = options.progress_bars && options.devices.len() == 1;
    std::thread::scope(|scope| -> Result<(), TrainError> {
        let mut slots = Vec::new();
        for &device in &options.devices {
            let (queue, ledger) = (&queue, &ledger);
            slots.push(scope.spawn(move || -> Result<(), TrainError> {
                while let Some(mut trial) = queue.lock().expect("queue").pop_front() {
                    let bundle = WorkDir::new(work_dir)
                        .bundle(&trial.bundle)
                        .dir()
                        .to_path_buf();
                    trial.device = Some(device.to_string());
                    let result = train(
                        &bundle,
                        &TrainOptions {
                            stop_after_epochs: None,
                            time_budget_seconds: options.time_budget_per_trial,
                            device,
                            resume: trial.status == TrialStatus::Partial,
                            progress_bars: bars,
                        },
                    );
                    conclude(&mut trial, &bundle, result);
                    on_done(&trial);
                    ledger.update(Some(trial))?;
                }
                Ok(())
            }));
        }
        slots
            .into_iter()
            .try_for_each(|slot| slot.join().expect("a training slot panicked"))
    })?;
    Ok(ledger.trials.into_inner().expect("slots done"))
}

fn conclude(trial: &mut Trial, bundle: &Path, result: Result<TrainSummary, TrainError>) {
    match result {
        Ok(summary) => {
            trial.status = TrialStatus::Finished;
            trial.note = Some(summary.stopped_because.clone());
            match checkpoint::latest(bundle).map(|c| checkpoint::read_state(&c)) {
                Some(Ok(state)) => record(trial, &state),
                // Said in the ledger, not dropped: the ranking leaves the trial out for it.
                Some(Err(e)) => trial.note = Some(format!("{}; {e}", summary.stopped_because)),
                None => {}
            }
        }
        Err(e) => {
            trial.status = TrialStatus::Failed;
            trial.note = Some(e.to_string());
        }
    }
}
