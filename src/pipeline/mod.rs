//! The pipeline: the stages' library functions chained with skip and resume, and the
//! helpers several commands share (opening and checking a dataset, analysis, generation,
//! prediction writing). Commands parse arguments and print; they call this module and
//! never each other.

mod analysis;
mod dataset;
mod generation;
mod planning;
mod prediction;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use autoseg_analyzer::AnalyzeOptions;
use autoseg_datasets::{Dataset, TaskConfig, WorkDir};
use autoseg_ensembler::ensemble::{
    Combine, EnsembleConfig, EnsemblePredictor, Selection, write_ensemble,
};
use autoseg_ensembler::predict::testing_inputs;
use autoseg_ensembler::rank::write_ranking;
use autoseg_ensembler::report::{ReportOptions, write_report};
use autoseg_templates::ComputeDevice;
use autoseg_templates::generate::GenerateOptions;
use autoseg_templates::planner::RunPlan;
use autoseg_templates::templates::overrides::Setting;
use autoseg_tuner::trials::{TrialOptions, TrialStatus, plan as plan_trials, train_all};

pub use analysis::{record_task, run_analysis, task_of_datalist};
pub use dataset::{check, open, print_report, write_phantom};
pub use generation::{Target, generate_bundles, print_generated, settings, task_keys};
pub use prediction::predict_with_bar;

/// Validation cases drawn in the report.
const REPORT_OVERLAYS: usize = 3;

/// The work dir's exclusive lock, held by a command while it rewrites the work dir's shared
/// files (the bundles' own locks guard their training). Once it is held, the temporary files
/// a killed run left are removed: outside the bundles, and in each bundle no one is training.
pub fn lock_work_dir(work_dir: &std::path::Path) -> anyhow::Result<autoseg_datasets::lock::Lock> {
    use autoseg_datasets::fsutil::{is_stray_temp, remove_stray_temps};
    use autoseg_datasets::lock::acquire;
    let w = WorkDir::new(work_dir);
    let lock = acquire(work_dir, &w.lock_file())?;
    let bundles = w.bundles_dir();
    remove_stray_temps(work_dir, std::slice::from_ref(&bundles))
        .with_context(|| format!("removing temporary files from {}", work_dir.display()))?;
    for entry in std::fs::read_dir(&bundles).into_iter().flatten().flatten() {
        let dir = entry.path();
        let bundle = autoseg_datasets::Bundle::new(&dir);
        if is_stray_temp(&entry.file_name().to_string_lossy()) {
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        } else if let Ok(_idle) = acquire(&dir, &bundle.lock_file()) {
            autoseg_tuner::train::checkpoint::remove_partials(&dir)?;
        }
    }
    Ok(lock)
}

/// What a pipeline run does.
pub struct Pipeline {
    /// The task.
    pub task: TaskConfig,
    /// The work dir.
    pub work_dir: PathBuf,
    /// Templates (all when empty).
    pub algos: Vec<String>,
    /// Folds (all when empty).
    pub folds: Vec<usize>,
    /// Overrides of generated values.
    pub settings: Vec<Setting>,
    /// Training slots.
    pub devices: Vec<ComputeDevice>,
    /// Seconds for the whole run, if limited.
    pub time_budget: Option<f64>,
}

/// What a run ended with.
pub struct Outcome {
    /// Where predictions went, if the datalist had testing cases.
    pub predictions: Option<PathBuf>,
    /// The ensemble's cross-validation Dice (its members' mean when not measured).
    pub validation_dice: f64,
    /// The work dir's report.html.
    pub report: PathBuf,
}

