//! Ensembles of trained bundles: which members (from the ranking), how their outputs
//! combine (mean of probabilities, or a majority vote), written to
//! `W/ensemble/ensemble.yaml`; and the predictor that loads each member once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use autoseg_datasets::regions::Decoding;
use autoseg_datasets::{Volume, WorkDir};
use autoseg_templates::ComputeDevice;
use autoseg_templates::bundle::BundleError;
use autoseg_templates::bundle::runtime::{BundlePredictor, Segmenter};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::cleanup::{Channels, Cleanups, crf_fits};
use crate::combine;
use crate::crossval::CrossValidation;
pub use crate::error::EnsembleError;
use crate::rank::{Ranking, read_ranking};

/// How members are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Selection {
    /// For each fold, the bundle of the algorithm best on that fold (Auto3DSeg's default).
    BestByFold,
    /// The `n` bundles with the best validation Dice, whatever their algorithm and fold.
    BestN {
        /// Members.
        n: usize,
    },
    /// Algorithms added one at a time while the mean Dice of the averaged cross-validation
    /// predictions rises; every fold's bundle of each chosen algorithm is a member, and the
    /// clean-ups (a dense CRF; per class keep-largest-component or remove-small-components)
    /// are kept where they help.
    Greedy,
}

/// How members' outputs combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Combine {
    /// The mean of the members' class probabilities, then the most probable class.
    Mean,
    /// Each member's most probable class, then the class most members chose.
    Vote,
}

/// `W/ensemble/ensemble.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsembleConfig {
    /// How members were chosen.
    pub selection: Selection,
    /// How their outputs combine.
    pub combine: Combine,
    /// The member bundles, relative to the work dir, with their validation Dice.
    pub members: Vec<Member>,
    /// Refine the probabilities by a dense CRF guided by the image (MONAI's `CRF` defaults)
    /// before the argmax (cross-validation showed it helps).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub crf: bool,
    /// Label ids whose largest component alone is kept (cross-validation showed it helps).
    #[serde(default)]
    pub keep_largest: Vec<u16>,
    /// Label id -> voxel count: that label's components smaller than it become background
    /// (cross-validation showed it helps; counted on the image's own grid).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub remove_small: BTreeMap<u16, u64>,
    /// The ensemble's mean Dice on the cross-validation predictions, when measured.
    #[serde(default)]
    pub cross_validation_dice: Option<f64>,
    /// The same per label id (foreground classes; NaN where no case has the class), with
    /// the chosen clean-ups applied.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cross_validation_dice_per_class: BTreeMap<u16, f64>,
    /// The same per region, in the bundles' order, where the bundles train regions (the
    /// per-class figures are then left out).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cross_validation_dice_per_region: Vec<RegionDice>,
}

/// A region's cross-validation Dice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionDice {
    /// The region's name.
    pub region: String,
    /// Its Dice (NaN where no case has it).
    pub dice: f64,
}

impl EnsembleConfig {
    /// The chosen clean-ups in words, for the CLI and the report.
    pub fn describe_cleanups(&self) -> String {
        let mut text = format!("largest component kept for labels {:?}", self.keep_largest);
        if self.crf {
            text = format!("a dense CRF, then {text}");
        }
        if !self.remove_small.is_empty() {
            let sizes: Vec<String> = (self.remove_small.iter())
                .map(|(label, size)| format!("label {label} under {size} voxels"))
                .collect();
            text += &format!("; small components removed: {}", sizes.join(", "));
        }
        text
    }
}

/// One member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// Its bundle, relative to the work dir.
    pub bundle: PathBuf,
    /// Its best validation Dice.
    pub dice: f64,
}

