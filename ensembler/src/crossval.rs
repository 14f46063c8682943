//! Choices made on cross-validation predictions: every bundle predicts its own fold's
//! validation cases, so each labelled case has one prediction per algorithm. On those,
//! algorithms are added to the ensemble greedily while the mean Dice rises (nnU-Net tries
//! pairs only); then the clean-ups ([`Cleanups`]) are kept only where they raise the Dice:
//! a dense CRF (on the mean Dice), and per class "keep the largest component"
//! (nnU-Net's `determine_postprocessing`) or else removing components smaller than a
//! fraction of the smallest true one. Those trials are counted from each case's components
//! labelled once ([`crate::cleanup_scores`]).
//!
//! The predictions are the ones training kept (`B/validation/`, predicted again only where
//! missing): read from their files case by case and channel by channel each time they are
//! used, so selection holds one channel per member of the cases in hand, not algorithms x
//! cases x classes x voxels.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use autoseg_datasets::regions::{Decoding, Targets, dice};
use autoseg_datasets::{Dataset, LabelVolume, Volume, WorkDir};
use autoseg_kernels::components::{Connectivity, label_components};
use autoseg_templates::ComputeDevice;
use autoseg_templates::bundle::data::DataConfig;
use autoseg_templates::bundle::read_config;
use autoseg_templates::bundle::runtime::BundlePredictor;
use autoseg_templates::bundle::validation;
use rayon::prelude::*;

use crate::cleanup::{Channels, Cleanups, crf_fits, size_thresholds};
use crate::cleanup_scores::ScoredCase;
use crate::error::EnsembleError;
use crate::rank::Ranking;

/// One validation case's reference and each algorithm's probabilities for it.
struct CaseOutputs {
    /// Class indices of the reference on the case's RAS grid.
    reference: Vec<u8>,
    /// The image's first channel on that grid (what a CRF is guided by), where a CRF can
    /// be tried; empty otherwise.
    image: Vec<f32>,
    dims: [usize; 3],
    /// Per algorithm, the file of its `[channels, voxels]` probabilities, kept in a
    /// bundle's `validation/` folder and read each time it is used, so selection never
    /// holds every case's probabilities.
    probabilities: BTreeMap<String, PathBuf>,
}

/// Adds `weight` times a kept file's probabilities (`channels` x `dims`) into `sum`.
fn add_kept(
    file: &Path,
    channels: usize,
    dims: [usize; 3],
    weight: f32,
    sum: &mut [f32],
) -> Result<(), EnsembleError> {
    match validation::add_into(file, channels, dims, weight, sum) {
        true => Ok(()),
        false => Err(damaged(file)),
    }
}

/// A kept file that no longer reads as it did when it was checked.
fn damaged(file: &Path) -> EnsembleError {
    bad(
        file,
        "kept validation probabilities were changed or damaged after they were checked: \
         run `autoseg ensemble` again"
            .into(),
    )
}

/// Cross-validation predictions of every fully trained algorithm.
pub struct CrossValidation {
    cases: Vec<CaseOutputs>,
    /// Probability channels per case (classes or regions) and how they decode.
    channels: Channels,
    /// What a Dice is taken of: each foreground class, or each region.
    targets: Targets,
    /// The class index of unannotated reference voxels, which no Dice counts.
    ignore: Option<u16>,
    /// The label id written for each decoded class.
    pub label_ids: Vec<u16>,
    /// The regions' names where the bundles train regions (empty for classes).
    pub region_names: Vec<String>,
    /// The algorithms, and their bundles by fold.
    pub algos: BTreeMap<String, BTreeMap<usize, String>>,
}

fn bad(path: &Path, reason: String) -> EnsembleError {
    EnsembleError::Config {
        path: path.to_path_buf(),
        reason,
    }
}

