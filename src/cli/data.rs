//! Arguments of the commands that read a dataset: check, analyze, phantom, demo.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

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
    /// Where the labels' connected components are found: cpu, or cuda:N (a build with
    /// `--features cuda`; the same figures).
    #[arg(long, default_value = "cpu")]
    pub device: String,
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
    /// Sparse annotation: every other axial slice of the labelled cases holds an ignore
    /// label (classes + 1, named in dataset.json and task.yaml) instead of its classes;
    /// the testing cases' labels stay whole.
    #[arg(long)]
    pub sparse_labels: bool,
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
    /// Train each fold exactly this many epochs instead, with no time budget: the same seed
    /// then gives the same Dice on any machine, however loaded (about 3 s an epoch on 2
    /// cores).
    #[arg(long, conflicts_with = "time_budget", value_parser = clap::value_parser!(u64).range(1..))]
    pub epochs: Option<u64>,
    /// Where to train: cpu (flex), tch (libtorch CPU) or cuda:N (libtorch GPU).
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

pub(super) fn parse_triple<T: std::str::FromStr + Copy>(text: &str) -> Result<[T; 3], String> {
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
