//! `autoseg tune`: hyper-parameter search for a work dir's bundles within one wall-clock
//! budget. For each bundle (an algorithm's fold), trials draw values from the bundle's
//! `search_space.yaml` ([`sampler`]: random or TPE), each trial being a bundle of its own in
//! `W/tuning/<bundle>/trial_NNN` that can be inspected and rerun; [`asha`] decides which
//! trial trains further and which stop early. Trial 0 keeps the bundle's own values (the
//! template's, or hand edits), so the search says whether it beat them. The best trial is written back as the fold's bundle
//! (its configuration, weights and history; `autoseg train` finishes it if it was paused).
//! `W/tuning/<bundle>/study.yaml` records every trial and is reread on a rerun.

pub mod asha;
mod bundles;
pub mod sampler;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use autoseg_datasets::rng::Rng;
use autoseg_datasets::{Bundle, WorkDir};
use autoseg_templates::ComputeDevice;
use autoseg_templates::bundle::read_config;
use autoseg_templates::templates::search_space::SearchSpace;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::train::{TrainConfig, TrainError, TrainOptions, train};
use bundles::{make_trial, write_back};
use sampler::{Observation, Sampler};

/// How a search runs.
#[derive(Debug, Clone)]
pub struct TuneOptions {
    /// Where trials train.
    pub device: ComputeDevice,
    /// Seconds for this bundle's search.
    pub time_budget_seconds: f64,
    /// How values are drawn.
    pub sampler: Sampler,
    /// Epochs of the first rung [default: the schedule / η³].
    pub first_rung: Option<usize>,
    /// ASHA's reduction factor: the top 1/η go on.
    pub eta: usize,
    /// Seed of the draws.
    pub seed: u64,
}

/// Where a trial stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrialState {
    /// Waiting at a rung: promoted later, or stopped early if never.
    Paused,
    /// Trained the whole schedule.
    Complete,
    /// Its training failed (see the note).
    Failed,
}

/// One trial of a study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyTrial {
    /// Its bundle's folder name under the study.
    pub name: String,
    /// Its values, by configuration key.
    pub values: BTreeMap<String, Value>,
    /// Its best validation Dice at each rung it reached.
    pub scores: Vec<f64>,
    /// Where it stands.
    pub state: TrialState,
    /// Training seconds.
    pub seconds: f64,
    /// Epochs trained.
    pub epochs: usize,
    /// Why it failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `W/tuning/<bundle>/study.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Study {
    /// The tuned bundle, relative to the work dir.
    pub bundle: String,
    /// How values were drawn.
    pub sampler: Sampler,
    /// ASHA's rungs, in epochs.
    pub rungs: Vec<usize>,
    /// ASHA's reduction factor.
    pub eta: usize,
    /// Every trial, trial 0 holding the template's values.
    pub trials: Vec<StudyTrial>,
    /// The verdict once the budget is spent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

/// What a search found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The best trial (highest score at the highest rung any trial reached).
    pub best: String,
    /// Its score there, and the rung's epochs.
    pub best_dice: f64,
    /// The rung compared at.
    pub epochs: usize,
    /// The template's values (trial 0) at the highest rung they reached, if scored.
    pub default_dice: Option<f64>,
    /// That rung's epochs.
    pub default_epochs: Option<usize>,
    /// The best trial's score at the same rung as trial 0's last.
    pub best_dice_at_default_epochs: Option<f64>,
    /// The verdict in words.
    pub verdict: String,
    /// Trials run, and how many stopped before the full schedule.
    pub trials: usize,
    /// Trials stopped early.
    pub stopped_early: usize,
    /// Mean seconds an epoch took, over every trial.
    pub seconds_per_epoch: f64,
    /// How many full-length trials the budget would have held at that speed.
    pub full_length_trials_in_budget: f64,
}

/// The folder of a bundle's study.
pub fn study_dir(work_dir: &Path, bundle: &str) -> PathBuf {
    WorkDir::new(work_dir).tuning_dir(bundle)
}

/// The file of a bundle's study.
pub fn study_file(work_dir: &Path, bundle: &str) -> PathBuf {
    study_dir(work_dir, bundle).join("study.yaml")
}

