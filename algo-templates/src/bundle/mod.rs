//! The bundle: a folder that holds everything one trained model needs, as data (YAML,
//! JSON, safetensors), never code. `configs/` holds the configuration split over a few
//! files ([`files`]); `model/` the weights; `metadata.json` and `README.md` say what the
//! model is for; `derivation.yaml` says where each generated value came from.
//!
//! This module also holds the runtime that predicts with a trained bundle ([`runtime`]),
//! with the preprocessing training uses (`autoseg_datasets::transforms::preprocess`).

pub mod card;
pub mod data;
pub mod files;
pub mod limits;
pub mod metadata;
pub mod progress;
pub mod resident;
pub mod runtime;
pub mod stream;
pub mod validation;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::inference::Blend;

pub use files::{MergedConfig, read_config, write_config};

/// Why a bundle could not be read or written; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A file's content is wrong.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl BundleError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> BundleError {
        BundleError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn invalid(path: &Path, reason: impl Into<String>) -> BundleError {
        BundleError::Invalid {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

/// How `autoseg predict` covers a whole image (`configs/transforms_infer.yaml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InferenceConfig {
    /// Fraction of a window its neighbour shares (nnU-Net: 0.5; Auto3DSeg: 0.625).
    pub overlap: f64,
    /// Windows per forward pass.
    pub batch: usize,
    /// Window size; the training patch size when absent.
    pub roi: Option<[usize; 3]>,
    /// Test-time augmentation: the image axes (0 = x, 1 = y, 2 = z) to mirror. Every
    /// combination of them is predicted and the probabilities averaged (nnU-Net: all
    /// three, 8 passes per window); none by default.
    pub mirror_axes: Vec<usize>,
    /// How overlapping windows are weighted: `gaussian` (nnU-Net's importance map, the
    /// default) or `constant` (a plain mean).
    pub blend: Blend,
}

impl Default for InferenceConfig {
    fn default() -> Self {
        Self {
            overlap: 0.5,
            batch: 1,
            roi: None,
            mirror_axes: Vec::new(),
            blend: Blend::Gaussian,
        }
    }
}

/// The trained weights inference uses: the best validation's, else the last checkpoint's.
pub fn inference_weights(bundle: &Path) -> Option<PathBuf> {
    let bundle = autoseg_datasets::Bundle::new(bundle);
    [bundle.best_weights(), bundle.last_weights()]
        .into_iter()
        .find(|p| p.is_file())
}
