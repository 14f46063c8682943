//! The work dir's contract: every file and folder a stage writes for the next one to read.
//! [`WorkDir`] and [`Bundle`] are the one place these paths are spelt; every crate asks
//! them, so a layout change is made here or nowhere.
//!
//! ```text
//! W/input.yaml                 the task, recorded by analyze
//! W/datastats.yaml             analyze's summary (MONAI's layout)
//! W/datastats_by_case.yaml     analyze's per-case figures
//! W/.cache/analyzer/           analyze's per-case cache
//! W/folds.yaml                 the cross-validation split, planned once by generate
//! W/plan.yaml                  run's budget plan: templates, folds, seconds, and why
//! W/bundles/<algo>_<fold>/     one bundle each (see Bundle)
//! W/preprocessed/              preprocessed cases, shared by the bundles
//! W/trials.yaml                the training ledger (and its lock, trials.yaml.lock)
//! W/slurm/                     cluster job scripts and logs
//! W/tuning/<bundle>/           a bundle's hyper-parameter search
//! W/ranking.yaml               rank's table, which ensemble reads
//! W/ensemble/ensemble.yaml     the ensemble's members and clean-ups
//! W/predictions/               run's predictions of the testing cases
//! W/report.html                the report
//! W/.lock                      held by a stage rewriting the files above (see `lock`)
//! ```

use std::path::{Path, PathBuf};

/// A work dir: the root every stage's files hang from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkDir {
    root: PathBuf,
}

/// The folder of bundles, relative to the work dir (ensemble members are named by it).
const BUNDLES: &str = "bundles";

impl WorkDir {
    /// The work dir at `root` (nothing is created).
    pub fn new(root: impl Into<PathBuf>) -> WorkDir {
        WorkDir { root: root.into() }
    }

    /// Its folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The task `analyze` recorded (MONAI's `input.yaml` keys).
    pub fn task(&self) -> PathBuf {
        self.root.join("input.yaml")
    }

    /// The dataset summary (MONAI's `datastats.yaml` layout).
    pub fn datastats(&self) -> PathBuf {
        self.root.join("datastats.yaml")
    }

    /// The per-case statistics.
    pub fn datastats_by_case(&self) -> PathBuf {
        self.root.join("datastats_by_case.yaml")
    }

    /// The analyzer's per-case cache.
    pub fn analyzer_cache(&self) -> PathBuf {
        self.root.join(".cache").join("analyzer")
    }

    /// The cross-validation split every stage reads (written by generate).
    pub fn folds(&self) -> PathBuf {
        self.root.join(FOLDS)
    }

    /// The folder of bundles.
    pub fn bundles_dir(&self) -> PathBuf {
        self.root.join(BUNDLES)
    }

    /// The bundle called `name` (`<algo>_<fold>`).
    pub fn bundle(&self, name: &str) -> Bundle {
        Bundle::new(self.bundles_dir().join(name))
    }

    /// A bundle's path relative to the work dir, as the ensemble file names members.
    pub fn bundle_relative(name: &str) -> PathBuf {
        Path::new(BUNDLES).join(name)
    }

    /// The bundles (folders of `bundles/` holding `configs/`), sorted by name.
    pub fn list_bundles(&self) -> std::io::Result<Vec<Bundle>> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(self.bundles_dir())? {
            let bundle = Bundle::new(entry?.path());
            if bundle.configs_dir().is_dir() {
                found.push(bundle);
            }
        }
        found.sort_by(|a, b| a.dir.cmp(&b.dir));
        Ok(found)
    }

    /// Preprocessed cases, shared by every bundle of the work dir.
    pub fn preprocessed(&self) -> PathBuf {
        self.root.join(PREPROCESSED)
    }

    /// The training ledger.
    pub fn trials(&self) -> PathBuf {
        self.root.join("trials.yaml")
    }

    /// `autoseg run`'s budget plan: what it trains, for how long, and why.
    pub fn plan(&self) -> PathBuf {
        self.root.join("plan.yaml")
    }

    /// Cluster job scripts, trial lists and task logs.
    pub fn slurm_dir(&self) -> PathBuf {
        self.root.join("slurm")
    }

    /// The hyper-parameter search of the bundle called `bundle`.
    pub fn tuning_dir(&self, bundle: &str) -> PathBuf {
        self.root.join("tuning").join(bundle)
    }

    /// The ranking of algorithms, which `ensemble` reads.
    pub fn ranking(&self) -> PathBuf {
        self.root.join("ranking.yaml")
    }

    /// The ensemble's file.
    pub fn ensemble(&self) -> PathBuf {
        self.root.join("ensemble").join("ensemble.yaml")
    }

    /// Where `autoseg run` writes its predictions of the testing cases.
    pub fn predictions(&self) -> PathBuf {
        self.root.join("predictions")
    }

    /// Where `autoseg export --work-dir` writes the ensemble's members, a folder per format.
    pub fn exports(&self) -> PathBuf {
        self.root.join("export")
    }

    /// The report page.
    pub fn report(&self) -> PathBuf {
        self.root.join("report.html")
    }

    /// The lock a stage that rewrites the work dir's shared files holds.
    pub fn lock_file(&self) -> PathBuf {
        self.root.join(".lock")
    }
}

