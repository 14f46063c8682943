//! A bundle's configuration is one YAML mapping split over several files in `configs/`,
//! each holding a few top-level keys, as MONAI bundles split theirs. Readers merge every
//! `*.yaml` there (a key in two files is an error); writers split a mapping back by key.
//! A user can move a key to another file, or add a file, and the bundle reads the same.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use autoseg_datasets::Bundle;
use autoseg_datasets::workdir::MAIN_CONFIG;

use super::BundleError;

/// One configuration file: its name, the top-level keys it holds, and what it says on top.
pub struct ConfigFile {
    /// File name in `configs/`.
    pub name: &'static str,
    /// Top-level keys written to it.
    pub keys: &'static [&'static str],
    /// A comment written at its top.
    pub about: &'static str,
}

/// The files a bundle is written as; keys listed in none go to `hyper_parameters.yaml`.
pub const CONFIG_FILES: &[ConfigFile] = &[
    ConfigFile {
        name: MAIN_CONFIG,
        keys: &[],
        about: "Training: data and fold, loss, optimiser, schedule, epochs, batch and patch size.",
    },
    ConfigFile {
        name: "network.yaml",
        keys: &["network"],
        about: "The network: architecture, widths, kernels and strides.",
    },
    ConfigFile {
        name: "transforms_train.yaml",
        keys: &["preprocessing", "sampling", "augment"],
        about: "Preprocessing (shared by training, validation and inference), patch sampling \
                and augmentation.",
    },
    ConfigFile {
        name: "transforms_validate.yaml",
        keys: &["validation"],
        about: "Validation during training: how often, and its sliding window.",
    },
    ConfigFile {
        name: "transforms_infer.yaml",
        keys: &["inference"],
        about: "Inference (autoseg predict): the sliding window over a whole image.",
    },
];

/// A bundle's merged configuration and the file each top-level key came from.
#[derive(Debug, Clone)]
pub struct MergedConfig {
    /// The merged mapping.
    pub values: Map<String, Value>,
    /// For each top-level key, its file.
    pub origin: BTreeMap<String, PathBuf>,
}

impl MergedConfig {
    /// The file holding a key path's top-level key (`loss.smooth_nr` is in the file of
    /// `loss`), or the configs folder when no file holds it.
    pub fn file_of(&self, bundle: &Path, key_path: &str) -> PathBuf {
        let top = key_path.split(['.', '[']).next().unwrap_or(key_path);
        self.origin
            .get(top)
            .cloned()
            .unwrap_or_else(|| Bundle::new(bundle).configs_dir())
    }

    /// One top-level section, read strictly into its type: how every reader outside the
    /// trainer takes the part of a bundle's configuration it acts on. An error names the
    /// file holding the section.
    pub fn section<T: DeserializeOwned + serde::Serialize>(
        &self,
        bundle: &Path,
        key: &str,
    ) -> Result<T, BundleError> {
        let file = self.file_of(bundle, key);
        let value = self
            .values
            .get(key)
            .cloned()
            .ok_or_else(|| BundleError::invalid(&file, format!("`{key}` is missing")))?;
        crate::strict::from_value(value)
            .map_err(|reason| BundleError::invalid(&file, format!("{key}: {reason}")))
    }
}

