//! The training data pipeline: preprocessing cached on disk ([`prepared`]), patch sampling
//! ([`sampler`]) with augmentation ([`crate::transforms::augment`]), and batches made ahead
//! of the model ([`loader`]).

pub mod loader;
pub mod prepared;
pub mod sampler;

use std::path::PathBuf;

use crate::DatasetError;

/// Why a case could not be prepared or read; each names the file or case.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Reading the case's NIfTI files failed (boxed: the dataset error is large).
    #[error(transparent)]
    Dataset(Box<DatasetError>),
    /// The label map is not on the image's grid.
    #[error("{path}: label does not fit the image: {reason}")]
    Geometry {
        /// The label file.
        path: PathBuf,
        /// The mismatch.
        reason: String,
    },
    /// A label id the plan does not list.
    #[error("{path}: label id {id} is not among the dataset's classes")]
    UnknownLabel {
        /// The label file.
        path: PathBuf,
        /// The id.
        id: u16,
    },
    /// The image cannot be preprocessed (non-finite voxels, an impossible spacing).
    #[error("{}: {source}", path.display())]
    Prepare {
        /// The (first) image file.
        path: PathBuf,
        /// Why.
        source: crate::transforms::preprocess::PrepareError,
    },
    /// A training case without a label.
    #[error("{0}: no label")]
    Unlabelled(String),
    /// A preprocessed file that cannot be written or read.
    #[error("preprocessed case {path}: {reason}")]
    Cache {
        /// The cache file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

impl From<DatasetError> for DataError {
    fn from(error: DatasetError) -> Self {
        DataError::Dataset(Box::new(error))
    }
}
