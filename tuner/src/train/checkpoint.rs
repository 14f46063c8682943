//! Checkpoints a run can resume from: the weights, the optimiser's state and the run's
//! progress, written together into a fresh folder that replaces the previous one by
//! rename, so a run killed at any instant leaves a complete checkpoint behind.

use autoseg_datasets::Bundle;
use std::path::{Path, PathBuf};

use autoseg_templates::networks::Network;
use autoseg_templates::weights;
use burn::optim::ModuleOptimizer;
use serde::{Deserialize, Serialize};

use super::TrainError;

/// Where a run stands after a finished epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RunState {
    /// Epochs finished.
    pub epochs_done: usize,
    /// Best mean validation Dice so far.
    pub best_dice: Option<f64>,
    /// The epoch (1-based) that reached it.
    pub best_epoch: Option<usize>,
    /// Validations since the best one.
    pub since_best: usize,
    /// Seconds spent training so far, over all sessions of the run.
    pub seconds: f64,
    /// One row per finished epoch.
    pub history: Vec<EpochRecord>,
}

/// What one epoch measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based.
    pub epoch: usize,
    /// Mean training loss.
    pub loss: f64,
    /// Learning rate at the epoch's start.
    pub learning_rate: f64,
    /// Validation Dice per foreground class (NaN: the class is in no validation case).
    #[serde(deserialize_with = "nan_from_null")]
    pub dice: Option<Vec<f64>>,
    /// Seconds the epoch took, validation included.
    pub seconds: f64,
    /// Seconds of those spent validating.
    #[serde(default)]
    pub validation_seconds: f64,
    /// Seconds the model waited for batches.
    pub data_wait_seconds: f64,
}

/// Reads Dice values written by serde_json, which writes NaN as `null`: without this a
/// checkpoint whose validation missed a class could not be read again (Mindboggle's run
/// lost its ranking so: the trial was finished, but its state unreadable).
fn nan_from_null<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<f64>>, D::Error> {
    let values: Option<Vec<Option<f64>>> = Option::deserialize(deserializer)?;
    Ok(values.map(|v| v.into_iter().map(|d| d.unwrap_or(f64::NAN)).collect()))
}

impl RunState {
    /// Adds a finished epoch; says whether its validation is the best so far (its weights
    /// are then the ones to keep).
    pub fn record(&mut self, record: EpochRecord) -> bool {
        self.epochs_done += 1;
        let mean = record.dice.as_deref().and_then(super::mean_dice);
        let best = match mean {
            Some(mean) if self.best_dice.is_none_or(|best| mean > best) => {
                self.best_dice = Some(mean);
                self.best_epoch = Some(record.epoch);
                self.since_best = 0;
                true
            }
            Some(_) => {
                self.since_best += 1;
                false
            }
            None => false,
        };
        self.history.push(record);
        best
    }

    /// The epoch that reached the best mean validation Dice.
    pub fn best_record(&self) -> Option<&EpochRecord> {
        let best = self.best_epoch?;
        self.history.iter().find(|r| r.epoch == best)
    }
}

/// The checkpoint folder of a bundle.
pub fn folder(bundle: &Path) -> PathBuf {
    Bundle::new(bundle).last_checkpoint()
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes a checkpoint (weights, optimiser, state) in place of the previous one.
pub fn save(
    bundle: &Path,
    net: &Network,
    optimizer: &ModuleOptimizer,
    state: &RunState,
) -> Result<(), TrainError> {
    let last = folder(bundle);
    let parent = last.parent().expect("model folder");
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let fresh = parent.join(format!("last.partial-{}", std::process::id()));
    if fresh.exists() {
        std::fs::remove_dir_all(&fresh).map_err(io(&fresh))?;
    }
    std::fs::create_dir(&fresh).map_err(io(&fresh))?;
    let written = write_into(&fresh, net, optimizer, state);
    if written.is_err() {
        // A full disk, say: the last checkpoint is untouched, and no half of this one stays.
        let _ = std::fs::remove_dir_all(&fresh);
    }
    written?;
    // Swap: the old checkpoint stays readable as `last.old` until the new one is in place.
    let old = parent.join("last.old");
    if last.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(io(&old))?;
        }
        std::fs::rename(&last, &old).map_err(io(&last))?;
    }
    std::fs::rename(&fresh, &last).map_err(io(&fresh))?;
    remove_superseded(bundle)
}