/// Reads and merges `configs/*.yaml` (in name order, `hyper_parameters.yaml` first).
pub fn read_config(bundle: &Path) -> Result<MergedConfig, BundleError> {
    let dir = Bundle::new(bundle).configs_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| BundleError::io(&dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort_by_key(|p| (p.file_name() != Some(MAIN_CONFIG.as_ref()), p.clone()));
    if files.is_empty() {
        return Err(BundleError::invalid(
            &dir,
            "no configuration (*.yaml) files",
        ));
    }
    let mut merged = MergedConfig {
        values: Map::new(),
        origin: BTreeMap::new(),
    };
    for file in files {
        let text =
            autoseg_datasets::textfile::read_text(&file).map_err(|e| BundleError::io(&file, e))?;
        let value: Value = autoseg_datasets::textfile::from_yaml(&text)
            .map_err(|e| BundleError::invalid(&file, format!("malformed YAML: {e}")))?;
        let map = match value {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            _ => {
                return Err(BundleError::invalid(
                    &file,
                    "the top level must be a mapping",
                ));
            }
        };
        for (key, value) in map {
            if let Some(first) = merged.origin.get(&key) {
                return Err(BundleError::invalid(
                    &file,
                    format!("`{key}` is also set in {}", first.display()),
                ));
            }
            merged.origin.insert(key.clone(), file.clone());
            merged.values.insert(key, value);
        }
    }
    Ok(merged)
}

/// Writes a configuration mapping into `configs/`, split by [`CONFIG_FILES`], each file
/// atomically. A key already held by another file there stays in that file.
pub fn write_config(bundle: &Path, values: &Map<String, Value>) -> Result<(), BundleError> {
    let dir = Bundle::new(bundle).configs_dir();
    let existing = read_config(bundle).map(|m| m.origin).unwrap_or_default();
    let mut split: BTreeMap<PathBuf, Map<String, Value>> = BTreeMap::new();
    for (key, value) in values {
        let file = existing.get(key).cloned().unwrap_or_else(|| {
            let spec = CONFIG_FILES
                .iter()
                .find(|f| f.keys.contains(&key.as_str()))
                .unwrap_or(&CONFIG_FILES[0]);
            dir.join(spec.name)
        });
        split
            .entry(file)
            .or_default()
            .insert(key.clone(), value.clone());
    }
    for (file, map) in split {
        let about = CONFIG_FILES
            .iter()
            .find(|f| file.file_name() == Some(f.name.as_ref()))
            .map_or(String::new(), |f| format!("# {}\n", f.about));
        let body = serde_yaml::to_string(&map).expect("JSON values serialise as YAML");
        let text = format!("{about}{body}");
        autoseg_datasets::fsutil::write_bytes_atomic(&file, text.as_bytes())
            .map_err(|e| BundleError::io(&file, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mapping(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_config_splits_into_its_files_and_merges_back() {
        let dir = tempfile::tempdir().unwrap();
        let values = mapping(json!({
            "num_epochs": 3, "network": {"name": "dynunet"}, "augment": {"p_mirror": 0.5},
            "inference": {"overlap": 0.5}
        }));
        write_config(dir.path(), &values).unwrap();
        let configs = Bundle::new(dir.path()).configs_dir();
        let network = std::fs::read_to_string(configs.join("network.yaml")).unwrap();
        assert!(network.starts_with("# The network"), "{network}");
        assert!(network.contains("name: dynunet"));
        let merged = read_config(dir.path()).unwrap();
        assert_eq!(merged.values, values);
        assert_eq!(
            merged.file_of(dir.path(), "augment.p_mirror"),
            configs.join("transforms_train.yaml")
        );
    }

    #[test]
    fn a_key_in_two_files_or_bad_yaml_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let configs = Bundle::new(dir.path()).configs_dir();
        std::fs::create_dir_all(&configs).unwrap();
        std::fs::write(configs.join(MAIN_CONFIG), "num_epochs: 3\n").unwrap();
        std::fs::write(configs.join("extra.yaml"), "num_epochs: 4\n").unwrap();
        let err = read_config(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("extra.yaml") && err.contains("num_epochs"),
            "{err}"
        );
        std::fs::write(configs.join("extra.yaml"), "a: [1\n").unwrap();
        let err = read_config(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("extra.yaml") && err.contains("malformed YAML"),
            "{err}"
        );
    }

    #[test]
    fn rewriting_keeps_a_key_where_the_user_moved_it() {
        let dir = tempfile::tempdir().unwrap();
        let configs = Bundle::new(dir.path()).configs_dir();
        std::fs::create_dir_all(&configs).unwrap();
        std::fs::write(configs.join("mine.yaml"), "num_epochs: 3\n").unwrap();
        write_config(dir.path(), &mapping(json!({"num_epochs": 5, "seed": 1}))).unwrap();
        let mine = std::fs::read_to_string(configs.join("mine.yaml")).unwrap();
        assert_eq!(mine, "num_epochs: 5\n");
        let merged = read_config(dir.path()).unwrap();
        assert_eq!(merged.values["seed"], json!(1));
    }
}
