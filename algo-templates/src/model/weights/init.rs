//! Starting a network from another model's weights (fine-tuning, as nnU-Net's
//! `-pretrained_weights`): every parameter loads by its PyTorch name and shape, except the
//! output heads, which start afresh where the file's have another shape (another class
//! count) or are absent; a report says which. Any other parameter missing or of another
//! shape refuses the file, as nnU-Net does. The file is our safetensors or a PyTorch/MONAI `state_dict` (`.pt`,
//! `.pth`, `.ckpt`, `.bin`: a zip of pickles, read by burn's own PyTorch reader, never by
//! running Python), its tensors at the top or under one of [`STATE_DICT_KEYS`].

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{ApplyError, ModuleSnapshot, ModuleStore, PytorchStore, SafetensorsStore};
use serde::{Deserialize, Serialize};

use super::{ALIAS_PREFIXES, PytorchWeights, WeightsError, from_pytorch_names};

/// Keys a training checkpoint keeps its state dict under (PyTorch Lightning and MONAI's
/// `CheckpointSaver`, plain `torch.save({"model": ...})`, nnU-Net).
pub const STATE_DICT_KEYS: &[&str] = &["state_dict", "model", "network_weights"];

/// What starting from a weights file loaded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InitReport {
    /// The file.
    pub source: PathBuf,
    /// Parameters loaded from it (PyTorch names).
    pub loaded: Vec<String>,
    /// Output-head parameters left as initialised: absent from the file, or there with
    /// another shape.
    pub fresh: Vec<String>,
    /// Tensors of the file the network has no parameter for.
    pub unused: Vec<String>,
}

impl InitReport {
    /// The report in a line.
    pub fn summary(&self) -> String {
        let mut text = format!(
            "started from {}: {} parameters loaded",
            self.source.display(),
            self.loaded.len()
        );
        if !self.fresh.is_empty() {
            text += &format!(
                ", {} initialised afresh ({})",
                self.fresh.len(),
                self.fresh.join(", ")
            );
        }
        if !self.unused.is_empty() {
            text += &format!(", {} tensors of the file unused", self.unused.len());
        }
        text
    }
}

/// Loads into `module` the parameters of `path` that fit it by name and shape; an error when
/// one outside the output heads does not (the file is of another network, or not weights).
pub fn load_matching<M: PytorchWeights>(
    mut module: M,
    path: &Path,
) -> Result<(M, InitReport), WeightsError> {
    let tensors = read_tensors(path)?;
    let layout = module.layout();
    let result = module.apply(
        tensors,
        None,
        Some(Box::new(from_pytorch_names(layout))),
        true,
    );
    let mut fresh: Vec<String> = result.missing.iter().map(|(p, _)| p.clone()).collect();
    let mut unused = result.unused.clone();
    for error in &result.errors {
        match error {
            ApplyError::ShapeMismatch { path, .. } => {
                fresh.push(path.clone());
                unused.push(path.clone());
            }
            other => {
                return Err(WeightsError::Read {
                    path: path.to_path_buf(),
                    reason: other.to_string(),
                });
            }
        }
    }
    unused.retain(|name| !ALIAS_PREFIXES.iter().any(|p| name.starts_with(p)));
    if result.applied.is_empty() {
        return Err(WeightsError::Mismatch {
            path: path.to_path_buf(),
            reason: format!(
                "no tensor matches a parameter of the network by name and shape (the file \
                 holds {}{})",
                unused.len(),
                unused
                    .first()
                    .map_or(String::new(), |n| format!(", such as {n}"))
            ),
        });
    }
    fresh.sort();
    unused.sort();
    let body: Vec<&String> = fresh.iter().filter(|n| !module.is_output_head(n)).collect();
    if let Some(first) = body.first() {
        return Err(WeightsError::Mismatch {
            path: path.to_path_buf(),
            reason: format!(
                "{} parameters outside the output heads are absent or of another shape \
                 ({first}, ...): the weights of another network",
                body.len()
            ),
        });
    }
    let report = InitReport {
        source: path.to_path_buf(),
        loaded: result.applied,
        fresh,
        unused,
    };
    Ok((module, report))
}

/// What to do about zip 9.9's misreading of some ZIP64 archives (torch.save writes ZIP64):
/// it takes the central directory to start 76 bytes late, where a first entry named with a
/// 21-character root folder (the file name torch.save was given) ends.
const ZIP_READER_BUG: &str = "if torch.save wrote it, the zip reader may have misread it: \
    save it again under a file name of another length";

/// Every tensor of a safetensors or PyTorch file. A reader that panics on a malformed file
/// becomes an error naming it.
fn read_tensors(path: &Path) -> Result<Vec<PackTensor>, WeightsError> {
    let read_error = |reason: String| WeightsError::Read {
        path: path.to_path_buf(),
        reason,
    };
    if !path.is_file() {
        return Err(read_error("no such file".into()));
    }
    let pytorch = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("pt" | "pth" | "ckpt" | "bin")
    );
    let read = || -> Result<Vec<PackTensor>, String> {
        if pytorch {
            let store = PytorchStore::from_file(path).map_indices_contiguous(false);
            Ok(state_dict(all_tensors(&mut { store })?))
        } else {
            all_tensors(&mut SafetensorsStore::from_file(path))
        }
    };
    match catch_unwind(AssertUnwindSafe(read)) {
        Ok(Ok(tensors)) => Ok(tensors),
        Ok(Err(reason)) if pytorch && reason.contains("Invalid Central Directory header") => {
            Err(read_error(format!("{reason} ({ZIP_READER_BUG})")))
        }
        Ok(Err(reason)) => Err(read_error(reason)),
        Err(_) => Err(read_error("malformed weights file".into())),
    }
}

/// The tensors of a checkpoint's state dict: those under the first of [`STATE_DICT_KEYS`]
/// that holds any, renamed without it (nested dicts read as dotted names), else all of them.
fn state_dict(tensors: Vec<PackTensor>) -> Vec<PackTensor> {
    for key in STATE_DICT_KEYS {
        let prefix = format!("{key}.");
        let under: Vec<PackTensor> = (tensors.iter())
            .filter(|t| t.name.starts_with(&prefix))
            .cloned()
            .map(|mut t| {
                t.name.drain(..prefix.len());
                t
            })
            .collect();
        if !under.is_empty() {
            return under;
        }
    }
    tensors
}

fn all_tensors<S: ModuleStore>(store: &mut S) -> Result<Vec<PackTensor>, String> {
    let tensors = store.get_all_tensors().map_err(|e| e.to_string())?;
    Ok(tensors.values().cloned().collect())
}