/// The checkpoint's three files into the folder `fresh`.
fn write_into(
    fresh: &Path,
    net: &Network,
    optimizer: &ModuleOptimizer,
    state: &RunState,
) -> Result<(), TrainError> {
    weights::save(net, &fresh.join("model.safetensors"))?;
    let optimizer_path = fresh.join("optimizer.bpk");
    optimizer
        .save(&optimizer_path)
        .map_err(|e| TrainError::Checkpoint {
            path: optimizer_path.clone(),
            reason: format!("{e:?}"),
        })?;
    super::atomic_write(
        &fresh.join("state.json"),
        &serde_json::to_vec_pretty(state).expect("state serialises"),
    )
}

/// Removes what a killed run left half-written anywhere in the bundle: checkpoint folders
/// and temporary files (never read: only finished ones are renamed into place), and a
/// `last.old` that a complete `last` supersedes.
pub fn remove_partials(bundle: &Path) -> Result<(), TrainError> {
    autoseg_datasets::fsutil::remove_stray_temps(bundle, &[]).map_err(io(bundle))?;
    remove_superseded(bundle)
}

/// Removes `last.old` once `last` is complete: renamed to a temporary name first, so a kill
/// while it is deleted leaves a folder every later run recognises and removes.
fn remove_superseded(bundle: &Path) -> Result<(), TrainError> {
    let last = folder(bundle);
    let old = last.with_file_name("last.old");
    if !(old.exists() && last.join("state.json").is_file()) {
        return Ok(());
    }
    let doomed = last.with_file_name(format!("{}last.old", autoseg_datasets::fsutil::TEMP_PREFIX));
    std::fs::rename(&old, &doomed).map_err(io(&old))?;
    std::fs::remove_dir_all(&doomed).map_err(io(&doomed))
}

/// The latest complete checkpoint: `last`, or `last.old` if a crash fell between the two
/// renames of [`save`]; `None` for a fresh run.
pub fn latest(bundle: &Path) -> Option<PathBuf> {
    let last = folder(bundle);
    let old = last.with_file_name("last.old");
    [last, old]
        .into_iter()
        .find(|f| f.join("state.json").is_file())
}

/// The run state stored in a checkpoint folder.
pub fn read_state(checkpoint: &Path) -> Result<RunState, TrainError> {
    let state_path = checkpoint.join("state.json");
    let text = std::fs::read(&state_path).map_err(io(&state_path))?;
    serde_json::from_slice(&text).map_err(|e| TrainError::Checkpoint {
        path: state_path.clone(),
        reason: e.to_string(),
    })
}

/// Restores weights, optimiser and state from a checkpoint folder.
pub fn load(
    checkpoint: &Path,
    net: Network,
    optimizer: ModuleOptimizer,
) -> Result<(Network, ModuleOptimizer, RunState), TrainError> {
    let state = read_state(checkpoint)?;
    let net = weights::load(net, &checkpoint.join("model.safetensors"))?;
    let optimizer_path = checkpoint.join("optimizer.bpk");
    let optimizer = optimizer
        .load(&optimizer_path)
        .map_err(|e| TrainError::Checkpoint {
            path: optimizer_path.clone(),
            reason: format!("{e:?}"),
        })?;
    Ok((net, optimizer, state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_whose_validation_missed_a_class_reads_back() {
        let mut state = RunState::default();
        state.record(EpochRecord {
            epoch: 1,
            loss: 2.5,
            learning_rate: 1e-3,
            dice: Some(vec![0.25, f64::NAN, 0.5]),
            seconds: 3.0,
            validation_seconds: 1.0,
            data_wait_seconds: 0.0,
        });
        let dir = tempfile::tempdir().unwrap();
        let text = serde_json::to_vec(&state).unwrap();
        std::fs::write(dir.path().join("state.json"), &text).unwrap();
        let read = read_state(dir.path()).unwrap();
        let dice = read.history[0].dice.clone().unwrap();
        assert_eq!((dice[0], dice[2]), (0.25, 0.5));
        assert!(dice[1].is_nan());
        assert_eq!(read.best_dice, Some(0.375));
    }
}
