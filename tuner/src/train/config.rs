//! A bundle's training configuration, `configs/*.yaml` merged (see
//! [`autoseg_templates::bundle::files`]): every choice the training run makes, as data.
//! Paths are relative to the bundle, so a bundle copied elsewhere (with its data beside
//! it) still runs.

use std::path::{Path, PathBuf};

pub use autoseg_templates::bundle::data::DataConfig;
use autoseg_templates::bundle::limits::{Pass, check_stepping, check_window};
use autoseg_templates::bundle::{self, InferenceConfig};
use autoseg_templates::inference::{Accumulation, Blend, SlidingWindow};
use autoseg_templates::networks::NetworkConfig;
use autoseg_templates::ops::MixedPrecision;
use serde::{Deserialize, Serialize};

use super::TrainError;
use crate::loss::DeepSupervision;
use crate::optim::{OptimizerConfig, Schedule};
use autoseg_datasets::regions::{Decoding, RegionPlan, check_outputs};
use autoseg_datasets::training::sampler::Sampling;
use autoseg_datasets::transforms::augment::AugmentConfig;
use autoseg_datasets::transforms::preprocess::PreprocessPlan;

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
    /// Data and fold.
    pub data: DataConfig,
    /// What preprocessing does (training, validation and inference alike).
    pub preprocessing: PreprocessPlan,
    /// The network.
    pub network: NetworkConfig,
    /// Region-based targets: one sigmoid output per region instead of one softmax output
    /// per class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regions: Option<RegionPlan>,
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
    /// Convolutions in bf16 with f32 master weights (`auto`: on a CUDA GPU, as nnU-Net's
    /// and Auto3DSeg's AMP, and on burn-flex where the CPU has AVX-512 BF16; `off`;
    /// `bf16`: on any device).
    #[serde(default)]
    pub mixed_precision: MixedPrecision,
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
    /// Inference on whole images (`autoseg predict`).
    #[serde(default)]
    pub inference: InferenceConfig,
    /// Batches made ahead of the model.
    #[serde(default = "prefetch")]
    pub prefetch: usize,
    /// Weights to start from instead of a random draw (fine-tuning, nnU-Net's
    /// `-pretrained_weights`): autoseg's safetensors or a PyTorch/MONAI state dict (`.pt`,
    /// `.pth`, `.ckpt`), relative to the bundle. Parameters the file lacks, or holds with
    /// another shape (a head with another class count), start fresh.
    #[serde(default)]
    pub init_weights: Option<PathBuf>,
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

impl TrainConfig {
    /// Reads a bundle's configuration (every `configs/*.yaml`), refusing unknown keys and
    /// naming the file that holds them.
    pub fn read(bundle: &Path) -> Result<TrainConfig, TrainError> {
        let merged = bundle::read_config(bundle)?;
        let value = serde_json::Value::Object(merged.values.clone());
        let invalid = |path: PathBuf, reason: String| TrainError::Config { path, reason };
        let (config, unknown) = autoseg_templates::strict::parse_reporting_unknown::<TrainConfig>(
            value,
        )
        .map_err(|reason| {
            // A misspelt required key reads as a missing one: name the stray key too.
            let known = super::phantom_config(PathBuf::new()).to_map();
            let stray: Vec<&str> = merged
                .values
                .keys()
                .filter(|k| !known.contains_key(*k))
                .map(String::as_str)
                .collect();
            match stray.first() {
                Some(first) => invalid(
                    merged.file_of(bundle, first),
                    format!("{reason}; unknown key {}", stray.join(", ")),
                ),
                // A type error starts with its key path: name the file that holds it.
                None => {
                    let key = reason.split(':').next().unwrap_or_default();
                    invalid(merged.file_of(bundle, key), reason)
                }
            }
        })?;
        if let Some(first) = unknown.first() {
            let file = merged.file_of(bundle, first);
            let keys = unknown.join(", ");
            return Err(invalid(file, format!("unknown key {keys}")));
        }
        let file = |key: &str| merged.file_of(bundle, key);
        config
            .validate()
            .map_err(|(key, reason)| invalid(file(key), reason))?;
        Ok(config)
    }

    /// Writes the configuration into a bundle's `configs/`, each file atomically.
    pub fn write(&self, bundle: &Path) -> Result<(), TrainError> {
        Ok(bundle::write_config(bundle, &self.to_map())?)
    }

    /// The configuration as a mapping, every default written out.
    pub fn to_map(&self) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::to_value(self).expect("configurations serialise") {
            serde_json::Value::Object(values) => values,
            _ => unreachable!("a configuration is a mapping"),
        }
    }

    /// Checks a configuration mapping as [`Self::read`] does and returns it with every
    /// default written out: how `autoseg generate` checks a bundle before writing it.
    pub fn complete(
        values: serde_json::Map<String, serde_json::Value>,
    ) -> Result<serde_json::Map<String, serde_json::Value>, String> {
        let config: TrainConfig =
            autoseg_templates::strict::from_value(serde_json::Value::Object(values))?;
        config
            .validate()
            .map_err(|(key, reason)| format!("{key}: {reason}"))?;
        Ok(config.to_map())
    }

    /// Checks values serde cannot; an error names the key it is about.
    fn validate(&self) -> Result<(), (&'static str, String)> {
        for (key, value) in [
            ("num_epochs", self.num_epochs),
            ("iterations_per_epoch", self.iterations_per_epoch),
            ("batch_size", self.batch_size),
        ] {
            if value == 0 {
                return Err((key, format!("{key} must be positive")));
            }
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            let reason = format!("learning_rate {} must be positive", self.learning_rate);
            return Err(("learning_rate", reason));
        }
        self.network
            .validate()
            .map_err(|e| ("network", e.to_string()))?;
        self.preprocessing
            .validate()
            .map_err(|e| ("preprocessing", e))?;
        let patch = self.patch_size;
        check_window(&self.network, patch, self.batch_size, Pass::Training)
            .map_err(|e| ("patch_size", e))?;
        let validation = &self.validation;
        check_stepping(validation.overlap, validation.batch)
            .and_then(|()| check_window(&self.network, patch, validation.batch, Pass::Inference))
            .map_err(|e| ("validation", format!("validation: {e}")))?;
        let outputs = self.network.out_channels();
        let key = if self.regions.is_some() {
            "regions"
        } else {
            "preprocessing"
        };
        check_outputs(&self.preprocessing.labels, self.regions.as_ref(), outputs)
            .map_err(|e| (key, e))?;
        self.loss
            .loss
            .validate(outputs, self.decoding())
            .map_err(|e| ("loss", e.to_string()))
    }

    /// How the network's outputs decode: classes, or regions.
    pub fn decoding(&self) -> Decoding {
        Decoding::of(self.regions.as_ref())
    }

    /// The sliding window validation uses.
    pub fn sliding_window(&self) -> SlidingWindow {
        SlidingWindow {
            roi: self.patch_size,
            overlap: self.validation.overlap,
            batch: self.validation.batch,
            blend: Blend::Gaussian,
            accumulation: Accumulation::Host,
        }
    }
}
