//! A bundle's training configuration, `configs/hyper_parameters.yaml`: every choice the
//! training run makes, as data. Paths are relative to the bundle, so a bundle copied
//! elsewhere (with its data beside it) still runs.

use std::path::{Path, PathBuf};

use autoseg_templates::inference::SlidingWindow;
use autoseg_templates::networks::NetworkConfig;
use serde::{Deserialize, Serialize};

use super::TrainError;
use crate::data::augment::AugmentConfig;
use crate::data::preprocess::PreprocessPlan;
use crate::data::sampler::Sampling;
use crate::loss::DeepSupervision;
use crate::optim::{OptimizerConfig, Schedule};

/// Where the training data is and how it is split and preprocessed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataConfig {
    /// The datalist (relative to the bundle).
    pub datalist: PathBuf,
    /// The data root (default: the datalist's folder).
    #[serde(default)]
    pub dataroot: Option<PathBuf>,
    /// The validation fold.
    #[serde(default)]
    pub fold: usize,
    /// Folds when the datalist does not set them.
    #[serde(default = "five")]
    pub num_folds: usize,
    /// Where preprocessed cases are cached (shared by the bundles of a work dir).
    #[serde(default = "preprocessed")]
    pub cache_dir: PathBuf,
    /// What preprocessing does.
    pub plan: PreprocessPlan,
}

fn five() -> usize {
    5
}
fn preprocessed() -> PathBuf {
    PathBuf::from("../preprocessed")
}

/// Sliding-window settings of validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ValidationConfig {
    /// Validate every this many epochs (and after the last).
    pub every: usize,
    /// Window overlap.
    pub overlap: f64,
    /// Windows per forward pass.
    pub batch: usize,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        Self {
            every: 1,
            overlap: 0.5,
            batch: 1,
        }
    }
}

/// Everything a training run of one bundle on one fold needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Data, fold and preprocessing.
    pub data: DataConfig,
    /// The network.
    pub network: NetworkConfig,
    /// The loss over the deep-supervision outputs.
    #[serde(default)]
    pub loss: DeepSupervision,
    /// The optimiser.
    #[serde(default)]
    pub optimizer: OptimizerConfig,
    /// The learning-rate schedule over all iterations.
    #[serde(default = "cosine")]
    pub schedule: Schedule,
    /// The base learning rate.
    #[serde(default = "learning_rate")]
    pub learning_rate: f64,
    /// Epochs.
    pub num_epochs: usize,
    /// Iterations (batches) per epoch.
    pub iterations_per_epoch: usize,
    /// Patches per batch.
    pub batch_size: usize,
    /// Patch size, x, y, z.
    pub patch_size: [usize; 3],
    /// Gradient norm clipping (nnU-Net: 12); none when absent.
    #[serde(default)]
    pub grad_clip_norm: Option<f32>,
    /// Stop after this many validations without a better mean Dice.
    #[serde(default)]
    pub early_stop_patience: Option<usize>,
    /// Stop at the end of the epoch that passes this many seconds of training.
    #[serde(default)]
    pub time_budget_seconds: Option<f64>,
    /// Seed of weights, sampling and augmentation.
    #[serde(default)]
    pub seed: u64,
    /// Augmentation.
    #[serde(default)]
    pub augment: AugmentConfig,
    /// Patch sampling.
    #[serde(default)]
    pub sampling: Sampling,
    /// Validation.
    #[serde(default)]
    pub validation: ValidationConfig,
    /// Batches made ahead of the model.
    #[serde(default = "prefetch")]
    pub prefetch: usize,
}

fn cosine() -> Schedule {
    Schedule::WarmupCosine {
        warmup_steps: 0,
        warmup_multiplier: 0.0,
        cycles: 0.5,
        end_lr: 0.0,
    }
}
fn learning_rate() -> f64 {
    1e-3
}
fn prefetch() -> usize {
    4
}

/// The configuration file of a bundle.
pub fn config_path(bundle: &Path) -> PathBuf {
    bundle.join("configs").join("hyper_parameters.yaml")
}

impl TrainConfig {
    /// Reads a bundle's configuration, refusing unknown keys.
    pub fn read(bundle: &Path) -> Result<TrainConfig, TrainError> {
        let path = config_path(bundle);
        let invalid = |reason: String| TrainError::Config {
            path: path.clone(),
            reason,
        };
        let text = std::fs::read_to_string(&path).map_err(|e| invalid(e.to_string()))?;
        let value: serde_json::Value =
            serde_yaml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        let config: TrainConfig = autoseg_templates::strict::from_value(value).map_err(invalid)?;
        config.validate().map_err(invalid)?;
        Ok(config)
    }

    /// Writes the configuration into a bundle (atomically).
    pub fn write(&self, bundle: &Path) -> Result<(), TrainError> {
        let text = serde_yaml::to_string(self).expect("configurations serialise");
        super::atomic_write(&config_path(bundle), text.as_bytes())
    }

    fn validate(&self) -> Result<(), String> {
        if self.num_epochs == 0 || self.iterations_per_epoch == 0 || self.batch_size == 0 {
            return Err("num_epochs, iterations_per_epoch and batch_size must be positive".into());
        }
        if self.patch_size.contains(&0) {
            return Err(format!("patch_size {:?} must be positive", self.patch_size));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(format!(
                "learning_rate {} must be positive",
                self.learning_rate
            ));
        }
        let classes = self.network.out_channels();
        if self.data.plan.labels.len() != classes {
            return Err(format!(
                "the plan lists {} labels but the network has {classes} outputs",
                self.data.plan.labels.len()
            ));
        }
        self.loss.loss.validate(classes).map_err(|e| e.to_string())
    }

    /// The sliding window validation uses.
    pub fn sliding_window(&self) -> SlidingWindow {
        SlidingWindow {
            roi: self.patch_size,
            overlap: self.validation.overlap,
            batch: self.validation.batch,
        }
    }
}
