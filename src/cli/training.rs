//! Arguments of the commands that make and train bundles: run, generate, inspect, train,
//! tune.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::DatasetArgs;

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub dataset: DatasetArgs,
    /// The work dir: statistics, bundles, trials.yaml, ranking.yaml, ensemble/,
    /// predictions/.
    #[arg(long, short = 'w', default_value = "work_dir")]
    pub work_dir: PathBuf,
    /// Seconds for the whole run. The planner times a few steps of each template on the
    /// devices and chooses templates, folds, each model's seconds and test-time mirroring
    /// to fit (W/plan.yaml says why) [default: on CPU cores, what one template's 5 folds
    /// need to reach the learning curve's plateau; on a GPU, each template's own schedule]
    #[arg(long)]
    pub time_budget: Option<f64>,
    /// Analyze and plan, print the plan (W/plan.yaml) and stop before training.
    #[arg(long)]
    pub plan_only: bool,
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
    /// hours, dynunet halves nnU-Net's widths so the budget makes more steps; batch and patch
    /// shrink until a step's estimated memory fits half of the machine's.
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
