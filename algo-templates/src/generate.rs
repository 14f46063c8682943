//! `autoseg generate`: every template's bundle for every fold, written into
//! `<work_dir>/bundles/<algo>_<fold>/` with its configuration, derivation, metadata and
//! model card. The training engine checks each configuration before it is written (it owns
//! the full schema), so a bundle on disk always reads back.

use std::path::{Path, PathBuf};

use autoseg_datasets::{Bundle, WorkDir};
use serde_json::{Map, Value, json};

use crate::bundle::metadata::{InputChannel, Metadata, OutputClass};
use crate::bundle::{self, BundleError};
use crate::templates::overrides::{self, Setting};
use crate::templates::{Filled, Template, TemplateError, TemplateInput, registry};

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// A template could not fill its configuration.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// A bundle file could not be written.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The configuration, overrides applied, is not one training accepts.
    #[error("{algo}_{fold}: {reason}")]
    Invalid {
        /// The template.
        algo: String,
        /// The fold.
        fold: usize,
        /// What training refused.
        reason: String,
    },
    /// An unknown template was asked for.
    #[error("no template called `{0}` (known: {1})")]
    UnknownTemplate(String, String),
}

/// What to generate.
#[derive(Debug, Clone, Default)]
pub struct GenerateOptions {
    /// Templates to use (all when empty).
    pub algos: Vec<String>,
    /// Folds to write (all when empty).
    pub folds: Vec<usize>,
    /// Task-config keys; those naming a configuration key (or an alias such as
    /// `roi_size`) override the template's value.
    pub task_keys: Vec<(String, Value)>,
    /// Overrides (`--set`), applied after the task's, in order.
    pub settings: Vec<Setting>,
    /// Rewrite bundles that have been trained already.
    pub force: bool,
    /// Write each bundle under a temporary name beside the real ones (the planner's
    /// calibration copies): never mistaken for a bundle to train, and removed by the next
    /// run when a killed one leaves it.
    pub scratch: bool,
}

/// What happened to one bundle.
#[derive(Debug, Clone, PartialEq)]
pub enum BundleOutcome {
    /// Written.
    Written,
    /// Left as it was, and why: it exists already (perhaps edited by hand, or trained);
    /// `force` rewrites it.
    Kept(&'static str),
}

/// One bundle of the report.
#[derive(Debug, Clone)]
pub struct GeneratedBundle {
    /// The template.
    pub algo: String,
    /// The fold.
    pub fold: usize,
    /// Its folder.
    pub dir: PathBuf,
    /// What was done.
    pub outcome: BundleOutcome,
}

/// What `generate` did.
#[derive(Debug, Clone, Default)]
pub struct GenerateReport {
    /// Bundles written or kept.
    pub bundles: Vec<GeneratedBundle>,
    /// Templates that do not suit the data, with the reason.
    pub skipped: Vec<(String, String)>,
}

/// Checks a configuration and returns it with every default filled in.
pub type Validator<'a> = dyn Fn(Map<String, Value>) -> Result<Map<String, Value>, String> + 'a;

/// Generates the bundles. `validate` is the training engine's check of a configuration.
pub fn generate(
    work_dir: &Path,
    input: &TemplateInput,
    options: &GenerateOptions,
    validate: &Validator,
) -> Result<GenerateReport, GenerateError> {
    let templates = selected(&options.algos)?;
    let scoped: Vec<String> = options
        .settings
        .iter()
        .filter_map(|s| s.template.clone())
        .collect();
    selected(&scoped)?;
    let folds = fold_list(input, options);
    let mut report = GenerateReport::default();
    for template in templates {
        if let Some(reason) = template.skip_reason(input)? {
            report.skipped.push((template.name().to_string(), reason));
            continue;
        }
        let mut filled = template.fill(input)?;
        crate::templates::apply_regions(&mut filled, input)?;
        crate::templates::fit_cpu_memory(&mut filled, input.resources);
        for &fold in &folds {
            let name = format!("{}_{fold}", template.name());
            let name = match options.scratch {
                true => format!(
                    "{}calibration-{name}",
                    autoseg_datasets::fsutil::TEMP_PREFIX
                ),
                false => name,
            };
            let dir = WorkDir::new(work_dir).bundle(&name).dir().to_path_buf();
            // Checked even when the bundle is kept, so a bad override is always reported.
            let (config, derivation) =
                configure(template.as_ref(), &filled, fold, options, validate)?;
            let outcome = match existing(&dir) {
                Some(why) if !options.force && !options.scratch => BundleOutcome::Kept(why),
                _ => {
                    let made = Made {
                        template: template.as_ref(),
                        input,
                        filled: &filled,
                    };
                    write_bundle(&dir, &made, config, derivation, fold)?;
                    BundleOutcome::Written
                }
            };
            report.bundles.push(GeneratedBundle {
                algo: template.name().to_string(),
                fold,
                dir,
                outcome,
            });
        }
    }
    Ok(report)
}

/// The folds asked for, or all of the task's.
fn fold_list(input: &TemplateInput, options: &GenerateOptions) -> Vec<usize> {
    if options.folds.is_empty() {
        (0..input.task.num_folds).collect()
    } else {
        options.folds.clone()
    }
}

fn selected(algos: &[String]) -> Result<Vec<Box<dyn Template>>, GenerateError> {
    let all = registry();
    if algos.is_empty() {
        return Ok(all);
    }
    let names = all.iter().map(|t| t.name()).collect::<Vec<_>>().join(", ");
    algos
        .iter()
        .map(|a| {
            crate::templates::find(a)
                .ok_or_else(|| GenerateError::UnknownTemplate(a.clone(), names.clone()))
        })
        .collect()
}

/// Why a bundle folder is left alone without `force`, if it is.
fn existing(dir: &Path) -> Option<&'static str> {
    if bundle::inference_weights(dir).is_some() {
        Some("already trained")
    } else if Bundle::new(dir).configs_dir().is_dir() {
        Some("exists, hand edits kept")
    } else {
        None
    }
}