impl CrossValidation {
    /// Predicts every fold's validation cases with that fold's bundle of each algorithm in
    /// the ranking that finished every fold (on `device`).
    pub fn predict(
        work_dir: &Path,
        ranking: &Ranking,
        device: ComputeDevice,
    ) -> Result<CrossValidation, EnsembleError> {
        let folds_of = |a: &crate::rank::RankedAlgo| a.bundles.len();
        let most = ranking.algos.iter().map(folds_of).max().unwrap_or(0);
        let algos: BTreeMap<String, BTreeMap<usize, String>> = ranking
            .algos
            .iter()
            .filter(|a| folds_of(a) == most)
            .map(|a| (a.algo.clone(), a.bundles.clone()))
            .collect();
        let mut by_case: BTreeMap<(usize, usize), CaseOutputs> = BTreeMap::new();
        let mut channels = (0, Decoding::Argmax);
        let mut targets = Targets::Classes(0);
        let mut ignore = None;
        let mut label_ids = Vec::new();
        let mut region_names = Vec::new();
        for (algo, bundles) in &algos {
            for (&fold, name) in bundles {
                let bundle = WorkDir::new(work_dir).bundle(name).dir().to_path_buf();
                let predictor = BundlePredictor::load(&bundle, device)?;
                channels = (predictor.classes(), predictor.decoding());
                label_ids = predictor.label_ids().to_vec();
                let plan = &predictor.settings.preprocessing;
                targets = match &predictor.settings.regions {
                    None => Targets::Classes(predictor.classes()),
                    Some(regions) => Targets::regions(regions, &label_ids, &plan.labels),
                };
                region_names = (predictor.settings.regions.iter())
                    .flat_map(|r| r.names())
                    .map(str::to_string)
                    .collect();
                ignore = plan.ignore_class().map(u16::from);
                let (dataset, validation) = validation_cases(&bundle, fold)?;
                for index in validation {
                    let case = &dataset.cases[index];
                    let label_path = case.label.clone().ok_or_else(|| {
                        bad(&bundle, format!("validation case {} has no label", case.id))
                    })?;
                    let image = Volume::read_channels(&case.images)?.into_ras();
                    let entry = match by_case.entry((fold, index)) {
                        std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                        std::collections::btree_map::Entry::Vacant(v) => {
                            let reference = LabelVolume::read(&label_path)?
                                .into_onto(image.geometry())
                                .map_err(|m| bad(&label_path, m.to_string()))?;
                            let classes_of = reference
                                .data()
                                .iter()
                                .map(|&l| plan.class_of(l).unwrap_or(0))
                                .collect();
                            let crf_possible = predictor.decoding() == Decoding::Argmax
                                && crf_fits(
                                    image.dims().iter().product::<usize>() * predictor.classes(),
                                );
                            v.insert(CaseOutputs {
                                reference: classes_of,
                                image: match crf_possible {
                                    true => image.channel(0).to_vec(),
                                    false => Vec::new(),
                                },
                                dims: image.dims(),
                                probabilities: BTreeMap::new(),
                            })
                        }
                    };
                    let kept = predictor.kept_validation_probabilities(
                        &case.id,
                        &image,
                        &case.images[0],
                    )?;
                    entry.probabilities.insert(algo.clone(), kept);
                }
            }
        }
        Ok(CrossValidation {
            cases: by_case.into_values().collect(),
            channels,
            targets,
            ignore,
            label_ids,
            region_names,
            algos,
        })
    }

    /// Mean over cases of the mean foreground Dice of the averaged probabilities of
    /// `members`, after `cleanups`.
    pub fn dice(&self, members: &[String], cleanups: &Cleanups) -> Result<Vec<f64>, EnsembleError> {
        Ok(self.dice_of(&self.winners(members, cleanups)?, cleanups))
    }

    /// Per case, the class each voxel wins in the averaged probabilities of `members` (after
    /// the CRF where `cleanups` chooses it), before the component clean-ups. Without the CRF
    /// the classes are decoded a channel at a time, so a case's every channel is never held
    /// (the CRF is tried only where a case's channels fit, [`crf_fits`]).
    fn winners(
        &self,
        members: &[String],
        cleanups: &Cleanups,
    ) -> Result<Vec<Vec<u16>>, EnsembleError> {
        let weight = 1.0 / members.len().max(1) as f32;
        let channels = self.channels.0;
        let winners_of = |case: &CaseOutputs| {
            if !cleanups.crf {
                return self.decoded_mean(case, members, weight);
            }
            let mut mean = vec![0f32; case.reference.len() * channels];
            for m in members {
                add_kept(
                    &case.probabilities[m],
                    channels,
                    case.dims,
                    weight,
                    &mut mean,
                )?;
            }
            Ok(cleanups.winners(&mean, self.channels, &case.image, case.dims))
        };
        self.cases.par_iter().map(winners_of).collect()
    }

