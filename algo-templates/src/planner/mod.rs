//! The budget planner of `autoseg run`: from each candidate template's calibration (a few
//! training steps and one window's inference, timed on the devices given), which templates
//! and folds to train, for how long each, and whether test-time mirroring pays, so that the
//! default command gives the best model its budget allows. Neither peer plans for a budget:
//! nnU-Net trains 1000 x 250 steps per fold whatever the hardware, Auto3DSeg every template
//! on every fold. The plan and its reasons are written to `W/plan.yaml` ([`RunPlan`]).

mod rule;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use rule::{MIRROR_SHARE, SAFETY_SHARE, STEPS_TO_CONVERGE, decide};

/// What one candidate template costs on the devices, as calibration measured it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The template.
    pub algo: String,
    /// The network's trainable parameters.
    pub parameters: usize,
    /// Seconds of a training step (the median of the steps timed, a warm-up step left out).
    pub step_seconds: f64,
    /// Steps timed.
    pub steps_timed: usize,
    /// Seconds of one validation without mirroring: the fold's validation cases' windows
    /// times one window's measured seconds (forward and decoding).
    pub validation_seconds: f64,
    /// Seconds to predict one case without mirroring (a validation case on average).
    pub case_seconds: f64,
    /// Forward passes per window with the bundle's test-time mirroring (nnU-Net: 8).
    pub mirror_passes: usize,
    /// Steps between validations (iterations per epoch x epochs between validations).
    pub steps_per_validation: usize,
    /// Steps of the bundle's configured schedule (epochs x iterations per epoch).
    pub schedule_steps: usize,
}

/// What the user asked of the run; a plan is reused by a rerun that asks the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// `--time-budget`: seconds for the whole run.
    pub time_budget: Option<f64>,
    /// The devices (`--device`), one training slot each.
    pub devices: Vec<String>,
    /// None of the devices is a GPU.
    pub cpu_only: bool,
    /// Templates forced by `--algos` (the planner chooses when empty).
    pub algos: Vec<String>,
    /// Folds forced by `--folds` (the planner chooses when empty).
    pub folds: Vec<usize>,
    /// Test-time mirroring set by the user (`--set inference.mirror_axes=...`).
    pub mirroring_forced: bool,
}

/// What the data and the run so far bring to the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    /// The task's folds.
    pub num_folds: usize,
    /// Cases the run predicts after training (the datalist's testing cases).
    pub testing_cases: usize,
    /// Validation cases the report draws (predicted by the ensemble).
    pub report_cases: usize,
    /// Seconds the run had spent when it planned (analysis, calibration).
    pub spent_seconds: f64,
}

/// The plan: what `autoseg run` trains, for how long, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunPlan {
    /// What was asked.
    pub request: Request,
    /// What the data and the run brought.
    pub facts: Facts,
    /// Seconds the whole run is planned for: the one given, or the default rule's; none
    /// when the run is not limited (a GPU without `--time-budget`).
    pub budget_seconds: Option<f64>,
    /// Where the budget came from.
    pub budget_rule: String,
    /// Templates trained, best first.
    pub algos: Vec<String>,
    /// Folds each trains.
    pub folds: Vec<usize>,
    /// Seconds of each model's training (its validations and its final one included); none
    /// when each trains its configured schedule.
    pub seconds_per_model: Option<f64>,
    /// Steps each template's models are expected to make.
    pub steps_per_model: Vec<(String, usize)>,
    /// Test-time mirroring is kept.
    pub mirroring: bool,
    /// Seconds the run is expected to take, from its start.
    pub expected_seconds: f64,
    /// Each candidate's measured costs.
    pub calibration: Vec<Calibration>,
    /// Why each choice is what it is.
    pub reasons: Vec<String>,
    /// Choices the user forced (the planner kept them).
    pub forced: Vec<String>,
}

/// Why `plan.yaml` could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct PlanFileError {
    /// The file.
    pub path: std::path::PathBuf,
    /// What went wrong.
    pub reason: String,
}

impl RunPlan {
    /// The plan at `path`, if there is one.
    pub fn read(path: &Path) -> Result<Option<RunPlan>, PlanFileError> {
        let error = |reason: String| PlanFileError {
            path: path.to_path_buf(),
            reason,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => serde_yaml::from_str(&text)
                .map(Some)
                .map_err(|e| error(e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(error(e.to_string())),
        }
    }

    /// Writes the plan to `path` atomically.
    pub fn write(&self, path: &Path) -> Result<(), PlanFileError> {
        let text = serde_yaml::to_string(self).expect("plans serialise");
        autoseg_datasets::fsutil::write_bytes_atomic(path, text.as_bytes()).map_err(|e| {
            PlanFileError {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }
        })
    }

    /// How many models the plan trains.
    pub fn models(&self) -> usize {
        self.algos.len() * self.folds.len()
    }

    /// Test-time mirroring as the plan leaves it.
    pub fn mirroring_words(&self) -> &'static str {
        match (self.request.mirroring_forced, self.mirroring) {
            (true, _) => "as the bundles' --set says",
            (false, true) => "kept",
            (false, false) => "off",
        }
    }

    /// The plan in a few lines, as `run` prints it and `inspect` shows it.
    pub fn describe(&self) -> Vec<String> {
        let budget = match self.budget_seconds {
            Some(s) => format!("{} ({})", duration(s), self.budget_rule),
            None => format!("none ({})", self.budget_rule),
        };
        let folds: Vec<String> = self.folds.iter().map(usize::to_string).collect();
        let steps: Vec<String> = (self.steps_per_model.iter())
            .map(|(algo, steps)| format!("{algo} {steps}"))
            .collect();
        let each = self
            .seconds_per_model
            .map_or("its configured schedule".into(), duration);
        let mut lines = vec![
            format!("budget:   {budget}"),
            format!(
                "trains:   {} on fold(s) {}: {} model(s), {each} each, about {} steps",
                self.algos.join(", "),
                folds.join(", "),
                self.models(),
                steps.join(", ")
            ),
            format!("mirror:   {}", self.mirroring_words()),
            format!("expected: {} in all", duration(self.expected_seconds)),
        ];
        for c in &self.calibration {
            lines.push(format!(
                "measured: {:<11} {:>10} params, {:.2} s a step, {} a validation",
                c.algo,
                c.parameters,
                c.step_seconds,
                duration(c.validation_seconds)
            ));
        }
        lines.extend(self.forced.iter().map(|f| format!("forced:   {f}")));
        lines.extend(self.reasons.iter().map(|r| format!("why:      {r}")));
        lines
    }
}

/// Seconds as a person reads them: `45 s`, `12 min`, `3.5 h`, `2.1 days`.
pub fn duration(seconds: f64) -> String {
    match seconds {
        s if s < 120.0 => format!("{s:.0} s"),
        s if s < 2.0 * 3600.0 => format!("{:.0} min", s / 60.0),
        s if s < 48.0 * 3600.0 => format!("{:.1} h", s / 3600.0),
        s => format!("{:.1} days", s / 86400.0),
    }
}