/// Chooses members from a ranking.
pub fn select(ranking: &Ranking, selection: Selection) -> Vec<Member> {
    let mut all: Vec<(usize, Member)> = ranking
        .algos
        .iter()
        .flat_map(|a| {
            a.folds.iter().map(|(fold, dice)| {
                let bundle = WorkDir::bundle_relative(&a.bundles[fold]);
                (
                    *fold,
                    Member {
                        bundle,
                        dice: *dice,
                    },
                )
            })
        })
        .collect();
    all.sort_by(|a, b| b.1.dice.total_cmp(&a.1.dice));
    match selection {
        Selection::BestN { n } => all.into_iter().take(n).map(|(_, m)| m).collect(),
        Selection::Greedy => unreachable!("greedy selection needs cross-validation predictions"),
        Selection::BestByFold => {
            let mut seen = std::collections::BTreeSet::new();
            let mut members: Vec<(usize, Member)> = all
                .into_iter()
                .filter(|(fold, _)| seen.insert(*fold))
                .collect();
            members.sort_by_key(|(fold, _)| *fold);
            members.into_iter().map(|(_, m)| m).collect()
        }
    }
}

/// Chooses members from the work dir's ranking ([`read_ranking`]: `ranking.yaml`, ranked
/// first if missing) and writes the ensemble file. Greedy selection predicts the
/// cross-validation cases on `device` first.
pub fn write_ensemble(
    work_dir: &Path,
    selection: Selection,
    combine: Combine,
    device: ComputeDevice,
) -> Result<EnsembleConfig, EnsembleError> {
    let path = WorkDir::new(work_dir).ensemble();
    let ranking = read_ranking(work_dir)?;
    if ranking.algos.is_empty() {
        return Err(nothing_ranked(work_dir, &ranking));
    }
    let Choice {
        members,
        crf,
        keep_largest,
        remove_small,
        cross_validation_dice,
        per_class,
        per_region,
    } = match selection {
        Selection::Greedy => greedy(work_dir, &ranking, device)?,
        _ => Choice {
            members: select(&ranking, selection),
            crf: false,
            keep_largest: Vec::new(),
            remove_small: BTreeMap::new(),
            cross_validation_dice: None,
            per_class: BTreeMap::new(),
            per_region: Vec::new(),
        },
    };
    if members.is_empty() {
        return Err(EnsembleError::Config {
            path,
            reason: "no finished trial to choose from (run `autoseg train --work-dir`)".into(),
        });
    }
    let config = EnsembleConfig {
        selection,
        combine,
        members,
        crf,
        keep_largest,
        remove_small,
        cross_validation_dice,
        cross_validation_dice_per_class: per_class,
        cross_validation_dice_per_region: per_region,
    };
    let text = serde_yaml::to_string(&config).expect("ensembles serialise");
    autoseg_datasets::fsutil::write_bytes_atomic(&path, text.as_bytes()).map_err(|e| {
        EnsembleError::Config {
            path: path.clone(),
            reason: e.to_string(),
        }
    })?;
    Ok(config)
}

/// The error of a ranking with no algorithm: which trials were left out, and how they
/// stand (a run whose every trial failed or was stopped before its first validation ends
/// here, not in a selection over nothing).
fn nothing_ranked(work_dir: &Path, ranking: &Ranking) -> EnsembleError {
    let left_out = match ranking.left_out.is_empty() {
        true => "no trial at all".to_string(),
        false => format!("left out: {}", ranking.left_out.join(", ")),
    };
    EnsembleError::Config {
        path: WorkDir::new(work_dir).ranking(),
        reason: format!(
            "no trial finished with a validation Dice, so there is nothing to ensemble \
             ({left_out}; trials.yaml says why; run `autoseg train --work-dir` to finish them)"
        ),
    }
}

/// What a selection chose.
struct Choice {
    members: Vec<Member>,
    crf: bool,
    keep_largest: Vec<u16>,
    remove_small: BTreeMap<u16, u64>,
    cross_validation_dice: Option<f64>,
    per_class: BTreeMap<u16, f64>,
    per_region: Vec<RegionDice>,
}

