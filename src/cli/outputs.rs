//! Arguments of the commands that use trained bundles: rank, ensemble, predict, evaluate,
//! export, report.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// What predicts: one trained bundle, or a work dir's ensemble.
#[derive(Debug, Args)]
pub struct BundleOrEnsemble {
    /// One trained bundle.
    #[arg(
        long,
        short = 'b',
        required_unless_present = "work_dir",
        conflicts_with = "work_dir"
    )]
    pub bundle: Option<PathBuf>,
    /// A work dir: its ensemble (WORK_DIR/ensemble/ensemble.yaml, from `autoseg ensemble`).
    #[arg(long, short = 'w')]
    pub work_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    #[command(flatten)]
    pub model: BundleOrEnsemble,
    /// A folder of NIfTI images (one channel each), or a datalist JSON (its `testing` cases).
    #[arg(long)]
    pub images: PathBuf,
    /// Folder for the label maps (<case>.nii.gz, uint8).
    #[arg(long, short = 'o')]
    pub out: PathBuf,
    /// Also write each case's class probabilities, <case>_probabilities.nii.gz: float32, one
    /// volume per class (background first) on the input's grid, before any clean-up.
    #[arg(long)]
    pub probabilities: bool,
    /// Where to run: cpu (flex), tch (libtorch CPU) or cuda:N (libtorch GPU).
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub model: BundleOrEnsemble,
    /// What to write.
    #[arg(long, value_enum, default_value = "onnx")]
    pub format: ExportFormat,
    /// Output folder [default: BUNDLE/export/FORMAT, or WORK_DIR/export/FORMAT with a
    /// folder per member].
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    /// model.onnx (logits out, dynamic batch and spatial axes) and inference.json.
    Onnx,
    /// A MONAI bundle: configs/inference.json (MONAI's DynUNet or SegResNetDS and
    /// transforms doing what autoseg's do), configs/metadata.json, models/model.pt (a
    /// state_dict), docs/README.md; run it with `python -m monai.bundle run`.
    Monai,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SelectionArg {
    /// For each fold, the bundle of the algorithm best on that fold.
    BestByFold,
    /// The N bundles with the best validation Dice (--n).
    BestN,
    /// Algorithms added while the mean Dice of their averaged cross-validation predictions
    /// rises (every fold's bundle of each is a member), with the keep-largest-component or
    /// remove-small-components clean-up per class where it helps there.
    Greedy,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CombineArg {
    /// Mean of the members' class probabilities.
    Mean,
    /// Majority vote of the members' classes.
    Vote,
}

#[derive(Debug, Args)]
pub struct EnsembleArgs {
    /// The work dir (its trials.yaml, written by `autoseg train --work-dir`).
    #[arg(long, short = 'w', default_value = "work_dir")]
    pub work_dir: PathBuf,
    /// How members are chosen.
    #[arg(long, value_enum, default_value = "best-by-fold")]
    pub selection: SelectionArg,
    /// Members for --selection best-n.
    #[arg(long, default_value_t = 2)]
    pub n: usize,
    /// How members' outputs combine.
    #[arg(long, value_enum, default_value = "mean")]
    pub combine: CombineArg,
    /// Where greedy selection predicts the cross-validation cases: cpu, tch or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

#[derive(Debug, Args)]
pub struct RankArgs {
    /// The work dir (its trials.yaml, written by `autoseg train --work-dir`).
    #[arg(long, short = 'w', default_value = "work_dir")]
    pub work_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The work dir (any stage done: what is missing is said so on the page).
    #[arg(long, short = 'w', default_value = "work_dir")]
    pub work_dir: PathBuf,
    /// Validation cases the best bundle predicts for the overlay pictures (0: none).
    #[arg(long, default_value_t = 3)]
    pub overlays: usize,
    /// Where those predictions run: cpu, tch or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// Folder of predicted label maps (<case>.nii.gz or .nii).
    #[arg(long)]
    pub pred: PathBuf,
    /// The references: a folder holding files of the same names, or a datalist (its cases'
    /// labels, matched by case id).
    #[arg(long = "ref", value_name = "DIR|DATALIST")]
    pub reference: PathBuf,
    /// Folder for metrics.csv and summary.yaml [default: the predictions' folder].
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,
    /// Label ids to measure [default: every foreground id of each reference].
    #[arg(long, value_delimiter = ',')]
    pub labels: Vec<u16>,
    /// Tolerance of the normalised surface Dice, in mm.
    #[arg(long, default_value_t = 1.0)]
    pub nsd_tolerance: f64,
    /// The references' label of unannotated voxels (nnU-Net's ignore label): no metric
    /// sees what is predicted there [default: the datalist's `labels` entry named
    /// "ignore", when --ref is a datalist].
    #[arg(long, value_name = "ID")]
    pub ignore_label: Option<u16>,
    /// A task config whose `class_names` regions ({name, index}) are measured instead of
    /// labels, each the union of its label ids (its `ignore_label` applies too). Regions
    /// declared in a datalist given as --ref (nnU-Net's `labels` lists) are measured
    /// without it.
    #[arg(long, value_name = "TASK.yaml")]
    pub input: Option<PathBuf>,
    /// Also write OUT/overlays/<case>.png: axial slices of the image with the reference's
    /// outlines (green) and the prediction's (red; yellow where both).
    #[arg(long)]
    pub png: bool,
    /// The images for --png when --ref is a folder: a folder of files of the same names
    /// (with a datalist as --ref, its cases' images are used).
    #[arg(long, requires = "png")]
    pub images: Option<PathBuf>,
    /// Where the confusion matrices and surface distances run: cpu, or cuda:N (a build with
    /// `--features cuda`; the same figures).
    #[arg(long, default_value = "cpu")]
    pub device: String,
}
