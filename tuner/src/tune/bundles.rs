//! A study's trial bundles: each made from the tuned bundle with its values set (paths
//! rebased one folder deeper), and the best one written back as the fold's bundle.

use std::collections::BTreeMap;
use std::path::Path;

use autoseg_datasets::Bundle;
use autoseg_templates::bundle::data::DataConfig;
use autoseg_templates::bundle::{read_config, write_config};
use autoseg_templates::templates::derivation::Derivation;
use autoseg_templates::templates::overrides::{self, Setting};
use serde_json::{Map, Value};

use super::{Study, config_error};
use crate::train::TrainError;

/// Writes a trial's bundle: the tuned bundle's configuration with `values` set (recorded in
/// its derivation as set by `autoseg tune`), its paths rebased one folder deeper.
pub(super) fn make_trial(
    bundle: &Path,
    trial: &Path,
    values: &BTreeMap<String, Value>,
) -> Result<(), TrainError> {
    std::fs::create_dir_all(trial).map_err(io_error(trial))?;
    let name = trial.file_name().unwrap_or_default().to_string_lossy();
    let (config, mut derivation) = configured(bundle, values, &format!("autoseg tune ({name})"))?;
    write_config(trial, &rebased(config, Path::new("..")))?;
    derivation.statistics = format!("../{}", derivation.statistics);
    derivation.write(trial)?;
    for from in Bundle::new(bundle).description_files() {
        if from.is_file() {
            copy(&from, &trial.join(from.file_name().expect("a file")))?;
        }
    }
    Ok(())
}

/// A bundle's configuration and derivation with `values` applied as overrides from `source`.
fn configured(
    bundle: &Path,
    values: &BTreeMap<String, Value>,
    source: &str,
) -> Result<(Map<String, Value>, Derivation), TrainError> {
    let mut config = read_config(bundle)?.values;
    let mut derivation = match Derivation::read(bundle) {
        Some(d) => d?,
        None => Derivation::new("hand-written"),
    };
    let settings: Vec<Setting> = values
        .iter()
        .map(|(key, value)| Setting {
            key: key.clone(),
            value: value.clone(),
            source: source.into(),
            template: None,
        })
        .collect();
    overrides::apply(&mut config, &settings, &mut derivation)
        .map_err(|e| config_error(&Bundle::new(bundle).search_space(), e))?;
    Ok((config, derivation))
}

/// The configuration of a bundle one folder deeper than the one it was made for (a
/// trial in `W/tuning/<bundle>/`): its data paths and its `init_weights` rebased.
pub(super) fn rebased(mut config: Map<String, Value>, prefix: &Path) -> Map<String, Value> {
    if let Some(data) = config.get_mut("data")
        && let Ok(parsed) = serde_json::from_value::<DataConfig>(data.clone())
    {
        *data = serde_json::to_value(parsed.rebased(prefix)).expect("data serialises");
    }
    if let Some(Value::String(file)) = config.get_mut("init_weights")
        && Path::new(file.as_str()).is_relative()
    {
        *file = prefix.join(&*file).to_string_lossy().into_owned();
    }
    config
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError {
    let path = path.to_path_buf();
    move |source| TrainError::Io { path, source }
}

fn copy(from: &Path, to: &Path) -> Result<(), TrainError> {
    std::fs::copy(from, to).map(|_| ()).map_err(io_error(to))
}

/// Copies the folder `from` to `to` (replacing it), sub-folders included.
fn copy_dir(from: &Path, to: &Path) -> Result<(), TrainError> {
    if to.exists() {
        std::fs::remove_dir_all(to).map_err(io_error(to))?;
    }
    std::fs::create_dir_all(to).map_err(io_error(to))?;
    for entry in std::fs::read_dir(from).map_err(io_error(from))? {
        let entry = entry.map_err(io_error(from))?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        if source.is_dir() {
            copy_dir(&source, &target)?;
        } else {
            copy(&source, &target)?;
        }
    }
    Ok(())
}

/// Makes the best trial the fold's bundle: its values (recorded as set by `autoseg tune`),
/// weights, checkpoint and history.
pub(super) fn write_back(bundle: &Path, trial: &Path, study: &Study) -> Result<(), TrainError> {
    let name = trial.file_name().unwrap_or_default().to_string_lossy();
    let values = &study
        .trials
        .iter()
        .find(|t| t.name == name)
        .expect("the best is a trial")
        .values;
    let (config, derivation) = configured(bundle, values, &format!("autoseg tune (best: {name})"))?;
    write_config(bundle, &config)?;
    derivation.write(bundle)?;
    // The checkpoint (model/last/) comes too, so `autoseg train` resumes a paused best.
    let (trial, bundle) = (Bundle::new(trial), Bundle::new(bundle));
    copy_dir(&trial.model_dir(), &bundle.model_dir())?;
    autoseg_templates::bundle::validation::clear(bundle.dir())?;
    for (from, to) in [
        (trial.validation_dir(), bundle.validation_dir()),
        (trial.logs(), bundle.logs()),
    ] {
        if from.is_dir() {
            copy_dir(&from, &to)?;
        }
    }
    for (from, to) in [
        (trial.metrics(), bundle.metrics()),
        (trial.progress(), bundle.progress()),
    ] {
        copy(&from, &to)?;
    }
    Ok(())
}
