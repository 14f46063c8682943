//! Why an ensemble could not be made or used: shared by selection on cross-validation
//! ([`crate::crossval`]) and the ensemble itself ([`crate::ensemble`]).

use std::path::PathBuf;

use autoseg_templates::bundle::BundleError;

/// Why an ensemble could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum EnsembleError {
    /// Ranking failed.
    #[error(transparent)]
    Rank(#[from] crate::rank::RankError),
    /// A member could not be loaded or run.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The datalist of a member could not be read or split.
    #[error(transparent)]
    Dataset(Box<autoseg_datasets::DatasetError>),
    /// The ensemble file is missing or wrong.
    #[error("{path}: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl From<autoseg_datasets::DatasetError> for EnsembleError {
    fn from(error: autoseg_datasets::DatasetError) -> Self {
        EnsembleError::Dataset(Box::new(error))
    }
}
