//! The dataset statistics templates read: `datastats.yaml` as the analyzer writes it,
//! looked up by key path (`stats_summary.image_stats.spacing.median`), so every derived
//! value can name the statistic it came from, and a missing key is an error naming it.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::TemplateError;

/// A `datastats.yaml`, read.
#[derive(Debug, Clone)]
pub struct DataStats {
    /// The file.
    pub path: PathBuf,
    root: Value,
}

/// Where nnU-Net's fingerprint figures are in the file.
pub const FINGERPRINT: &str = "stats_summary.nnunet_fingerprint";

impl DataStats {
    /// Reads a `datastats.yaml`.
    pub fn read(path: &Path) -> Result<DataStats, TemplateError> {
        let text =
            autoseg_datasets::textfile::read_text(path).map_err(|e| TemplateError::Stats {
                path: path.to_path_buf(),
                reason: format!("{e} (run `autoseg analyze` first)"),
            })?;
        let root =
            autoseg_datasets::textfile::from_yaml(&text).map_err(|e| TemplateError::Stats {
                path: path.to_path_buf(),
                reason: format!("malformed YAML: {e}"),
            })?;
        Ok(DataStats::from_value(path, root))
    }

    /// Statistics already parsed (tests, or a caller holding them in memory).
    pub fn from_value(path: &Path, root: Value) -> DataStats {
        DataStats {
            path: path.to_path_buf(),
            root,
        }
    }

    fn missing(&self, key: &str, what: &str) -> TemplateError {
        TemplateError::Stats {
            path: self.path.clone(),
            reason: format!("`{key}` {what}"),
        }
    }

    /// The value at a dotted key path; `[i]` indexes a list.
    pub fn get(&self, key: &str) -> Result<&Value, TemplateError> {
        let mut at = &self.root;
        for part in key.split('.') {
            let (name, index) = match part.split_once('[') {
                Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
                None => (part, None),
            };
            at = at
                .get(name)
                .ok_or_else(|| self.missing(key, "is missing"))?;
            if let Some(i) = index {
                at = at.get(i).ok_or_else(|| self.missing(key, "is missing"))?;
            }
        }
        Ok(at)
    }

    /// A number.
    pub fn number(&self, key: &str) -> Result<f64, TemplateError> {
        self.get(key)?
            .as_f64()
            .ok_or_else(|| self.missing(key, "is not a number"))
    }

    /// Three numbers (x, y, z).
    pub fn triple(&self, key: &str) -> Result<[f64; 3], TemplateError> {
        let list = self.get(key)?;
        let numbers: Option<Vec<f64>> = list
            .as_array()
            .map(|l| l.iter().map(Value::as_f64).collect::<Option<Vec<_>>>())
            .unwrap_or_default();
        match numbers.as_deref() {
            Some([x, y, z]) => Ok([*x, *y, *z]),
            _ => Err(self.missing(key, "is not a list of three numbers")),
        }
    }

    /// The label ids found in the dataset, background included.
    pub fn labels(&self) -> Result<Vec<u16>, TemplateError> {
        let key = "stats_summary.label_stats.labels";
        let ids: Option<Vec<u16>> = self.get(key)?.as_array().and_then(|l| {
            l.iter()
                .map(|v| v.as_u64().and_then(|v| u16::try_from(v).ok()))
                .collect()
        });
        ids.filter(|ids| !ids.is_empty())
            .ok_or_else(|| self.missing(key, "is not a list of label ids"))
    }
}