fn config_error(path: &Path, reason: impl ToString) -> TrainError {
    TrainError::Config {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Searches one bundle of the work dir for `options.time_budget_seconds`; `on_step` hears of
/// every rung a trial finishes. Returns the study, its outcome set and the best trial
/// written back into the bundle.
pub fn tune_bundle(
    work_dir: &Path,
    bundle_name: &str,
    options: &TuneOptions,
    on_step: &dyn Fn(&StudyTrial, &str),
) -> Result<Study, TrainError> {
    let started = Instant::now();
    let bundle = WorkDir::new(work_dir)
        .bundle(bundle_name)
        .dir()
        .to_path_buf();
    // The search writes its best trial back into the bundle: no one may train it meanwhile.
    let _lock = crate::train::lock_bundle(&bundle)?;
    let space = match SearchSpace::read(&bundle) {
        Some(space) => space?,
        None => {
            return Err(config_error(
                &Bundle::new(&bundle).search_space(),
                "missing: `autoseg generate --force` writes one (or write it by hand)",
            ));
        }
    };
    let merged = read_config(&bundle)?;
    // Read through the schema: a bundle that would not train is refused before any trial.
    let epochs = TrainConfig::read(&bundle)?.num_epochs;
    let dir = study_dir(work_dir, bundle_name);
    let study_file = study_file(work_dir, bundle_name);
    let mut study = match autoseg_datasets::textfile::read_text(&study_file) {
        Ok(text) => autoseg_datasets::textfile::from_yaml(&text)
            .map_err(|e| config_error(&study_file, e))?,
        Err(_) => Study {
            bundle: format!("bundles/{bundle_name}"),
            sampler: options.sampler,
            rungs: asha::rungs(
                options
                    .first_rung
                    .unwrap_or_else(|| asha::default_first_rung(epochs, options.eta)),
                options.eta,
                epochs,
            ),
            eta: options.eta,
            trials: Vec::new(),
            outcome: None,
        },
    };
    let mut rng = Rng::stream(options.seed, study.trials.len() as u64);
    let left = |started: &Instant| options.time_budget_seconds - started.elapsed().as_secs_f64();
    while left(&started) > 0.0 {
        let scores: Vec<Vec<f64>> = study.trials.iter().map(|t| t.scores.clone()).collect();
        let paused: Vec<bool> = study
            .trials
            .iter()
            .map(|t| t.state == TrialState::Paused)
            .collect();
        let index = match asha::promotable(&scores, &paused, study.rungs.len(), study.eta) {
            Some(i) => i,
            None => {
                let values = next_values(&study, &space, &merged.values, &mut rng);
                let name = format!("trial_{:03}", study.trials.len());
                make_trial(&bundle, &dir.join(&name), &values)?;
                study.trials.push(StudyTrial {
                    name,
                    values,
                    scores: Vec::new(),
                    state: TrialState::Paused,
                    seconds: 0.0,
                    epochs: 0,
                    note: None,
                });
                study.trials.len() - 1
            }
        };
        let trial = &mut study.trials[index];
        let rung = study.rungs[trial.scores.len()];
        let result = train(
            &dir.join(&trial.name),
            &TrainOptions {
                device: options.device,
                resume: trial.epochs > 0,
                progress_bars: false,
                // The search's budget caps this segment too (over the trial's sessions).
                time_budget_seconds: Some(trial.seconds + left(&started).max(1.0)),
                stop_after_epochs: Some(rung),
            },
        );
        let said = record(trial, result, rung, epochs);
        on_step(trial, &said);
        write_study(&study_file, &study)?;
        if let Some(reason) = failing_in_a_row(&study.trials) {
            return Err(config_error(&study_file, reason));
        }
    }
    let outcome = conclude(&study, options.time_budget_seconds);
    if let Some(outcome) = &outcome {
        write_back(&bundle, &dir.join(&outcome.best), &study)?;
    }
    study.outcome = outcome;
    write_study(&study_file, &study)?;
    Ok(study)
}

/// Trials failing in a row before the search gives up (a search space that yields
/// configurations training refuses would otherwise fill the budget with failures).
const FAILURES_IN_A_ROW: usize = 3;

/// Why the search should stop, when its last trials all failed.
fn failing_in_a_row(trials: &[StudyTrial]) -> Option<String> {
    let last = trials.iter().rev().take(FAILURES_IN_A_ROW);
    if trials.len() < FAILURES_IN_A_ROW || last.clone().any(|t| t.state != TrialState::Failed) {
        return None;
    }
    Some(format!(
        "the last {FAILURES_IN_A_ROW} trials failed (check search_space.yaml); the last said: {}",
        trials.last()?.note.as_deref().unwrap_or("no reason")
    ))
}

/// Trial 0 takes the configuration's own values; later ones the sampler's.
fn next_values(
    study: &Study,
    space: &SearchSpace,
    config: &Map<String, Value>,
    rng: &mut Rng,
) -> BTreeMap<String, Value> {
    let keys = space.params.iter().map(|p| p.key.clone());
    if study.trials.is_empty() {
        let root = Value::Object(config.clone());
        return keys
            .map(|k| {
                let v = k.split('.').try_fold(&root, |v, part| v.get(part));
                (k, v.cloned().unwrap_or(Value::Null))
            })
            .collect();
    }
    let observations: Vec<Observation> = study
        .trials
        .iter()
        .filter_map(|t| {
            let score = *t.scores.first()?;
            let values = space
                .params
                .iter()
                .map(|p| t.values[&p.key].clone())
                .collect();
            Some(Observation { values, score })
        })
        .collect();
    keys.zip(sampler::sample(study.sampler, space, &observations, rng))
        .collect()
}

/// Updates a trial after a training segment towards `rung`; returns what happened in words.
fn record(
    trial: &mut StudyTrial,
    result: Result<crate::train::TrainSummary, TrainError>,
    rung: usize,
    epochs: usize,
) -> String {
    match result {
        Ok(summary) => {
            trial.epochs = summary.epochs_done;
            trial.seconds = summary.history.iter().map(|r| r.seconds).sum();
            match summary.best_dice.filter(|_| summary.epochs_done == rung) {
                Some(dice) => {
                    trial.scores.push(dice);
                    if rung == epochs {
                        trial.state = TrialState::Complete;
                    }
                    format!("epoch {rung}: Dice {dice:.4}")
                }
                None => format!(
                    "stopped at epoch {} ({})",
                    summary.epochs_done, summary.stopped_because
                ),
            }
        }
        Err(e) => {
            trial.state = TrialState::Failed;
            trial.note = Some(e.to_string());
            format!("failed: {e}")
        }
    }
}

fn write_study(path: &Path, study: &Study) -> Result<(), TrainError> {
    let text = serde_yaml::to_string(study).expect("studies serialise");
    crate::train::atomic_write(path, text.as_bytes())
}

/// The verdict: the best trial at the highest rung reached, and how the template's values
/// (trial 0) compare at the last rung they reached.
fn conclude(study: &Study, budget: f64) -> Option<Outcome> {
    let top = study
        .trials
        .iter()
        .map(|t| t.scores.len())
        .max()
        .filter(|&k| k > 0)?;
    let best = study
        .trials
        .iter()
        .filter(|t| t.scores.len() == top)
        .max_by(|a, b| a.scores[top - 1].total_cmp(&b.scores[top - 1]))?;
    let default = study.trials.first().filter(|t| !t.scores.is_empty());
    let default_rung = default.map(|t| t.scores.len() - 1);
    let best_there = default_rung.and_then(|k| best.scores.get(k).copied());
    let default_dice = default.and_then(|t| t.scores.last().copied());
    let verdict = match (default_dice, best_there) {
        _ if default.is_some_and(|d| d.name == best.name) => {
            "the bundle's own values (trial 0) were best: tuning did not beat them".to_string()
        }
        (Some(d), Some(b)) if b > d => format!(
            "{} beats the bundle's own values (trial 0): Dice {b:.4} against {d:.4} after {} epochs",
            best.name,
            study.rungs[default_rung.unwrap_or(0)]
        ),
        (Some(d), Some(b)) => format!(
            "{} did not beat the bundle's own values (trial 0): Dice {b:.4} against {d:.4} after {} epochs",
            best.name,
            study.rungs[default_rung.unwrap_or(0)]
        ),
        _ => "the bundle's own values (trial 0) were not scored: no comparison".to_string(),
    };
    let (seconds, epochs): (f64, usize) = study
        .trials
        .iter()
        .fold((0.0, 0), |(s, e), t| (s + t.seconds, e + t.epochs));
    let seconds_per_epoch = seconds / epochs.max(1) as f64;
    let full = seconds_per_epoch * *study.rungs.last().unwrap_or(&1) as f64;
    Some(Outcome {
        best: best.name.clone(),
        best_dice: best.scores[top - 1],
        epochs: study.rungs[top - 1],
        default_dice,
        default_epochs: default_rung.map(|k| study.rungs[k]),
        best_dice_at_default_epochs: best_there,
        verdict,
        trials: study.trials.len(),
        stopped_early: study
            .trials
            .iter()
            .filter(|t| t.state == TrialState::Paused)
            .count(),
        seconds_per_epoch,
        full_length_trials_in_budget: budget / full.max(f64::MIN_POSITIVE),
    })
}

#[cfg(test)]
mod tests {
    use super::bundles::rebased;
    use super::*;

    fn trial(state: TrialState) -> StudyTrial {
        StudyTrial {
            name: "t".into(),
            values: BTreeMap::new(),
            scores: Vec::new(),
            state,
            seconds: 0.0,
            epochs: 0,
            note: Some("network.yaml: unknown key".into()),
        }
    }

    #[test]
    fn a_search_gives_up_after_three_failures_in_a_row() {
        let mut trials = vec![trial(TrialState::Failed), trial(TrialState::Failed)];
        assert_eq!(failing_in_a_row(&trials), None);
        trials.insert(0, trial(TrialState::Paused));
        assert_eq!(failing_in_a_row(&trials), None);
        trials.push(trial(TrialState::Failed));
        let why = failing_in_a_row(&trials).unwrap();
        assert!(
            why.contains("last 3 trials failed") && why.contains("unknown key"),
            "{why}"
        );
    }

    #[test]
    fn data_paths_move_one_folder_deeper_and_absolute_ones_stay() {
        let config = serde_json::json!({"data": {"datalist": "../../d.json", "dataroot": "/abs", "cache_dir": "../../pre", "folds": "../../folds.yaml"}, "x": "../y", "init_weights": "../w.pt"});
        let moved = rebased(config.as_object().unwrap().clone(), Path::new(".."));
        assert_eq!(moved["data"]["folds"], "../../../folds.yaml");
        assert_eq!(moved["data"]["datalist"], "../../../d.json");
        assert_eq!(moved["data"]["dataroot"], "/abs");
        assert_eq!(moved["data"]["cache_dir"], "../../../pre");
        assert_eq!(moved["x"], "../y");
        assert_eq!(moved["init_weights"], "../../w.pt");
    }
}
