//! Command-line arguments (clap). Every command here is finished; stages still being built are
//! not listed.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// AutoML for 3D medical image segmentation.
///
/// Exit status: 0 on success, 1 when `check` finds errors in the data or `analyze` had to leave
/// cases out, 2 when a command cannot run (bad arguments, unreadable config).
#[derive(Debug, Parser)]
#[command(name = "autoseg", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate the phantom dataset and run the pipeline on it: check, analyze, generate,
    /// train two folds, rank, ensemble, predict and evaluate the testing cases.
    Demo(DemoArgs),
    /// Verify a dataset: files exist and read, grids agree, labels are class ids.
    Check(CheckArgs),
    /// Gather dataset statistics into WORK_DIR/datastats.yaml and datastats_by_case.yaml
    /// (MONAI's keys, exact per-channel figures, nnU-Net's fingerprint).
    Analyze(AnalyzeArgs),
    /// The whole pipeline on a task: analyze, generate, train every bundle, rank, ensemble,
    /// predict the testing cases, write report.html; a rerun skips finished work and resumes
    /// the rest.
    Run(RunArgs),
    /// Write one bundle per algorithm template and fold into WORK_DIR/bundles, from the
    /// statistics `analyze` wrote; every value's rule is recorded in the bundle.
    Generate(GenerateArgs),
    /// Show a bundle (or every bundle of a work dir): configuration, why each value is what
    /// it is, training status, parameters and memory per step.
    Inspect(InspectArgs),
    /// Train one bundle on its fold, or every bundle of a work dir; resumable.
    Train(TrainArgs),
    /// Search each bundle's hyper-parameters (its search_space.yaml) within a time budget:
    /// random or TPE draws, ASHA stopping weak trials early; the best trial becomes the
    /// fold's bundle.
    Tune(TuneArgs),
    /// Rank the work dir's algorithms by validation Dice (mean over folds and classes) into
    /// WORK_DIR/ranking.yaml.
    Rank(RankArgs),
    /// Choose the ensemble's members from the ranking and how they combine
    /// (WORK_DIR/ensemble/ensemble.yaml).
    Ensemble(EnsembleArgs),
    /// Predict label maps with one trained bundle or a work dir's ensemble, in each input
    /// image's own geometry.
    Predict(PredictArgs),
    /// Measure label maps against references: Dice, IoU, HD95, ASD, surface Dice and volume
    /// per case and class (metrics.csv), and their summary (summary.yaml).
    Evaluate(EvaluateArgs),
    /// Write WORK_DIR/report.html: statistics, each bundle's values and why, training curves,
    /// ranking, ensemble and cross-validation Dice, overlays of validation predictions.
    Report(ReportArgs),
    /// Export a trained bundle, or every member of a work dir's ensemble, for deployment:
    /// ONNX (opset 17, weights inside) with inference.json (spacing, normalisation, window,
    /// label ids) beside it, or a MONAI bundle that `python -m monai.bundle run` runs.
    Export(ExportArgs),
    /// Write a synthetic phantom dataset (NIfTI images, labels, dataset.json, task.yaml).
    Phantom(PhantomArgs),
    /// List the compute devices this build can use and test each one.
    Devices,
}

/// Where the dataset is: a task config, or a datalist and its root.
#[derive(Debug, Args)]
pub struct DatasetArgs {
    /// Task config (MONAI input.yaml keys: modality, datalist, dataroot, class_names...).
    #[arg(long, short = 'i', conflicts_with_all = ["datalist", "dataroot"], required_unless_present = "datalist")]
    pub input: Option<PathBuf>,
    /// Datalist JSON (MSD layout: training / validation / testing lists).
    #[arg(long, short = 'd')]
    pub datalist: Option<PathBuf>,
    /// Folder the datalist's paths are relative to [default: the datalist's folder].
    #[arg(long, requires = "datalist")]
    pub dataroot: Option<PathBuf>,
    /// Accept datalist paths that lead outside the data root (`../`, absolute paths).
    #[arg(long)]
    pub allow_outside_root: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub dataset: DatasetArgs,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    pub dataset: DatasetArgs,
    /// Folder for the datastats files and the per-case cache (created if missing).
    #[arg(long, short = 'w', default_value = "work_dir")]
    pub work_dir: PathBuf,
    /// Cases analyzed at once [default: one per core].
    #[arg(long)]
    pub workers: Option<usize>,
    /// Analyze every case again instead of reusing cached per-case results.
    #[arg(long)]
    pub no_cache: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub dataset: DatasetArgs,
    /// The work dir: statistics, bundles, trials.yaml, ranking.yaml, ensemble/,
    /// predictions/.
    #[arg(long, short = 'w', default_value = "work_dir")]
    pub work_dir: PathBuf,
    /// Seconds for the whole run, shared out among the trials (a tenth kept for the
    /// other stages); each bundle's recipe suits its share [default: each bundle's own
    /// epochs].
    #[arg(long)]
    pub time_budget: Option<f64>,
    /// Where to train and predict: cpu (flex), tch (libtorch CPU) or cuda:N; a
    /// comma-separated list trains one bundle on each side by side.
    #[arg(long, default_value = "cpu", value_delimiter = ',')]
    pub device: Vec<String>,
    #[command(flatten)]
    pub bundles: BundleChoice,
}