/// Greedy selection on cross-validation predictions: the members (every fold's bundle of
/// the chosen algorithms), the labels to keep the largest component of, and the Dice.
fn greedy(
    work_dir: &Path,
    ranking: &Ranking,
    device: ComputeDevice,
) -> Result<Choice, EnsembleError> {
    let cv = CrossValidation::predict(work_dir, ranking, device)?;
    let (chosen, _) = cv.greedy()?;
    let kept = cv.postprocessing(&chosen)?;
    let dice = cv.dice(&chosen, &kept)?;
    let defined: Vec<f64> = dice.iter().copied().filter(|d| !d.is_nan()).collect();
    let mean = defined.iter().sum::<f64>() / defined.len().max(1) as f64;
    let members = ranking
        .algos
        .iter()
        .filter(|a| chosen.contains(&a.algo))
        .flat_map(|a| {
            a.bundles.iter().map(|(fold, name)| Member {
                bundle: WorkDir::bundle_relative(name),
                dice: a.folds[fold],
            })
        })
        .collect();
    Ok(Choice {
        members,
        crf: kept.crf,
        keep_largest: kept
            .keep_largest
            .iter()
            .map(|&k| cv.label_ids[k as usize])
            .collect(),
        remove_small: kept
            .remove_small
            .iter()
            .map(|&(k, size)| (cv.label_ids[k as usize], size))
            .collect(),
        cross_validation_dice: Some(mean),
        per_class: match cv.region_names.is_empty() {
            // skip(1): the background.
            true => (cv.label_ids.iter().skip(1))
                .copied()
                .zip(dice.clone())
                .collect(),
            false => BTreeMap::new(),
        },
        per_region: (cv.region_names.iter().zip(dice))
            .map(|(region, dice)| RegionDice {
                region: region.clone(),
                dice,
            })
            .collect(),
    })
}

/// The work dir's `ensemble.yaml`.
pub fn read_ensemble(work_dir: &Path) -> Result<EnsembleConfig, EnsembleError> {
    let path = WorkDir::new(work_dir).ensemble();
    let bad = |reason: String| EnsembleError::Config {
        path: path.clone(),
        reason,
    };
    let text = autoseg_datasets::textfile::read_text(&path)
        .map_err(|e| bad(format!("{e} (run `autoseg ensemble` first)")))?;
    autoseg_datasets::textfile::from_yaml(&text).map_err(|e| bad(e.to_string()))
}

/// An ensemble, its members loaded once.
pub struct EnsemblePredictor {
    /// The ensemble's file.
    pub config: EnsembleConfig,
    members: Vec<BundlePredictor>,
}

impl EnsemblePredictor {
    /// Loads the work dir's ensemble onto `device`; the members must share their classes.
    pub fn load(
        work_dir: &Path,
        device: ComputeDevice,
    ) -> Result<EnsemblePredictor, EnsembleError> {
        let config = read_ensemble(work_dir)?;
        let bad = |reason: String| EnsembleError::Config {
            path: WorkDir::new(work_dir).ensemble(),
            reason,
        };
        let members = config
            .members
            .iter()
            .map(|m| BundlePredictor::load(&work_dir.join(&m.bundle), device))
            .collect::<Result<Vec<_>, _>>()?;
        let Some(first) = members.first() else {
            return Err(bad("no members".into()));
        };
        let regions = |m: &BundlePredictor| m.settings.regions.clone();
        if let Some(odd) = members.iter().find(|m| regions(m) != regions(first)) {
            return Err(bad(format!(
                "{} and {} output different regions (or one classes, the other regions)",
                odd.bundle.display(),
                first.bundle.display()
            )));
        }
        if first.decoding() == Decoding::Regions && config.combine == Combine::Vote {
            return Err(bad(
                "combine: vote counts each member's classes, which region bundles do not \
                 output one by one; combine them by `mean` of their sigmoid probabilities \
                 (as nnU-Net ensembles regions)"
                    .into(),
            ));
        }
        if let Some(odd) = members.iter().find(|m| m.label_ids() != first.label_ids()) {
            return Err(bad(format!(
                "{} predicts labels {:?}, {} predicts {:?}",
                odd.bundle.display(),
                odd.label_ids(),
                first.bundle.display(),
                first.label_ids()
            )));
        }
        Ok(EnsemblePredictor { config, members })
    }
}

