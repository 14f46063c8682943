//! Trained bundles in the formats users deploy: an ONNX graph with its weights inside and a
//! JSON of what inference around it needs ([`onnx`]); a MONAI bundle that `monai.bundle`
//! runs with MONAI's own network and transforms ([`monai`]).

mod onnx_graph;
mod onnx_networks;
mod onnx_proto;

pub mod monai;
pub mod onnx;

use std::path::{Path, PathBuf};

use autoseg_datasets::fsutil::write_bytes_atomic;

use crate::bundle::BundleError;

/// Why a bundle could not be exported; each names what it could not export or write.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The bundle cannot be read, or has no trained weights.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The network, or one of its layers, has no counterpart in the format.
    #[error("cannot export: {0}")]
    Unsupported(String),
    /// The output could not be written.
    #[error("cannot write {path}: {reason}")]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// Export writes softmax classes and their argmax: a bundle of sigmoid regions, written by
/// `regions_class_order`, has no counterpart in either format's post-processing yet.
fn refuse_regions(settings: &crate::bundle::runtime::InferenceSettings) -> Result<(), ExportError> {
    match &settings.regions {
        None => Ok(()),
        Some(plan) => Err(ExportError::Unsupported(format!(
            "the bundle trains regions ({}): export covers class bundles only; predict \
             region bundles with `autoseg predict`",
            plan.names().join(", ")
        ))),
    }
}

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The files, the weights' first.
    pub files: Vec<PathBuf>,
    /// Bytes of weights written.
    pub weight_bytes: usize,
}

/// Writes `bytes` atomically to `out_dir/name`, creating folders; returns the path.
fn write_file(out_dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, ExportError> {
    let path = out_dir.join(name);
    let parent = path.parent().unwrap_or(out_dir);
    std::fs::create_dir_all(parent)
        .and_then(|()| write_bytes_atomic(&path, bytes))
        .map_err(|e| ExportError::Write {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    Ok(path)
}
