//! Ranking algorithms by validation Dice: each algorithm's mean over its finished folds of
//! the best mean Dice, with per-class columns, from the work dir's trials ledger
//! (`trials.yaml`, written by the training stage).

use autoseg_datasets::WorkDir;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Why ranking could not run.
#[derive(Debug, thiserror::Error)]
pub enum RankError {
    /// The ledger is missing or unreadable.
    #[error("{path}: {reason}")]
    Ledger {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The ranking could not be written.
    #[error("{path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// What ranking reads of a ledger entry.
#[derive(Debug, Clone, Deserialize)]
struct LedgerTrial {
    bundle: String,
    algo: String,
    fold: usize,
    status: String,
    best_dice: Option<f64>,
    dice_per_class: Option<Vec<f64>>,
}

/// One algorithm's place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankedAlgo {
    /// 1 is best.
    pub rank: usize,
    /// The algorithm.
    pub algo: String,
    /// Mean over its finished folds of the best mean validation Dice.
    pub mean_dice: f64,
    /// Mean over folds per foreground class (NaN-free folds only).
    pub dice_per_class: Vec<f64>,
    /// Best mean Dice per finished fold.
    pub folds: BTreeMap<usize, f64>,
    /// Its bundles, by fold.
    pub bundles: BTreeMap<usize, String>,
}

/// The ranking file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ranking {
    /// How the score is made.
    pub score: String,
    /// Algorithms, best first.
    pub algos: Vec<RankedAlgo>,
    /// Trials left out (not finished, or no validation Dice), with their status.
    pub left_out: Vec<String>,
}

/// Ranks the algorithms of a work dir's ledger.
pub fn rank(work_dir: &Path) -> Result<Ranking, RankError> {
    let path = WorkDir::new(work_dir).trials();
    let bad = |reason: String| RankError::Ledger {
        path: path.clone(),
        reason,
    };
    let text = autoseg_datasets::textfile::read_text(&path)
        .map_err(|e| bad(format!("{e} (run `autoseg train --work-dir` first)")))?;
    let trials: Vec<LedgerTrial> =
        autoseg_datasets::textfile::from_yaml(&text).map_err(|e| bad(e.to_string()))?;
    let mut by_algo: BTreeMap<String, Vec<&LedgerTrial>> = BTreeMap::new();
    let mut left_out = Vec::new();
    for t in &trials {
        match t.best_dice {
            Some(_) if t.status == "finished" => by_algo.entry(t.algo.clone()).or_default().push(t),
            _ => left_out.push(format!("{} ({})", t.bundle, t.status)),
        }
    }
    let mut algos: Vec<RankedAlgo> = by_algo
        .into_iter()
        .map(|(algo, trials)| ranked(algo, &trials))
        .collect();
    algos.sort_by(|a, b| b.mean_dice.total_cmp(&a.mean_dice));
    for (i, a) in algos.iter_mut().enumerate() {
        a.rank = i + 1;
    }
    Ok(Ranking {
        score: "mean over finished folds of each fold's best mean validation Dice (foreground \
                classes, per-case means, sliding-window validation)"
            .into(),
        algos,
        left_out,
    })
}

fn ranked(algo: String, trials: &[&LedgerTrial]) -> RankedAlgo {
    let folds: BTreeMap<usize, f64> = trials
        .iter()
        .map(|t| (t.fold, t.best_dice.expect("finished trials with a Dice")))
        .collect();
    let classes = trials
        .iter()
        .filter_map(|t| t.dice_per_class.as_ref().map(Vec::len))
        .max()
        .unwrap_or(0);
    let dice_per_class = (0..classes)
        .map(|k| {
            let values: Vec<f64> = trials
                .iter()
                .filter_map(|t| t.dice_per_class.as_ref()?.get(k).copied())
                .filter(|d| !d.is_nan())
                .collect();
            values.iter().sum::<f64>() / values.len() as f64
        })
        .collect();
    RankedAlgo {
        rank: 0,
        mean_dice: folds.values().sum::<f64>() / folds.len() as f64,
        dice_per_class,
        folds,
        bundles: trials.iter().map(|t| (t.fold, t.bundle.clone())).collect(),
        algo,
    }
}

/// The work dir's ranking as `ranking.yaml` says, a user's edits included (an algorithm
/// deleted from it is not chosen; an edited Dice counts); ranked and written first when
/// there is no such file.
pub fn read_ranking(work_dir: &Path) -> Result<Ranking, RankError> {
    let path = WorkDir::new(work_dir).ranking();
    match autoseg_datasets::textfile::read_text(&path) {
        Ok(text) => autoseg_datasets::textfile::from_yaml(&text).map_err(|e| RankError::Ledger {
            path,
            reason: format!("{e} (`autoseg rank` writes it again)"),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => write_ranking(work_dir),
        Err(e) => Err(RankError::Ledger {
            path,
            reason: e.to_string(),
        }),
    }
}

/// Ranks and writes `ranking.yaml`, atomically.
pub fn write_ranking(work_dir: &Path) -> Result<Ranking, RankError> {
    let ranking = rank(work_dir)?;
    let path = WorkDir::new(work_dir).ranking();
    let text = serde_yaml::to_string(&ranking).expect("rankings serialise");
    autoseg_datasets::fsutil::write_bytes_atomic(&path, text.as_bytes())
        .map_err(|source| RankError::Write { path, source })?;
    Ok(ranking)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithms_rank_by_their_mean_over_finished_folds() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            WorkDir::new(dir.path()).trials(),
            "- {bundle: a_0, algo: a, fold: 0, status: finished, best_dice: 0.8, dice_per_class: [0.7, 0.9]}\n\
             - {bundle: a_1, algo: a, fold: 1, status: finished, best_dice: 0.6, dice_per_class: [0.5, .nan]}\n\
             - {bundle: b_0, algo: b, fold: 0, status: finished, best_dice: 0.75, dice_per_class: [0.7, 0.8]}\n\
             - {bundle: b_1, algo: b, fold: 1, status: partial, best_dice: 0.1, dice_per_class: null}\n",
        )
        .unwrap();
        let ranking = write_ranking(dir.path()).unwrap();
        let names: Vec<&str> = ranking.algos.iter().map(|a| a.algo.as_str()).collect();
        assert_eq!(names, ["b", "a"]);
        let a = &ranking.algos[1];
        assert!((a.mean_dice - 0.7).abs() < 1e-12);
        assert!((a.dice_per_class[0] - 0.6).abs() < 1e-12);
        assert_eq!(a.dice_per_class[1], 0.9);
        assert_eq!(ranking.left_out, ["b_1 (partial)"]);
        assert!(WorkDir::new(dir.path()).ranking().is_file());
    }
}