/// Runs every stage; `dataset` is the task's.
pub fn run_pipeline(p: &Pipeline, dataset: &Dataset) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let w = &p.work_dir;
    let plan = analyze_and_plan(p, dataset, &started)?;

    println!("[generate]");
    let mut settings = planning::plan_settings(&plan);
    settings.extend(p.settings.iter().cloned());
    let options = GenerateOptions {
        algos: plan.algos.clone(),
        folds: plan.folds.clone(),
        task_keys: task_keys(&p.task),
        settings,
        force: false,
        scratch: false,
    };
    let each = planning::trial_seconds(&plan);
    let report = generate_bundles(w, &p.task, &options, planning::target(p), each)?;
    print_generated(&report);

    println!("[train]");
    let trial_options = TrialOptions {
        algos: plan.algos.clone(),
        folds: plan.folds.clone(),
        devices: p.devices.clone(),
        progress_bars: std::io::stderr().is_terminal(),
        time_budget_per_trial: each,
    };
    let planned = plan_trials(w, &trial_options)?;
    let pending = planned
        .iter()
        .filter(|t| t.status != TrialStatus::Finished)
        .count();
    println!("  {pending} of {} trial(s) to train", planned.len());
    let trials = train_all(w, &trial_options, &|t| {
        let best = t.best_dice.map_or("none".into(), |d| format!("{d:.4}"));
        let note = t.note.as_deref().unwrap_or("");
        println!(
            "  {:<16} {:?}: best Dice {best} ({note})",
            t.bundle, t.status
        );
    })?;
    let failed = trials
        .iter()
        .filter(|t| t.status == TrialStatus::Failed)
        .count();
    if failed > 0 {
        eprintln!("warning: {failed} trial(s) failed (see trials.yaml); ranking the others");
    }

    println!("[rank]");
    let ranking = write_ranking(w)?;
    for a in &ranking.algos {
        println!("  {} {:<14} mean Dice {:.4}", a.rank, a.algo, a.mean_dice);
    }

    println!("[ensemble]");
    let device = p.devices.first().copied().unwrap_or(ComputeDevice::Flex);
    let ensemble = write_ensemble(w, Selection::Greedy, Combine::Mean, device)?;
    let members_mean =
        ensemble.members.iter().map(|m| m.dice).sum::<f64>() / ensemble.members.len() as f64;
    let validation_dice = ensemble.cross_validation_dice.unwrap_or(members_mean);
    print_choice(&ensemble);

    let predictions = if dataset.testing.is_empty() {
        println!("[predict] the datalist lists no testing cases");
        None
    } else {
        println!("[predict] {} testing case(s)", dataset.testing.len());
        let out = WorkDir::new(w).predictions();
        let predictor = EnsemblePredictor::load(w, device)?;
        // The dataset as the task resolved it: its data root may lie apart from the datalist.
        let inputs = testing_inputs(&dataset);
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        let failed = predict_with_bar(&predictor, &inputs, &out, false);
        anyhow::ensure!(failed.is_empty(), "could not predict {failed:?}");
        Some(out)
    };
    println!("[report]");
    let options = ReportOptions {
        overlays: REPORT_OVERLAYS,
        device,
    };
    let report = write_report(w, &options)?;
    println!("  wrote {}", report.display());
    println!("done in {:.0} s", started.elapsed().as_secs_f64());
    Ok(Outcome {
        predictions,
        validation_dice,
        report,
    })
}

/// The stages before training: the dataset analyzed, then the run planned for its budget
/// (`W/plan.yaml`); `started` is when the run began, whose budget this is.
pub fn analyze_and_plan(
    p: &Pipeline,
    dataset: &Dataset,
    started: &Instant,
) -> anyhow::Result<RunPlan> {
    println!("[analyze]");
    let options = AnalyzeOptions {
        work_dir: p.work_dir.clone(),
        use_cache: true,
        device: Default::default(),
    };
    let ignore = dataset.ignore_label(Some(&p.task));
    let analysis = run_analysis(dataset, &options, ignore)?;
    anyhow::ensure!(
        analysis.failed.is_empty(),
        "{} case(s) could not be read (listed above): fix or remove them from the datalist",
        analysis.failed.len()
    );
    record_task(&p.task, &p.work_dir)?;
    println!("[plan]");
    planning::plan_run(p, dataset, started)
}

/// The members and what cross-validation measured and kept, a line each.
pub fn print_choice(config: &EnsembleConfig) {
    for m in &config.members {
        println!(
            "  member {} (validation Dice {:.4})",
            m.bundle.display(),
            m.dice
        );
    }
    if let Some(dice) = config.cross_validation_dice {
        println!(
            "  cross-validation Dice {dice:.4}, {}",
            config.describe_cleanups()
        );
        let per_class = (config.cross_validation_dice_per_class.iter())
            .map(|(label, dice)| (format!("label {label}"), *dice));
        let per_region =
            (config.cross_validation_dice_per_region.iter()).map(|r| (r.region.clone(), r.dice));
        let (what, scores): (&str, Vec<(String, f64)>) =
            if config.cross_validation_dice_per_region.is_empty() {
                ("class", per_class.collect())
            } else {
                ("region", per_region.collect())
            };
        let each = few_or_worst(scores);
        println!("  per {what}: {each}");
    }
}

/// Scores in a line: each one when they are few, else how many and the three lowest (66
/// cortical classes do not fit a line).
fn few_or_worst(mut scores: Vec<(String, f64)>) -> String {
    let say = |(name, dice): &(String, f64)| format!("{name}: {dice:.4}");
    if scores.len() <= 8 {
        return scores.iter().map(say).collect::<Vec<_>>().join(", ");
    }
    let count = scores.len();
    scores.retain(|(_, d)| !d.is_nan());
    scores.sort_by(|a, b| a.1.total_cmp(&b.1));
    let worst: Vec<String> = scores.iter().take(3).map(say).collect();
    format!("{count}, the lowest {}", worst.join(", "))
}