/// Which bundles to make, and how to change what the templates choose.
#[derive(Debug, Args)]
pub struct BundleChoice {
    /// Templates [default: all that suit the data]: dynunet, segresnet, segresnet2d.
    #[arg(long, value_delimiter = ',')]
    pub algos: Vec<String>,
    /// Folds [default: all].
    #[arg(long, value_delimiter = ',')]
    pub folds: Vec<usize>,
    /// Override a generated value: KEY=VALUE, the key a dotted path into configs/*.yaml
    /// (num_epochs=50, optimizer.weight_decay=1e-4, patch_size=[64,64,32]), prefixed by
    /// TEMPLATE: to touch only that template's bundles (dynunet:network.filters=[16,32,64]);
    /// repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Start every bundle's training from these weights instead of a random draw
    /// (fine-tuning): autoseg's safetensors or a PyTorch/MONAI state dict (.pt, .pth,
    /// .ckpt); output heads the file lacks or holds with another shape (other classes)
    /// start fresh, any other layer that does not fit refuses the file. Written as
    /// init_weights in each bundle's hyper_parameters.yaml; model/init_weights.yaml says
    /// what loaded.
    #[arg(long, value_name = "FILE")]
    pub init_weights: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The work dir: reads datastats.yaml and input.yaml (both written by `analyze`),
    /// writes bundles/<algo>_<fold>/.
    #[arg(long, short = 'w', default_value = "work_dir")]
    pub work_dir: PathBuf,
    /// Task config to use instead of the one `analyze` recorded in the work dir.
    #[arg(long, short = 'i')]
    pub input: Option<PathBuf>,
    #[command(flatten)]
    pub bundles: BundleChoice,
    /// GPU memory to plan patch and batch for, in GB [default: nnU-Net's 8].
    #[arg(long)]
    pub gpu_memory: Option<f64>,
    /// The bundles will train on CPU cores alone (cpu or tch): with a time budget under 12
    /// hours, dynunet halves nnU-Net's widths so the budget makes more steps.
    #[arg(long)]
    pub cpu: bool,
    /// Seconds of training per bundle (written as time_budget_seconds); under 12 hours,
    /// dynunet swaps nnU-Net's recipe for one that learns in few steps.
    #[arg(long)]
    pub time_budget: Option<f64>,
    /// Rewrite bundles that exist already (otherwise they are kept as they are, hand edits
    /// and trained models included).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A bundle folder, or a work dir (every bundle in its bundles/).
    pub dir: PathBuf,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

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
    /// Also write OUT/overlays/<case>.png: axial slices of the image with the reference's
    /// outlines (green) and the prediction's (red; yellow where both).
    #[arg(long)]
    pub png: bool,
    /// The images for --png when --ref is a folder: a folder of files of the same names
    /// (with a datalist as --ref, its cases' images are used).
    #[arg(long, requires = "png")]
    pub images: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// One bundle folder: its configs/*.yaml say what to train; weights, checkpoints,
    /// progress.yaml and metrics.csv are written into it.
    #[arg(
        long,
        short = 'b',
        required_unless_present = "work_dir",
        conflicts_with = "work_dir"
    )]
    pub bundle: Option<PathBuf>,
    /// Every bundle of a work dir (WORK_DIR/bundles): finished ones are skipped, interrupted
    /// ones resumed; WORK_DIR/trials.yaml records each.
    #[arg(long, short = 'w')]
    pub work_dir: Option<PathBuf>,
    /// Continue an interrupted run of --bundle from its last checkpoint.
    #[arg(long, requires = "bundle")]
    pub resume: bool,
    /// Instead of training --bundle: the learning-rate range test (MONAI's
    /// LearningRateFinder: 100 steps from 1e-6 to 10, stopping when the loss diverges) on its
    /// data, network and optimiser; writes BUNDLE/lr_finder.yaml and prints the suggested rate
    /// (set it with `learning_rate` in hyper_parameters.yaml). The weights are left alone.
    #[arg(long, requires = "bundle", conflicts_with = "resume")]
    pub find_lr: bool,
    /// Start --bundle from these weights instead of a random draw (fine-tuning; written as
    /// init_weights in its hyper_parameters.yaml first): autoseg's safetensors or a
    /// PyTorch/MONAI state dict (.pt, .pth, .ckpt); output heads the file lacks or holds with
    /// another shape start fresh, any other layer that does not fit refuses the file.
    #[arg(long, value_name = "FILE", requires = "bundle", conflicts_with_all = ["resume", "find_lr"])]
    pub init_weights: Option<PathBuf>,
    /// Where to train: cpu (flex), tch (libtorch CPU) or cuda:N (libtorch GPU). With
    /// --work-dir, a comma-separated list runs one bundle on each side by side
    /// (cuda:0,cuda:1).
    #[arg(long, default_value = "cpu", value_delimiter = ',')]
    pub device: Vec<String>,
    /// With --work-dir: the algorithms to train [default: all].
    #[arg(long, value_delimiter = ',', requires = "work_dir")]
    pub algos: Vec<String>,
    /// With --work-dir: the folds to train [default: all].
    #[arg(long, value_delimiter = ',', requires = "work_dir")]
    pub folds: Vec<usize>,
    /// With --work-dir: train on a cluster instead of here: one sbatch job array, a task
    /// per unfinished trial, on the shared work dir (WORK_DIR/slurm holds the scripts and
    /// logs); lost trials are submitted again once.
    #[arg(long, value_enum, requires = "work_dir")]
    pub cluster: Option<ClusterArg>,
    /// With --cluster: return once submitted instead of waiting for the jobs.
    #[arg(long, requires = "cluster")]
    pub detach: bool,
    /// With --cluster: cores per task.
    #[arg(long, default_value_t = 2)]
    pub cpus_per_task: usize,
    /// With --cluster: an sbatch option for every task, repeatable
    /// (--sbatch=--partition=gpu --sbatch=--gres=gpu:1).
    #[arg(long = "sbatch", value_name = "OPTION", allow_hyphen_values = true)]
    pub sbatch: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ClusterArg {
    /// SLURM: sbatch, squeue.
    Slurm,
}

