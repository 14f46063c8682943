//! Writing predictions: each input's label map (and, when asked, its class probability map)
//! into a folder, in the input's own geometry, by a bundle or an ensemble. A case that fails
//! is reported to the caller and the rest go on.

use std::path::{Path, PathBuf};

use autoseg_datasets::datalist::file_name_id;
use autoseg_datasets::{Dataset, DatasetError, Volume};
use autoseg_templates::bundle::BundleError;
use autoseg_templates::bundle::runtime::Segmenter;
use autoseg_templates::device::panic_message;

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
    /// Predicting the case hit a bug (a panic), caught so that the other cases go on.
    #[error("internal error: {0}")]
    Panicked(String),
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
                    id: file_name_id(id),
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
    Ok(testing_inputs(&dataset))
}

/// A dataset's `testing` cases as inputs, their files as the dataset resolved them (under
/// its data root, which a task config may set apart from the datalist's folder).
pub fn testing_inputs(dataset: &Dataset) -> Vec<Input> {
    (dataset.testing.iter())
        .map(|c| Input {
            id: c.id.clone(),
            files: c.images.clone(),
        })
        .collect()
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
        // A bug that panics on one case must not lose the others' predictions.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            predict_one(segmenter, input, out, probabilities)
        }))
        .unwrap_or_else(|panic| Err(PredictError::Panicked(panic_message(panic.as_ref()))));
        match outcome {
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
    let named = |suffix: &str| -> Result<PathBuf, PredictError> {
        let name = format!("{}{suffix}.nii.gz", input.id);
        let plain = Path::new(&name).components().count() == 1 && !name.starts_with('.');
        if !plain {
            return Err(PredictError::Inputs {
                path: input.files[0].clone(),
                reason: format!("case id {:?} is not a plain file name", input.id),
            });
        }
        Ok(out.join(name))
    };
    let image = Volume::read_channels(&input.files)?;
    let prediction = segmenter.predict(image, &input.files[0], probabilities)?;
    prediction.labels.write(&named("")?)?;
    if let Some(maps) = prediction.probabilities {
        maps.write(&named(PROBABILITIES_SUFFIX)?)?;
    }
    Ok(())
}
