//! What a run reports as it goes: `progress.yaml` (where it stands) and `metrics.csv` (one
//! row per epoch), both rewritten whole and atomically after every epoch.

use std::path::Path;

use autoseg_datasets::Bundle;
use autoseg_templates::bundle::progress::{Progress, RunStatus};

use super::TrainError;
use super::checkpoint::RunState;

/// Writes `progress.yaml` and `metrics.csv` for `state`; `stopped_because` is given once
/// the run has finished.
pub fn write(
    bundle: &Path,
    state: &RunState,
    num_epochs: usize,
    stopped_because: Option<&str>,
) -> Result<(), TrainError> {
    let status = if stopped_because.is_some() {
        RunStatus::Finished
    } else {
        RunStatus::Training
    };
    let last = state.history.last();
    let progress = Progress {
        status,
        epochs_done: state.epochs_done,
        num_epochs,
        best_dice: state.best_dice,
        best_epoch: state.best_epoch,
        seconds: state.seconds,
        last_loss: last.map(|r| r.loss),
        last_dice: last.and_then(|r| r.dice.clone()),
        stopped_because: stopped_because.map(str::to_string),
    };
    progress.write(bundle)?;
    let classes = state
        .history
        .iter()
        .filter_map(|r| r.dice.as_ref().map(Vec::len))
        .max()
        .unwrap_or(0);
    let mut csv = String::from(
        "epoch,loss,learning_rate,seconds,validation_seconds,data_wait_seconds,mean_dice",
    );
    (1..=classes).for_each(|k| csv.push_str(&format!(",dice_{k}")));
    csv.push('\n');
    for r in &state.history {
        let dice = r.dice.as_deref().unwrap_or(&[]);
        let mean = super::mean_dice(dice)
            .map(|m| m.to_string())
            .unwrap_or_default();
        csv.push_str(&format!(
            "{},{},{},{:.3},{:.3},{:.3},{mean}",
            r.epoch, r.loss, r.learning_rate, r.seconds, r.validation_seconds, r.data_wait_seconds
        ));
        (0..classes).for_each(|k| {
            csv.push_str(&format!(
                ",{}",
                dice.get(k).map(|d| d.to_string()).unwrap_or_default()
            ))
        });
        csv.push('\n');
    }
    super::atomic_write(&Bundle::new(bundle).metrics(), csv.as_bytes())
}
