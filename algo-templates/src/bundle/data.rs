//! A bundle's `data` section: where its cases are and how they are split. Training,
//! cross-validation and the report all open a bundle's data through [`DataConfig::open`],
//! so they validate on the same cases.

use std::path::{Path, PathBuf};

use autoseg_datasets::folds::{FoldOptions, Folds};
use autoseg_datasets::workdir::default_cache_from_bundle;
use autoseg_datasets::{Dataset, DatasetError};
use serde::{Deserialize, Serialize};

/// Where the training data is and how it is split and preprocessed; paths are relative to
/// the bundle, so a bundle copied elsewhere (with its data beside it) still runs.
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
    /// Folds, when no split file is given and the datalist does not set them.
    #[serde(default = "five")]
    pub num_folds: usize,
    /// The work dir's split file (`folds.yaml`), planned once by `autoseg generate`; when
    /// absent, the folds are planned from the datalist with `num_folds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folds: Option<PathBuf>,
    /// Where preprocessed cases are cached (shared by the bundles of a work dir).
    #[serde(default = "default_cache_from_bundle")]
    pub cache_dir: PathBuf,
}

fn five() -> usize {
    5
}

impl DataConfig {
    /// The same data seen from a bundle `prefix` deeper (`..` for a bundle one folder
    /// down): every relative path is prefixed.
    pub fn rebased(mut self, prefix: &Path) -> DataConfig {
        let rebase = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = prefix.join(&*p);
            }
        };
        rebase(&mut self.datalist);
        rebase(&mut self.cache_dir);
        self.dataroot.iter_mut().for_each(rebase);
        self.folds.iter_mut().for_each(rebase);
        self
    }

    /// The dataset of the bundle in `bundle` and its split.
    pub fn open(&self, bundle: &Path) -> Result<(Dataset, Folds), DatasetError> {
        let dataset = Dataset::open(
            &bundle.join(&self.datalist),
            self.dataroot.as_ref().map(|r| bundle.join(r)).as_deref(),
            false,
        )?;
        let folds = match &self.folds {
            Some(file) => Folds::read(&bundle.join(file), &dataset)?,
            // The split has a seed of its own (FoldOptions' default), not the run's: bundles
            // trained with other seeds must validate on the same cases to be compared.
            None => Folds::plan(
                &dataset,
                &FoldOptions {
                    num_folds: self.num_folds,
                    ..FoldOptions::default()
                },
            )?,
        };
        Ok((dataset, folds))
    }
}