    /// The classes decoded from `weight` times the sum of `members`' kept probabilities
    /// of `case`, a channel at a time: one channel of each member's file in hand.
    fn decoded_mean(
        &self,
        case: &CaseOutputs,
        members: &[String],
        weight: f32,
    ) -> Result<Vec<u16>, EnsembleError> {
        let (channels, decoding) = self.channels;
        let files: Vec<&PathBuf> = members.iter().map(|m| &case.probabilities[m]).collect();
        let mut kept = Vec::with_capacity(files.len());
        for file in &files {
            let reader = validation::KeptChannels::open(file, channels, case.dims);
            kept.push(reader.ok_or_else(|| damaged(file))?);
        }
        let mut decoder = decoding.start(case.reference.len());
        let mut mean = vec![0f32; case.reference.len()];
        for k in 0..channels {
            mean.fill(0.0);
            for (reader, file) in kept.iter_mut().zip(&files) {
                if !reader.add_next(weight, &mut mean) {
                    return Err(damaged(file));
                }
            }
            decoder.offer(k, &mean);
        }
        for (reader, file) in kept.into_iter().zip(&files) {
            if !reader.ends() {
                return Err(damaged(file));
            }
        }
        Ok(decoder.classes().into_iter().map(u16::from).collect())
    }

    /// [`Self::dice`] from the cases' `winners`, after the component clean-ups.
    fn dice_of(&self, winners: &[Vec<u16>], cleanups: &Cleanups) -> Vec<f64> {
        let per_case = self.cases.iter().zip(winners).map(|(case, winners)| {
            let mut predicted = winners.clone();
            cleanups.apply(&mut predicted, case.dims);
            self.outcomes(case, &predicted)
        });
        self.mean_dice(per_case)
    }

    /// The outcomes (TP, FP, FN) per target of `predicted` on `case`.
    fn outcomes(&self, case: &CaseOutputs, predicted: &[u16]) -> Vec<(u64, u64, u64)> {
        let reference: Vec<u16> = case.reference.iter().map(|&c| c as u16).collect();
        self.targets.outcomes(predicted, &reference, self.ignore)
    }

    /// Per target, the mean Dice over the cases whose outcomes define it.
    fn mean_dice(&self, per_case: impl Iterator<Item = Vec<(u64, u64, u64)>>) -> Vec<f64> {
        let mut sums = vec![(0.0, 0usize); self.targets.count()];
        for outcomes in per_case {
            for (sum, outcome) in sums.iter_mut().zip(outcomes) {
                let d = dice(outcome);
                if !d.is_nan() {
                    sum.0 += d;
                    sum.1 += 1;
                }
            }
        }
        sums.into_iter()
            .map(|(s, n)| if n == 0 { f64::NAN } else { s / n as f64 })
            .collect()
    }

    /// How clean-ups of the component kind score on `winners`: counted from each case's
    /// components labelled once ([`ScoredCase`]) where the channels are classes, applied to
    /// the volumes where they are regions (decoded regions are written as other classes).
    fn scorer<'a>(&'a self, winners: &'a [Vec<u16>]) -> impl Fn(&Cleanups) -> Vec<f64> + 'a {
        let scored: Option<Vec<ScoredCase>> = (self.channels.1 == Decoding::Argmax).then(|| {
            (self.cases.par_iter().zip(winners))
                .map(|(case, w)| {
                    let outcomes = self.outcomes(case, w);
                    ScoredCase::new(w, &case.reference, case.dims, outcomes, self.ignore)
                })
                .collect()
        });
        move |cleanups| match &scored {
            Some(cases) => self.mean_dice(cases.iter().map(|c| c.outcomes(cleanups))),
            None => self.dice_of(winners, cleanups),
        }
    }

    /// Greedy forward selection: the best algorithm alone, then whichever addition raises
    /// the mean Dice most, while one does. Returns the chosen algorithms and their Dice.
    pub fn greedy(&self) -> Result<(Vec<String>, f64), EnsembleError> {
        let mut chosen: Vec<String> = Vec::new();
        let mut best = f64::NEG_INFINITY;
        loop {
            let mut best_trial: Option<(String, f64)> = None;
            for a in self.algos.keys().filter(|a| !chosen.contains(a)) {
                let mut with = chosen.clone();
                with.push(a.clone());
                let score = mean(&self.dice(&with, &Cleanups::default())?);
                if best_trial.as_ref().is_none_or(|(_, s)| score > *s) {
                    best_trial = Some((a.clone(), score));
                }
            }
            match best_trial {
                Some((algo, score)) if score > best => {
                    chosen.push(algo);
                    best = score;
                }
                _ => return Ok((chosen, best)),
            }
        }
    }