/// A member's probability channels and how they decode.
fn channels_of(member: &BundlePredictor) -> Channels {
    (member.classes(), member.decoding())
}

impl EnsemblePredictor {
    /// The clean-ups cross-validation chose, by class index.
    fn cleanups(&self, label_ids: &[u16]) -> Cleanups {
        let class_of = |label: &u16| label_ids.iter().position(|l| l == label).map(|k| k as u8);
        Cleanups {
            crf: self.config.crf,
            keep_largest: (self.config.keep_largest.iter())
                .filter_map(class_of)
                .collect(),
            remove_small: (self.config.remove_small.iter())
                .filter_map(|(label, &size)| Some((class_of(label)?, size)))
                .collect(),
        }
    }
}

impl Segmenter for EnsemblePredictor {
    /// The members' mean probabilities, or under `vote` each class's share of the votes.
    fn ras_probabilities(&self, ras: &Volume, path: &Path) -> Result<Vec<f32>, BundleError> {
        let classes = self.members[0].classes();
        let outputs = self
            .members
            .par_iter()
            .map(|m| m.bundle_probabilities(ras, path))
            .collect::<Result<Vec<_>, _>>()?;
        let n = outputs[0].len();
        let mut combined = vec![0f32; n];
        for output in &outputs {
            match self.config.combine {
                Combine::Mean => combined.iter_mut().zip(output).for_each(|(c, p)| *c += p),
                Combine::Vote => {
                    let voxels = n / classes;
                    let winners = Decoding::Argmax.classes(output, classes);
                    for (v, k) in winners.into_iter().enumerate() {
                        combined[k as usize * voxels + v] += 1.0;
                    }
                }
            }
        }
        let members = outputs.len() as f32;
        combined.iter_mut().for_each(|c| *c /= members);
        Ok(combined)
    }

    fn classes_from(&self, probabilities: &[f32], ras: &Volume) -> Vec<u8> {
        let first = &self.members[0];
        let cleanups = self.cleanups(first.label_ids());
        if cleanups.crf && !crf_fits(probabilities.len()) {
            eprintln!(
                "warning: an image of {:?} voxels is too large for the CRF the ensemble chose; \
                 predicting without it",
                ras.dims()
            );
        }
        let classes = cleanups.classes_of(
            probabilities,
            channels_of(first),
            ras.channel(0),
            ras.dims(),
        );
        classes.into_iter().map(|c| c as u8).collect()
    }

    /// Without the CRF (which needs every class at once), one class at a time on the
    /// image's grid (`combine`), then the component clean-ups.
    fn ras_classes(&self, ras: &Volume, path: &Path) -> Result<Vec<u8>, BundleError> {
        let cleanups = self.cleanups(self.members[0].label_ids());
        if cleanups.crf {
            return Ok(self.classes_from(&self.ras_probabilities(ras, path)?, ras));
        }
        let classes = match self.config.combine {
            Combine::Mean => combine::mean_classes(&self.members, ras, path)?,
            Combine::Vote => combine::vote_classes(&self.members, ras, path)?,
        };
        let mut labels: Vec<u16> = classes.into_iter().map(u16::from).collect();
        cleanups.apply(&mut labels, ras.dims());
        Ok(labels.into_iter().map(|c| c as u8).collect())
    }

    fn label_ids(&self) -> &[u16] {
        self.members[0].label_ids()
    }

    fn channels(&self) -> usize {
        self.members[0].classes()
    }

    fn describe(&self) -> String {
        let names: Vec<String> = self
            .config
            .members
            .iter()
            .map(|m| m.bundle.display().to_string())
            .collect();
        format!(
            "an ensemble ({:?}) of {}",
            self.config.combine,
            names.join(", ")
        )
    }
}

#[cfg(test)]
mod tests;