/// A bundle: one model's folder, everything it needs as data.
///
/// ```text
/// B/configs/*.yaml             the configuration, split by section
/// B/metadata.json, README.md   what the model is for (MONAI's bundle metadata, model card)
/// B/derivation.yaml            where each generated value came from
/// B/search_space.yaml          what tuning may change
/// B/model/best.safetensors     the best validation's weights
/// B/model/last/                the last epoch's checkpoint (weights, optimiser, state)
/// B/progress.yaml, metrics.csv the run's status and per-epoch figures
/// B/logs/                      the same figures as TensorBoard event files
/// B/validation/                each validation case's probabilities (best weights)
/// B/lr_finder.yaml, .png       the learning-rate range test's rates, losses and suggestion
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    dir: PathBuf,
}

impl Bundle {
    /// The bundle in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Bundle {
        Bundle { dir: dir.into() }
    }

    /// Its folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its folder's name (`<algo>_<fold>` in a work dir).
    pub fn name(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The configuration files' folder.
    pub fn configs_dir(&self) -> PathBuf {
        self.dir.join("configs")
    }

    /// MONAI's bundle metadata.
    pub fn metadata(&self) -> PathBuf {
        self.dir.join("metadata.json")
    }

    /// The model card.
    pub fn readme(&self) -> PathBuf {
        self.dir.join("README.md")
    }

    /// Where each generated value came from.
    pub fn derivation(&self) -> PathBuf {
        self.dir.join("derivation.yaml")
    }

    /// What tuning may change.
    pub fn search_space(&self) -> PathBuf {
        self.dir.join("search_space.yaml")
    }

    /// Trained weights and checkpoints.
    pub fn model_dir(&self) -> PathBuf {
        self.dir.join("model")
    }

    /// The best validation's weights.
    pub fn best_weights(&self) -> PathBuf {
        self.model_dir().join("best.safetensors")
    }

    /// What the run's start from other weights (`init_weights`, fine-tuning) loaded.
    pub fn init_report(&self) -> PathBuf {
        self.model_dir().join("init_weights.yaml")
    }

    /// The last epoch's checkpoint folder.
    pub fn last_checkpoint(&self) -> PathBuf {
        self.model_dir().join("last")
    }

    /// The last checkpoint's weights.
    pub fn last_weights(&self) -> PathBuf {
        self.last_checkpoint().join("model.safetensors")
    }

    /// The run's status.
    pub fn progress(&self) -> PathBuf {
        self.dir.join("progress.yaml")
    }

    /// The run's per-epoch figures.
    pub fn metrics(&self) -> PathBuf {
        self.dir.join("metrics.csv")
    }

    /// Where `autoseg export --bundle` writes, a folder per format.
    pub fn exports(&self) -> PathBuf {
        self.dir.join("export")
    }

    /// TensorBoard's folder: the run's figures as event files.
    pub fn logs(&self) -> PathBuf {
        self.dir.join("logs")
    }

    /// The lock a training session holds.
    pub fn lock_file(&self) -> PathBuf {
        self.dir.join(".lock")
    }

    /// The learning-rate range test's result (`autoseg train --find-lr`).
    pub fn lr_finder(&self) -> PathBuf {
        self.dir.join("lr_finder.yaml")
    }

    /// The learning-rate range test's picture.
    pub fn lr_finder_plot(&self) -> PathBuf {
        self.dir.join("lr_finder.png")
    }

    /// Each validation case's probabilities, kept by training for cross-validation.
    pub fn validation_dir(&self) -> PathBuf {
        self.dir.join("validation")
    }

    /// The files that describe a bundle (copied with it by tuning).
    pub fn description_files(&self) -> [PathBuf; 3] {
        [self.metadata(), self.readme(), self.search_space()]
    }
}

/// The configuration file (in `configs/`) that takes keys no other file is named for.
pub const MAIN_CONFIG: &str = "hyper_parameters.yaml";

/// The preprocessed cases' folder name, in the work dir.
const PREPROCESSED: &str = "preprocessed";

/// Where a bundle's data config points its preprocessed cache by default: the work dir's
/// [`WorkDir::preprocessed`], seen from a bundle in `W/bundles/`.
pub fn default_cache_from_bundle() -> PathBuf {
    Path::new("..").join("..").join(PREPROCESSED)
}

/// Where a bundle's data config points the work dir's split, seen from `W/bundles/<name>`.
pub fn folds_from_bundle() -> PathBuf {
    Path::new("..").join("..").join(FOLDS)
}

/// The split's file name.
const FOLDS: &str = "folds.yaml";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_relative_to_a_bundle_reach_the_work_dirs_files() {
        let w = WorkDir::new("/w");
        let b = w.bundle("dynunet_0");
        assert_eq!(
            b.dir().join(folds_from_bundle()),
            Path::new("/w/bundles/dynunet_0/../../folds.yaml")
        );
        assert_eq!(b.name(), "dynunet_0");
        assert_eq!(
            w.root().join(WorkDir::bundle_relative("dynunet_0")),
            b.dir()
        );
        let cache = b.dir().join(default_cache_from_bundle());
        assert_eq!(cache, Path::new("/w/bundles/dynunet_0/../../preprocessed"));
    }
}
