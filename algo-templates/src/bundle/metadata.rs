//! `metadata.json`: what a bundle's model is for, in the spirit of MONAI's bundle spec, so
//! that someone handed the folder can tell what it segments, from what input, made how.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::BundleError;

/// One input channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputChannel {
    /// Its name in the dataset (e.g. "T1", "FLAIR"), or "image".
    pub name: String,
    /// Its modality ("CT", "MRI"...).
    pub modality: String,
}

/// One output class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputClass {
    /// The label id written in predictions.
    pub label: u16,
    /// Its name.
    pub name: String,
}

/// The bundle's `metadata.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// Version of this bundle (raised when it is regenerated or retrained).
    pub version: String,
    /// The autoseg version that made it.
    pub autoseg_version: String,
    /// The algorithm template.
    pub template: String,
    /// The cross-validation fold it trains on.
    pub fold: usize,
    /// The task's name.
    pub task: String,
    /// What the model does, in a sentence.
    pub description: String,
    /// Input channels, in order.
    pub inputs: Vec<InputChannel>,
    /// Output classes, background first.
    pub outputs: Vec<OutputClass>,
    /// Voxel size (mm) the network sees.
    pub spacing_mm: Option<[f64; 3]>,
    /// How intensities are normalised, in words.
    pub intensity_normalization: String,
    /// Where the training data came from.
    pub data_source: String,
    /// The data's licence, as the datalist states it ("unknown" otherwise).
    pub data_license: String,
    /// The weights' format.
    pub weights_format: String,
}

impl Metadata {
    /// Writes `metadata.json` into the bundle, atomically.
    pub fn write(&self, bundle: &Path) -> Result<(), BundleError> {
        let path = autoseg_datasets::Bundle::new(bundle).metadata();
        let text = serde_json::to_string_pretty(self).expect("metadata serialises");
        autoseg_datasets::fsutil::write_bytes_atomic(&path, text.as_bytes())
            .map_err(|e| BundleError::io(&path, e))
    }

    /// Reads a bundle's `metadata.json`.
    pub fn read(bundle: &Path) -> Result<Metadata, BundleError> {
        let path = autoseg_datasets::Bundle::new(bundle).metadata();
        let text =
            autoseg_datasets::textfile::read_text(&path).map_err(|e| BundleError::io(&path, e))?;
        autoseg_datasets::textfile::from_json(&text)
            .map_err(|e| BundleError::invalid(&path, e.to_string()))
    }
}