#[derive(Debug, Args)]
pub struct TuneArgs {
    /// The work dir: its bundles (from `autoseg generate`) are tuned; each study is kept in
    /// WORK_DIR/tuning/<bundle>/ (study.yaml and a bundle per trial).
    #[arg(long, short = 'w', default_value = "work_dir")]
    pub work_dir: PathBuf,
    /// Seconds for the whole search, shared evenly among the bundles.
    #[arg(long)]
    pub time_budget: f64,
    /// How trials' values are drawn.
    #[arg(long, value_enum, default_value = "tpe")]
    pub sampler: SamplerArg,
    /// Epochs of ASHA's first rung [default: each bundle's epochs / eta^3].
    #[arg(long)]
    pub first_rung: Option<usize>,
    /// ASHA's reduction factor: the top 1/eta of a rung train on to the next.
    #[arg(long, default_value_t = 3)]
    pub eta: usize,
    /// Where trials train: cpu (flex), tch or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Seed of the draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The algorithms to tune [default: all].
    #[arg(long, value_delimiter = ',')]
    pub algos: Vec<String>,
    /// The folds to tune [default: all].
    #[arg(long, value_delimiter = ',')]
    pub folds: Vec<usize>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SamplerArg {
    /// Tree-structured Parzen Estimator (random for the first 10 trials).
    Tpe,
    /// Uniform draws.
    Random,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PhantomModality {
    Mri,
    Ct,
}

#[derive(Debug, Args)]
pub struct PhantomArgs {
    /// Folder to write into (created if missing).
    #[arg(long, short = 'o')]
    pub out: PathBuf,
    /// Labelled cases.
    #[arg(long, default_value_t = 12)]
    pub cases: usize,
    /// Unlabelled cases listed under `testing` (their labels are written to labelsTs/).
    #[arg(long, default_value_t = 2)]
    pub test_cases: usize,
    /// Voxels along x,y,z.
    #[arg(long, value_parser = parse_triple::<usize>, default_value = "32,32,32")]
    pub shape: [usize; 3],
    /// Voxel size in mm along x,y,z (e.g. 1,1,3 for thick slices).
    #[arg(long, value_parser = parse_triple::<f64>, default_value = "1,1,1")]
    pub spacing: [f64; 3],
    /// Intensity model.
    #[arg(long, value_enum, default_value = "mri")]
    pub modality: PhantomModality,
    /// Store each case in a random axis orientation (LPS, PIR...).
    #[arg(long)]
    pub random_orientation: bool,
    /// Random seed: the same seed writes the same dataset.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Foreground classes: 2 is an organ with a nested lesion; 3 to 255 are that many
    /// organs of distinct intensities side by side (many-class data, as TotalSegmentator's).
    #[arg(long, default_value_t = 2)]
    pub classes: usize,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder for the demo's dataset and outputs.
    #[arg(long, default_value = "autoseg-demo")]
    pub dir: PathBuf,
    /// Random seed for the phantoms.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Seconds for the pipeline, shared by its two trainings (the phantoms reach a
    /// validation Dice of 0.9 in about 90 s each).
    #[arg(long, default_value_t = 300.0)]
    pub time_budget: f64,
    /// Where to train: cpu (flex), tch (libtorch CPU) or cuda:N (libtorch GPU).
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

fn parse_triple<T: std::str::FromStr + Copy>(text: &str) -> Result<[T; 3], String> {
    let parts: Vec<T> = text
        .split(',')
        .map(|p| {
            p.trim()
                .parse()
                .map_err(|_| format!("`{p}` is not a number"))
        })
        .collect::<Result<_, _>>()?;
    match parts.as_slice() {
        [a, b, c] => Ok([*a, *b, *c]),
        _ => Err(format!(
            "expected three comma-separated values, got `{text}`"
        )),
    }
}
