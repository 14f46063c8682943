//! Writing predictions: each input's label map (and, when asked, its class probability map)
//! into a folder, in the input's own geometry, by a bundle or an ensemble. A case that fails
//! is reported to the caller and the rest go on.

use std::path::{Path, PathBuf};

use autoseg_datasets::{Dataset, DatasetError, Volume};
use autoseg_templates::bundle::BundleError;
use autoseg_templates::bundle::runtime::Segmenter;

/// What a case's probability map adds to its id: `<case>_probabilities.nii.gz`.
pub const PROBABILITIES_SUFFIX: &str = "_probabilities";

/// One image to predict: its name and channel files.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// The output's name.
    pub id: String,
    /// Its channel files.
    pub files: Vec<PathBuf>,
}

/// Why the inputs could not be listed, or a case not predicted.
#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    /// A file could not be read or written (boxed: the dataset error is large).
    #[error(transparent)]
    Data(Box<DatasetError>),
    /// The bundle or ensemble could not predict it.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The inputs: a folder without images, or a datalist without testing cases.
    #[error("{path}: {reason}")]
    Inputs {
        /// The folder or datalist.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl From<DatasetError> for PredictError {
    fn from(error: DatasetError) -> Self {
        PredictError::Data(Box::new(error))
    }
}

/// The images: every NIfTI file of a folder (one channel each, sorted by name), or a
/// datalist's `testing` cases.
pub fn inputs(images: &Path) -> Result<Vec<Input>, PredictError> {
    let fail = |reason: String| PredictError::Inputs {
        path: images.to_path_buf(),
        reason,
    };
    if images.is_dir() {
        let mut found: Vec<Input> = std::fs::read_dir(images)
            .map_err(|e| fail(e.to_string()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter_map(|p| {
                let name = p.file_name()?.to_str()?;
                let id = name.strip_suffix(".nii.gz").or(name.strip_suffix(".nii"))?;
                Some(Input {
                    id: id.to_string(),
                    files: vec![p.clone()],
                })
            })
            .collect();
        found.sort_by(|a, b| a.id.cmp(&b.id));
        if found.is_empty() {
            return Err(fail("holds no .nii or .nii.gz file".into()));
        }
        return Ok(found);
    }
    let dataset = Dataset::open(images, None, false)?;
    if dataset.testing.is_empty() {
        return Err(fail("lists no `testing` cases to predict".into()));
    }
    Ok(dataset
        .testing
        .iter()
        .map(|c| Input {
            id: c.id.clone(),
            files: c.images.clone(),
        })
        .collect())
}

/// Predicts every input into `out` (with probability maps when `probabilities`); each case's
/// outcome goes to `on_case` as it ends. Returns the ids of the cases that failed, having
/// gone on past them.
pub fn predict_all(
    segmenter: &dyn Segmenter,
    inputs: &[Input],
    out: &Path,
    probabilities: bool,
    on_case: &dyn Fn(&Input, Result<(), &PredictError>),
) -> Vec<String> {
    let mut failed = Vec::new();
    for input in inputs {
        match predict_one(segmenter, input, out, probabilities) {
            Ok(()) => on_case(input, Ok(())),
            Err(e) => {
                on_case(input, Err(&e));
                failed.push(input.id.clone());
            }
        }
    }
    failed
}

/// One input's label map (and probability map) into `out`.
pub fn predict_one(
    segmenter: &dyn Segmenter,
    input: &Input,
    out: &Path,
    probabilities: bool,
) -> Result<(), PredictError> {
    let image = Volume::read_channels(&input.files)?;
    let prediction = segmenter.predict(&image, &input.files[0], probabilities)?;
    prediction
        .labels
        .write(&out.join(format!("{}.nii.gz", input.id)))?;
    if let Some(maps) = prediction.probabilities {
        maps.write(&out.join(format!("{}{PROBABILITIES_SUFFIX}.nii.gz", input.id)))?;
    }
    Ok(())
}
