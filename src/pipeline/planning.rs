//! The plan stage of `autoseg run`: each candidate template's first bundle generated and
//! calibrated on the devices (a few steps and one validation window timed), the planner's
//! choice made and written to `W/plan.yaml`, and printed before training. A rerun that asks
//! the same keeps its plan, so it resumes what it started.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use autoseg_datasets::{Dataset, WorkDir};
use autoseg_templates::generate::GenerateOptions;
use autoseg_templates::planner::{Calibration, Facts, Request, RunPlan, decide};
use autoseg_templates::templates::SHORT_BUDGET_SECONDS;
use autoseg_templates::templates::overrides::Setting;

use super::generation::{Target, generate_bundles, num_folds, task_keys};
use super::{Pipeline, REPORT_OVERLAYS};

/// Seconds of calibration per candidate template (a warm-up step and at least one timed
/// step are taken whatever they cost).
const CALIBRATION_SECONDS: f64 = 15.0;

/// The key of test-time mirroring in a bundle's configuration.
const MIRROR_KEY: &str = "inference.mirror_axes";

/// The run's plan: the one `W/plan.yaml` holds when it answers the same request, else a
/// new one, calibrated, written and printed.
pub fn plan_run(p: &Pipeline, dataset: &Dataset, started: &Instant) -> anyhow::Result<RunPlan> {
    let w = WorkDir::new(&p.work_dir);
    let request = request(p);
    if let Some(kept) = RunPlan::read(&w.plan())?.filter(|kept| kept.request == request) {
        println!("  kept {} (the same request)", w.plan().display());
        print(&kept);
        return Ok(kept);
    }
    let target = target(p);
    let mut recipe_budget = first_guess(&request);
    let mut calibrations = calibrate_candidates(p, recipe_budget, target)?;
    let facts = |started: &Instant| Facts {
        num_folds: num_folds(&p.task, dataset),
        testing_cases: dataset.testing.len(),
        report_cases: REPORT_OVERLAYS,
        spent_seconds: started.elapsed().as_secs_f64(),
    };
    let mut plan = decide(&request, &facts(started), &calibrations);
    // The recipe and widths change at 12 hours a model: calibrate again when the plan's
    // share fell on the other side of it than the guess.
    let short = |budget: Option<f64>| budget.is_some_and(|s| s < SHORT_BUDGET_SECONDS);
    if short(plan.seconds_per_model) != short(recipe_budget) {
        recipe_budget = plan.seconds_per_model;
        calibrations = calibrate_candidates(p, recipe_budget, target)?;
        plan = decide(&request, &facts(started), &calibrations);
    }
    plan.write(&w.plan())?;
    print(&plan);
    Ok(plan)
}

/// Seconds each of the plan's models may train, as its bundle and trial are told: its
/// share, less the extra passes of its final mirrored validation (training keeps one
/// validation's time for it).
pub fn trial_seconds(plan: &RunPlan) -> Option<f64> {
    let extra = (plan.calibration.iter())
        .filter(|c| plan.algos.contains(&c.algo) && plan.mirroring)
        .map(|c| (c.mirror_passes.max(1) - 1) as f64 * c.validation_seconds)
        .fold(0.0, f64::max);
    plan.seconds_per_model.map(|s| (s - extra).max(1.0))
}

/// The plan's settings for every bundle, before the user's (which win): test-time
/// mirroring off when the plan turned it off.
pub fn plan_settings(plan: &RunPlan) -> Vec<Setting> {
    if plan.mirroring {
        return Vec::new();
    }
    vec![Setting {
        key: MIRROR_KEY.into(),
        value: serde_json::json!([]),
        source: "plan.yaml (mirroring priced over its budget share)".into(),
        template: None,
    }]
}

fn request(p: &Pipeline) -> Request {
    Request {
        time_budget: p.time_budget,
        devices: p.devices.iter().map(ToString::to_string).collect(),
        cpu_only: cpu_only(p),
        algos: p.algos.clone(),
        folds: p.folds.clone(),
        mirroring_forced: p
            .settings
            .iter()
            .any(|s| s.key == MIRROR_KEY || s.key == "inference"),
    }
}

fn cpu_only(p: &Pipeline) -> bool {
    !p.devices.iter().any(|d| d.is_gpu())
}

/// What the bundles will train on.
pub fn target(p: &Pipeline) -> Target {
    Target {
        gpu_memory_gb: None,
        cpu_only: cpu_only(p),
    }
}

/// The per-model budget the candidates are first generated with (it picks their recipe):
/// the whole budget when one is given; on CPU cores without one, an hour (the default
/// budget makes short models); on a GPU without one, none.
fn first_guess(request: &Request) -> Option<f64> {
    match (request.time_budget, request.cpu_only) {
        (Some(seconds), _) => Some(seconds),
        (None, true) => Some(3600.0),
        (None, false) => None,
    }
}

/// Each candidate template's first bundle, generated under a temporary name, calibrated on
/// the first device and removed again (the plan generates its own).
fn calibrate_candidates(
    p: &Pipeline,
    recipe_budget: Option<f64>,
    target: Target,
) -> anyhow::Result<Vec<Calibration>> {
    let options = GenerateOptions {
        algos: p.algos.clone(),
        folds: vec![p.folds.first().copied().unwrap_or(0)],
        task_keys: task_keys(&p.task),
        settings: p.settings.clone(),
        force: false,
        scratch: true,
    };
    let report = generate_bundles(&p.work_dir, &p.task, &options, target, recipe_budget)?;
    anyhow::ensure!(
        !report.bundles.is_empty(),
        "no template suits this dataset (the reasons are above)"
    );
    let device = p
        .devices
        .first()
        .copied()
        .unwrap_or(autoseg_templates::ComputeDevice::Flex);
    let mut calibrations = Vec::new();
    for b in &report.bundles {
        let measured =
            autoseg_tuner::train::calibrate(&b.dir, &b.algo, device, CALIBRATION_SECONDS)
                .with_context(|| format!("calibrating {}", b.algo));
        remove(&b.dir)?;
        let measured = measured?;
        println!(
            "  calibrated {:<11} {:.2} s a step, {:.1} s a validation",
            measured.algo, measured.step_seconds, measured.validation_seconds
        );
        calibrations.push(measured);
    }
    Ok(calibrations)
}

fn remove(dir: &Path) -> anyhow::Result<()> {
    std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))
}

fn print(plan: &RunPlan) {
    for line in plan.describe() {
        println!("  {line}");
    }
}
