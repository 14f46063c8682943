//! Algorithm templates: the rules that turn dataset statistics and resources into a
//! bundle's configuration, one template per algorithm, each recording why it chose every
//! value ([`derivation`]).
//!
//! A template is a type implementing [`Template`]; [`registry`] lists them. Adding an
//! algorithm is one new file and one line there; no other template changes.

mod cpu_memory;
pub mod derivation;
mod dynunet;
pub mod memory;
pub mod overrides;
mod recipe;
pub use recipe::SHORT_BUDGET_SECONDS;
mod regions;
pub mod search_space;
mod segresnet;
mod segresnet2d;
pub mod stats;
pub mod topology;

use std::path::PathBuf;

use autoseg_datasets::regions::RegionPlan;
use serde_json::{Map, Value};

pub use cpu_memory::fit_cpu_memory;
pub use derivation::Derivation;
pub use dynunet::DynUnetTemplate;
pub use regions::apply as apply_regions;
pub use segresnet::SegResNetTemplate;
pub use segresnet2d::SegResNet2dTemplate;
pub use stats::DataStats;

/// Why a template could not fill a bundle.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The statistics file is missing, malformed or lacks a figure a rule needs.
    #[error("{path}: {reason}")]
    Stats {
        /// The statistics file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The task's regions do not fit the data.
    #[error("regions: {0}")]
    Regions(String),
    /// An override cannot be applied.
    #[error("override `{key}`: {reason}")]
    Override {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

/// What the task says about the data, beyond the statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskInfo {
    /// The task's name.
    pub name: String,
    /// Modality as the task config gives it ("CT", "MRI"...).
    pub modality: String,
    /// Input channel names (e.g. from the datalist's `modality` mapping), one per channel.
    pub channel_names: Vec<String>,
    /// Names of label ids, where known.
    pub label_names: Vec<(u16, String)>,
    /// The label id of unannotated voxels, if the task has one (not a class).
    pub ignore_label: Option<u16>,
    /// Regions to train instead of classes, if the task declares them.
    pub regions: Option<RegionPlan>,
    /// The datalist, relative to a bundle folder.
    pub datalist: PathBuf,
    /// The data root, relative to a bundle folder.
    pub dataroot: PathBuf,
    /// Cross-validation folds.
    pub num_folds: usize,
    /// The work dir's split file, relative to a bundle folder (folds are planned when
    /// absent).
    pub folds: Option<PathBuf>,
    /// Where the data came from (the datalist's `reference` or `description`).
    pub data_source: String,
    /// The data's licence as the datalist states it.
    pub data_license: String,
}

impl TaskInfo {
    /// Whether the images are CT (Hounsfield units), which changes normalisation.
    pub fn is_ct(&self) -> bool {
        self.modality.trim().to_ascii_lowercase().starts_with("ct")
    }
}

/// The resources a bundle will train with.
#[derive(Debug, Clone, PartialEq)]
pub struct Resources {
    /// Memory of the GPU that trains, in GB; `None` plans for nnU-Net's 8 GB reference.
    pub gpu_memory_gb: Option<f64>,
    /// CPU cores.
    pub cores: usize,
    /// Seconds of training per bundle, if limited.
    pub time_budget_seconds: Option<f64>,
    /// The bundles train on CPU cores alone (flex or libtorch CPU, no GPU): a short budget
    /// then makes several times fewer steps than on a GPU, which templates weigh.
    pub cpu_only: bool,
    /// The machine's memory, in GB: on CPU cores alone it holds a step's activations, so it
    /// bounds batch and patch as a GPU's memory does ([`fit_cpu_memory`]); `None` where
    /// unknown.
    pub host_memory_gb: Option<f64>,
}

impl Resources {
    /// The feature-map values a training step may hold where the bundles train on CPU
    /// cores of a machine of known memory ([`memory::cpu_step_values`]).
    pub fn cpu_step_values(&self) -> Option<f64> {
        (self.host_memory_gb)
            .filter(|_| self.cpu_only)
            .map(memory::cpu_step_values)
    }
}

/// What a template reads.
#[derive(Debug, Clone, Copy)]
pub struct TemplateInput<'a> {
    /// Dataset statistics.
    pub stats: &'a DataStats,
    /// The task.
    pub task: &'a TaskInfo,
    /// Resources.
    pub resources: &'a Resources,
}

/// A filled configuration (the same for every fold but `data.fold`) and its reasons.
#[derive(Debug, Clone)]
pub struct Filled {
    /// The configuration mapping (`configs/*.yaml` merged).
    pub config: Map<String, Value>,
    /// Why each value is what it is.
    pub derivation: Derivation,
    /// How intensities are normalised, in words (for the model card).
    pub intensity: String,
}

/// An algorithm's rules.
pub trait Template: Sync {
    /// The algorithm's name, which names its bundles (`<name>_<fold>`).
    fn name(&self) -> &'static str;

    /// What the algorithm is, in a sentence (for the model card).
    fn summary(&self) -> &'static str;

    /// Why the algorithm does not suit this dataset, when it does not (its bundles are
    /// then not written and the reason is reported).
    fn skip_reason(&self, _input: &TemplateInput) -> Result<Option<String>, TemplateError> {
        Ok(None)
    }

    /// Fills the configuration from the statistics and resources.
    fn fill(&self, input: &TemplateInput) -> Result<Filled, TemplateError>;
}

/// Every template, in the order bundles are generated.
pub fn registry() -> Vec<Box<dyn Template>> {
    vec![
        Box::new(DynUnetTemplate),
        Box::new(SegResNetTemplate),
        Box::new(SegResNet2dTemplate),
    ]
}

/// The template called `name`.
pub fn find(name: &str) -> Option<Box<dyn Template>> {
    registry().into_iter().find(|t| t.name() == name)
}
