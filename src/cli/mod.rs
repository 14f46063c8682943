//! Command-line arguments (clap). Every command here is finished; stages still being built are
//! not listed.

use clap::{Parser, Subcommand};

mod data;
mod outputs;
mod training;

pub use data::*;
pub use outputs::*;
pub use training::*;

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