/// A fold's configuration: the template's, the fold set, task-config and `--set`
/// overrides applied, checked by the training engine.
fn configure(
    template: &dyn Template,
    filled: &Filled,
    fold: usize,
    options: &GenerateOptions,
    validate: &Validator,
) -> Result<(Map<String, Value>, crate::templates::Derivation), GenerateError> {
    let mut config = filled.config.clone();
    config["data"]["fold"] = json!(fold);
    let mut derivation = filled.derivation.clone();
    let from_task: Vec<Setting> = options
        .task_keys
        .iter()
        .filter_map(|(k, v)| Setting::from_task_key(k, v.clone(), &config))
        .collect();
    overrides::apply(&mut config, &from_task, &mut derivation)?;
    overrides::apply(&mut config, &options.settings, &mut derivation)?;
    let config = validate(config).map_err(|reason| GenerateError::Invalid {
        algo: template.name().into(),
        fold,
        reason,
    })?;
    Ok((config, derivation))
}

/// What a bundle is made from.
struct Made<'a> {
    template: &'a dyn Template,
    input: &'a TemplateInput<'a>,
    filled: &'a Filled,
}

fn write_bundle(
    dir: &Path,
    made: &Made,
    config: Map<String, Value>,
    mut derivation: crate::templates::Derivation,
    fold: usize,
) -> Result<(), GenerateError> {
    let Made {
        template,
        input,
        filled,
    } = *made;
    // Written into a sibling folder, then renamed into place: a generate killed midway
    // leaves a temporary folder (removed by the next run), never a bundle with half its
    // configuration. Paths inside are made relative to `dir`, at the same depth.
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    let staging = dir.with_file_name(format!("{}{name}", autoseg_datasets::fsutil::TEMP_PREFIX));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BundleError::Io { path, source }
    };
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
    }
    std::fs::create_dir_all(&staging).map_err(io(&staging))?;
    bundle::write_config(&staging, &config)?;
    crate::templates::search_space::SearchSpace::around(&config).write(&staging)?;
    derivation.statistics = relative_to_bundle(dir, &input.stats.path);
    derivation.write(&staging)?;
    let metadata = metadata(template, input, filled, &config, fold);
    metadata.write(&staging)?;
    let card = crate::bundle::card::model_card(&metadata, &config, template.summary());
    let readme = Bundle::new(&staging).readme();
    autoseg_datasets::fsutil::write_bytes_atomic(&readme, card.as_bytes()).map_err(io(&readme))?;
    // What is in the way was forced out, or is what a killed generate left: no configs.
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io(dir))?;
    }
    std::fs::rename(&staging, dir).map_err(io(dir))?;
    Ok(())
}

fn metadata(
    template: &dyn Template,
    input: &TemplateInput,
    filled: &Filled,
    config: &Map<String, Value>,
    fold: usize,
) -> Metadata {
    let task = input.task;
    let in_channels = config["network"]["in_channels"].as_u64().unwrap_or(1) as usize;
    let inputs = (0..in_channels)
        .map(|c| InputChannel {
            name: task
                .channel_names
                .get(c)
                .cloned()
                .unwrap_or_else(|| format!("channel {c}")),
            modality: task.modality.clone(),
        })
        .collect();
    let labels: Vec<u16> =
        serde_json::from_value(config["preprocessing"]["labels"].clone()).unwrap_or_default();
    let outputs = labels
        .iter()
        .map(|&label| OutputClass {
            label,
            name: task
                .label_names
                .iter()
                .find(|(id, _)| *id == label)
                .map_or_else(
                    || {
                        if label == 0 {
                            "background".into()
                        } else {
                            format!("label {label}")
                        }
                    },
                    |(_, n)| n.clone(),
                ),
        })
        .collect();
    Metadata {
        version: "0.1.0".into(),
        autoseg_version: env!("CARGO_PKG_VERSION").into(),
        template: template.name().into(),
        fold,
        task: task.name.clone(),
        description: format!(
            "Segments {} from {} images; {}, trained on fold {fold} of {}.",
            structures(task),
            task.modality,
            template.summary(),
            task.num_folds
        ),
        inputs,
        outputs,
        spacing_mm: serde_json::from_value(config["preprocessing"]["target_spacing"].clone())
            .unwrap_or(None),
        intensity_normalization: filled.intensity.clone(),
        data_source: task.data_source.clone(),
        data_license: task.data_license.clone(),
        weights_format: "safetensors, PyTorch (MONAI) parameter names".into(),
    }
}

/// `path` relative to the bundle folder `dir` (created by then), or as given when either
/// cannot be resolved.
fn relative_to_bundle(dir: &Path, path: &Path) -> String {
    match (std::fs::canonicalize(dir), std::fs::canonicalize(path)) {
        (Ok(d), Ok(p)) => autoseg_datasets::fsutil::relative_path(&d, &p),
        _ => path.to_path_buf(),
    }
    .display()
    .to_string()
}

/// The foreground classes' names, for a sentence.
fn structures(task: &crate::templates::TaskInfo) -> String {
    let names: Vec<&str> = task
        .label_names
        .iter()
        .filter(|(id, _)| *id != 0)
        .map(|(_, n)| n.as_str())
        .collect();
    if names.is_empty() {
        "the labelled structures".into()
    } else {
        names.join(", ")
    }
}