    /// First the CRF, kept when it raises the mean Dice (tried where every case is small
    /// enough, [`crf_fits`]). Then nnU-Net's per-class rule: keep the largest component of a
    /// class when that raises its Dice on the cross-validation predictions of `members`. Then,
    /// for each class left, the size threshold ([`size_thresholds`] of its smallest true
    /// component) that raises its Dice most, if one does.
    pub fn postprocessing(&self, members: &[String]) -> Result<Cleanups, EnsembleError> {
        let mut chosen = Cleanups::default();
        let mut winners = self.winners(members, &chosen)?;
        let mut current = self.dice_of(&winners, &chosen);
        let fits = |c: &CaseOutputs| crf_fits(c.reference.len() * self.channels.0);
        // A CRF weighs exclusive classes: region channels are not tried.
        if self.channels.1 == Decoding::Argmax && self.cases.iter().all(fits) {
            let refined = Cleanups {
                crf: true,
                ..Cleanups::default()
            };
            let refined_winners = self.winners(members, &refined)?;
            let with = self.dice_of(&refined_winners, &refined);
            if mean(&with) > mean(&current) {
                (chosen, winners, current) = (refined, refined_winners, with);
            }
        }
        let classes = self.channels.1.class_count(self.channels.0);
        let dice_of = self.scorer(&winners);
        for class in 1..classes as u8 {
            let mut trial = chosen.clone();
            trial.keep_largest.push(class);
            let with = dice_of(&trial);
            let k = class as usize - 1;
            if with[k] > current[k] {
                (chosen, current) = (trial, with);
            }
        }
        // Sizes of true components are known by reference class; decoded regions are
        // written as other classes, so only the largest component is tried for them.
        if self.channels.1 == Decoding::Regions {
            return Ok(chosen);
        }
        let smallest = self.smallest_true_components();
        for class in 1..classes as u8 {
            let Some(size) = smallest[class as usize] else {
                continue;
            };
            if chosen.keep_largest.contains(&class) {
                continue;
            }
            let k = class as usize - 1;
            // Each threshold is tried on the clean-ups chosen so far; the best one stays.
            let base = chosen.clone();
            for min_size in size_thresholds(size) {
                let mut trial = base.clone();
                trial.remove_small.push((class, min_size));
                let with = dice_of(&trial);
                if with[k] > current[k] {
                    (chosen, current) = (trial, with);
                }
            }
        }
        Ok(chosen)
    }

    /// Per class index, the voxel count of the smallest 26-connected component in any
    /// reference (`None` where no reference has the class). Unannotated voxels cut a
    /// sparsely labelled class into pieces, so its components are smaller than the truth's:
    /// size thresholds err on the side of keeping.
    fn smallest_true_components(&self) -> Vec<Option<u64>> {
        let mut smallest = vec![None; self.channels.0];
        for case in &self.cases {
            let reference: Vec<u16> = case.reference.iter().map(|&c| c as u16).collect();
            let components = label_components(&reference, case.dims, Connectivity::TwentySix);
            for c in components.components {
                if Some(c.class) == self.ignore {
                    continue; // unannotated voxels, no class
                }
                let slot: &mut Option<u64> = &mut smallest[c.class as usize];
                *slot = Some(slot.map_or(c.size, |s| s.min(c.size)));
            }
        }
        smallest
    }
}

fn mean(values: &[f64]) -> f64 {
    let defined: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    defined.iter().sum::<f64>() / defined.len().max(1) as f64
}

/// The dataset a bundle trains on and the indices of its fold's validation cases, split as
/// training splits them.
pub(crate) fn validation_cases(
    bundle: &Path,
    fold: usize,
) -> Result<(Dataset, Vec<usize>), EnsembleError> {
    let merged = read_config(bundle)?;
    let data: DataConfig = merged.section(bundle, "data")?;
    let (dataset, folds) = data.open(bundle)?;
    Ok((dataset, folds.validation(fold)))
}

#[cfg(test)]
mod tests;
