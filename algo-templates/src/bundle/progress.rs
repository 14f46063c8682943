//! `progress.yaml`: where a bundle's training stands, rewritten after every epoch. Training
//! writes it; the trials ledger, `inspect` and the report read it through this one type.

use std::path::Path;

use autoseg_datasets::Bundle;
use serde::{Deserialize, Serialize};

use super::BundleError;

/// Whether a run is under way or done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Epochs remain (or the run was paused or killed).
    Training,
    /// The run ended: every epoch, early stopping or the time budget.
    Finished,
}

/// A bundle's `progress.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Under way or done.
    pub status: RunStatus,
    /// Epochs finished, over all sessions.
    pub epochs_done: usize,
    /// Epochs the configuration asks for.
    pub num_epochs: usize,
    /// Best mean validation Dice.
    pub best_dice: Option<f64>,
    /// The epoch that reached it.
    pub best_epoch: Option<usize>,
    /// Seconds of training, over all sessions.
    pub seconds: f64,
    /// The last epoch's mean loss.
    pub last_loss: Option<f64>,
    /// The last validation's Dice per foreground class.
    pub last_dice: Option<Vec<f64>>,
    /// Why the run ended, once it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_because: Option<String>,
}

impl Progress {
    /// A bundle's progress; `None` before any epoch was written.
    pub fn read(bundle: &Path) -> Option<Result<Progress, BundleError>> {
        let path = Bundle::new(bundle).progress();
        let text = match autoseg_datasets::textfile::read_text(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => return Some(Err(BundleError::io(&path, e))),
            Ok(text) => text,
        };
        Some(
            autoseg_datasets::textfile::from_yaml(&text)
                .map_err(|e| BundleError::invalid(&path, e.to_string())),
        )
    }

    /// Writes it into the bundle, atomically.
    pub fn write(&self, bundle: &Path) -> Result<(), BundleError> {
        let path = Bundle::new(bundle).progress();
        let yaml = serde_yaml::to_string(self).expect("progress serialises");
        autoseg_datasets::fsutil::write_bytes_atomic(&path, yaml.as_bytes())
            .map_err(|e| BundleError::io(&path, e))
    }

    /// Whether the run ended.
    pub fn finished(&self) -> bool {
        self.status == RunStatus::Finished
    }
}
