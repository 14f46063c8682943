//! Cross-validation folds: from the datalist's `fold` keys, from its `validation` list, or a
//! seeded K-fold split that can keep groups (a patient's scans) inside one fold. `generate`
//! plans them once and writes them to the work dir (`folds.yaml`, [`FoldsFile`]); training,
//! cross-validation and the report read that file, so they agree by construction and a
//! user's edit of it takes effect.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::datalist::{Dataset, Split};
use crate::error::DatasetError;
use crate::rng::Rng;

/// Where a fold plan came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FoldSource {
    /// Every labelled item carried a `fold` key.
    DatalistKeys,
    /// The datalist's `validation` list is the one validation fold (Auto3DSeg's rule).
    ValidationList,
    /// A seeded K-fold split, optionally over groups.
    KFold {
        /// The shuffle seed.
        seed: u64,
        /// The datalist key whose value groups cases.
        group_key: Option<String>,
    },
    /// A split file ([`FoldsFile`]).
    File(PathBuf),
}

/// How to split when the datalist does not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldOptions {
    /// Number of folds (5, as Auto3DSeg and nnU-Net default).
    pub num_folds: usize,
    /// Shuffle seed.
    pub seed: u64,
    /// Datalist key (e.g. a patient id) whose cases must share a fold.
    pub group_key: Option<String>,
}

impl Default for FoldOptions {
    fn default() -> Self {
        FoldOptions {
            num_folds: 5,
            seed: 0,
            group_key: None,
        }
    }
}

/// A fold for every labelled case of a [`Dataset`] (in `Dataset::cases` order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folds {
    /// Number of folds.
    pub num_folds: usize,
    /// The fold each case validates in; `None`: always trained on.
    pub assignment: Vec<Option<usize>>,
    /// Where the plan came from.
    pub source: FoldSource,
}

impl Folds {
    /// Folds for `dataset`: its `fold` keys if every labelled item has one, else its
    /// `validation` list, else a K-fold split with `options`.
    pub fn plan(dataset: &Dataset, options: &FoldOptions) -> Result<Folds, DatasetError> {
        let cases = &dataset.cases;
        let with_fold = cases.iter().filter(|c| c.fold.is_some()).count();
        if with_fold > 0 {
            if with_fold < cases.len() {
                let missing = cases.iter().find(|c| c.fold.is_none()).unwrap();
                return Err(DatasetError::Folds(format!(
                    "{} has no `fold` while other items do",
                    missing.locator()
                )));
            }
            return Folds::from_keys(cases.iter().map(|c| c.fold.unwrap()).collect());
        }
        if cases.iter().any(|c| c.split == Split::Validation) {
            let assignment = cases
                .iter()
                .map(|c| (c.split == Split::Validation).then_some(0))
                .collect();
            return Ok(Folds {
                num_folds: 1,
                assignment,
                source: FoldSource::ValidationList,
            });
        }
        let groups = match &options.group_key {
            None => (0..cases.len()).map(|i| i.to_string()).collect(),
            Some(key) => cases
                .iter()
                .map(|c| match c.extra.get(key) {
                    Some(serde_json::Value::String(s)) => Ok(s.clone()),
                    Some(v) if !v.is_null() => Ok(v.to_string()),
                    _ => Err(DatasetError::Folds(format!(
                        "{} has no `{key}` to group by",
                        c.locator()
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        let mut folds = Folds::grouped_kfold(&groups, options.num_folds, options.seed)?;
        folds.source = FoldSource::KFold {
            seed: options.seed,
            group_key: options.group_key.clone(),
        };
        Ok(folds)
    }

    fn from_keys(folds: Vec<usize>) -> Result<Folds, DatasetError> {
        // Every fold from 0 to the largest needs a case. Only folds up to the case count are
        // searched: n cases cannot fill n + 1 folds, so a gap is found there, and a huge fold
        // number is never counted up to (nor wraps the count to zero).
        let largest = *folds.iter().max().unwrap();
        let searched = largest.min(folds.len());
        if let Some(empty) = (0..=searched).find(|f| !folds.contains(f)) {
            return Err(DatasetError::Folds(format!(
                "fold {empty} has no cases (folds must run 0..{largest}, each with a case)"
            )));
        }
        let num_folds = largest + 1;
        Ok(Folds {
            num_folds,
            assignment: folds.into_iter().map(Some).collect(),
            source: FoldSource::DatalistKeys,
        })
    }

    /// K folds over cases labelled by group: groups are shuffled by `seed`, then placed
    /// largest first into the fold with the fewest cases, so no group spans two folds and fold
    /// sizes differ by at most the largest group. Without repeated groups this is a shuffled
    /// K-fold split with sizes differing by at most one.
    pub fn grouped_kfold(groups: &[String], k: usize, seed: u64) -> Result<Folds, DatasetError> {
        let mut members: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, g) in groups.iter().enumerate() {
            members.entry(g).or_default().push(i);
        }
        if k < 2 || k > members.len() {
            let what = if members.len() == groups.len() {
                "cases"
            } else {
                "groups"
            };
            return Err(DatasetError::Folds(format!(
                "cannot make {k} folds from {} {what}: need 2 to {0}",
                members.len()
            )));
        }
        let mut order: Vec<Vec<usize>> = members.into_values().collect();
        Rng::new(seed).shuffle(&mut order);
        order.sort_by_key(|m| std::cmp::Reverse(m.len())); // stable: ties keep the shuffled order
        let mut sizes = vec![0usize; k];
        let mut assignment = vec![None; groups.len()];
        for group in order {
            let fold = (0..k).min_by_key(|&f| sizes[f]).unwrap();
            sizes[fold] += group.len();
            for i in group {
                assignment[i] = Some(fold);
            }
        }
        Ok(Folds {
            num_folds: k,
            assignment,
            source: FoldSource::KFold {
                seed,
                group_key: None,
            },
        })
    }

    /// Case indices validated in `fold`.
    pub fn validation(&self, fold: usize) -> Vec<usize> {
        (0..self.assignment.len())
            .filter(|&i| self.assignment[i] == Some(fold))
            .collect()
    }

    /// Case indices trained on in `fold`.
    pub fn training(&self, fold: usize) -> Vec<usize> {
        (0..self.assignment.len())
            .filter(|&i| self.assignment[i] != Some(fold))
            .collect()
    }
}

/// The split as a file: each labelled case's fold by case id (`null`: always trained on).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FoldsFile {
    /// Number of folds.
    pub num_folds: usize,
    /// How the split was made, in words.
    pub source: String,
    /// Case id -> the fold it validates in.
    pub cases: BTreeMap<String, Option<usize>>,
}

const FOLDS_HEADER: &str = "# The cross-validation split, planned once by `autoseg generate` and read by \
training,\n# cross-validation and the report. Move a case by editing its fold (null: always \
trained on).\n";

impl Folds {
    /// The split of `dataset`'s cases as a file.
    pub fn to_file(&self, dataset: &Dataset) -> FoldsFile {
        let source = match &self.source {
            FoldSource::DatalistKeys => "the datalist's `fold` keys".to_string(),
            FoldSource::ValidationList => "the datalist's `validation` list".to_string(),
            FoldSource::KFold { seed, group_key } => match group_key {
                Some(key) => format!("seeded K-fold (seed {seed}), cases grouped by `{key}`"),
                None => format!("seeded K-fold (seed {seed})"),
            },
            FoldSource::File(path) => format!("{}", path.display()),
        };
        FoldsFile {
            num_folds: self.num_folds,
            source,
            cases: (dataset.cases.iter().map(|c| c.id.clone()))
                .zip(self.assignment.iter().copied())
                .collect(),
        }
    }

    /// Writes the split of `dataset` to `path`, atomically.
    pub fn write(&self, dataset: &Dataset, path: &Path) -> Result<(), DatasetError> {
        let body = serde_yaml::to_string(&self.to_file(dataset)).expect("splits serialise");
        crate::fsutil::write_bytes_atomic(path, format!("{FOLDS_HEADER}{body}").as_bytes()).map_err(
            |source| DatasetError::Io {
                path: path.to_path_buf(),
                source,
            },
        )
    }

    /// Reads a split file for `dataset`: every labelled case must be in it, and nothing else.
    pub fn read(path: &Path, dataset: &Dataset) -> Result<Folds, DatasetError> {
        let fail = |reason: String| DatasetError::Folds(format!("{}: {reason}", path.display()));
        let text = crate::textfile::read_text(path).map_err(|source| DatasetError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let file: FoldsFile = crate::textfile::from_yaml(&text).map_err(|e| fail(e.to_string()))?;
        let mut assignment = Vec::with_capacity(dataset.cases.len());
        for case in &dataset.cases {
            let fold = *file.cases.get(&case.id).ok_or_else(|| {
                fail(format!(
                    "case {} ({}) is not in the split: `autoseg generate --force` plans it again",
                    case.id,
                    case.locator()
                ))
            })?;
            if let Some(f) = fold.filter(|&f| f >= file.num_folds) {
                return Err(fail(format!(
                    "case {} is in fold {f}, but num_folds is {}",
                    case.id, file.num_folds
                )));
            }
            assignment.push(fold);
        }
        if file.cases.len() != dataset.cases.len() {
            let known: std::collections::BTreeSet<&str> =
                dataset.cases.iter().map(|c| c.id.as_str()).collect();
            let stray = file.cases.keys().find(|id| !known.contains(id.as_str()));
            return Err(fail(format!(
                "case {} is not a labelled case of the datalist",
                stray.map_or("?", String::as_str)
            )));
        }
        Ok(Folds {
            num_folds: file.num_folds,
            assignment,
            source: FoldSource::File(path.to_path_buf()),
        })
    }

    /// The split kept at `path`: the file's when it covers exactly `dataset`'s labelled
    /// cases in as many folds as planning would make (a user's edits stay), else planned
    /// with `options` and written there. Says whether it was written.
    pub fn plan_once(
        path: &Path,
        dataset: &Dataset,
        options: &FoldOptions,
    ) -> Result<(Folds, bool), DatasetError> {
        let kept = Folds::read(path, dataset).ok();
        match (kept, Folds::plan(dataset, options)) {
            // A fitting file stays, also where planning could not (e.g. no group key).
            (Some(kept), Ok(planned)) if kept.num_folds == planned.num_folds => Ok((kept, false)),
            (Some(kept), Err(_)) => Ok((kept, false)),
            (_, Ok(planned)) => {
                planned.write(dataset, path)?;
                Ok((planned, true))
            }
            (None, Err(e)) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datalist::Datalist;

    fn plan_error(dataset: &Dataset) -> String {
        Folds::plan(dataset, &FoldOptions::default())
            .unwrap_err()
            .to_string()
    }

    fn dataset(json: &str) -> Dataset {
        Dataset::new(
            Datalist::parse(json, Path::new("d.json")).unwrap(),
            Path::new("/r"),
            false,
        )
        .unwrap()
    }

    #[test]
    fn kfold_is_balanced_seeded_and_covers_every_case_once() {
        let groups: Vec<String> = (0..23).map(|i| i.to_string()).collect();
        let a = Folds::grouped_kfold(&groups, 5, 1).unwrap();
        assert_eq!(a, Folds::grouped_kfold(&groups, 5, 1).unwrap());
        assert_ne!(
            a.assignment,
            Folds::grouped_kfold(&groups, 5, 2).unwrap().assignment
        );
        let sizes: Vec<usize> = (0..5).map(|f| a.validation(f).len()).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 23);
        assert!(
            sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1,
            "{sizes:?}"
        );
        assert!(a.validation(0).iter().all(|i| !a.training(0).contains(i)));
    }

    #[test]
    fn groups_never_span_folds() {
        let groups: Vec<String> = (0..40).map(|i| format!("patient{}", i % 13)).collect();
        let folds = Folds::grouped_kfold(&groups, 4, 7).unwrap();
        for (i, gi) in groups.iter().enumerate() {
            for (j, gj) in groups.iter().enumerate() {
                if gi == gj {
                    assert_eq!(folds.assignment[i], folds.assignment[j]);
                }
            }
        }
        assert!(
            Folds::grouped_kfold(&groups, 14, 0)
                .unwrap_err()
                .to_string()
                .contains("13 groups")
        );
    }

    #[test]
    fn datalist_folds_and_validation_lists_win() {
        let keyed = dataset(
            r#"{"training": [{"image": "a", "label": "l", "fold": 0}, {"image": "b", "label": "l", "fold": 1}]}"#,
        );
        let folds = Folds::plan(&keyed, &FoldOptions::default()).unwrap();
        assert_eq!(
            (folds.num_folds, folds.source),
            (2, FoldSource::DatalistKeys)
        );
        let gap = dataset(
            r#"{"training": [{"image": "a", "label": "l", "fold": 0}, {"image": "b", "label": "l", "fold": 2}]}"#,
        );
        assert!(plan_error(&gap).contains("fold 1 has no cases"));
        let mixed = dataset(
            r#"{"training": [{"image": "a", "label": "l", "fold": 0}, {"image": "b", "label": "l"}]}"#,
        );
        assert!(plan_error(&mixed).contains("training[1] has no `fold`"));
        let val = dataset(
            r#"{"training": [{"image": "a", "label": "l"}], "validation": [{"image": "b", "label": "l"}]}"#,
        );
        let folds = Folds::plan(&val, &FoldOptions::default()).unwrap();
        assert_eq!((folds.validation(0), folds.training(0)), (vec![1], vec![0]));
        let grouped = dataset(
            r#"{"training": [{"image": "a", "label": "l", "pid": 1}, {"image": "b", "label": "l"}]}"#,
        );
        let options = FoldOptions {
            num_folds: 2,
            seed: 0,
            group_key: Some("pid".into()),
        };
        assert!(
            Folds::plan(&grouped, &options)
                .unwrap_err()
                .to_string()
                .contains("training[1] has no `pid`")
        );
    }

    #[test]
    fn a_split_file_reads_back_and_names_what_does_not_fit() {
        let data = dataset(
            r#"{"training": [{"image": "a.nii", "label": "l"}, {"image": "b.nii", "label": "l"}, {"image": "c.nii", "label": "l"}]}"#,
        );
        let folds = Folds::grouped_kfold(&["1".into(), "2".into(), "3".into()], 3, 0).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("folds.yaml");
        folds.write(&data, &path).unwrap();
        let back = Folds::read(&path, &data).unwrap();
        assert_eq!(back.assignment, folds.assignment);
        assert_eq!(back.source, FoldSource::File(path.clone()));
        // An edit takes effect.
        let text = std::fs::read_to_string(&path).unwrap();
        let mut file: FoldsFile = serde_yaml::from_str(&text).unwrap();
        file.cases.insert("a".into(), None);
        std::fs::write(&path, serde_yaml::to_string(&file).unwrap()).unwrap();
        assert_eq!(Folds::read(&path, &data).unwrap().assignment[0], None);
        // A case missing, a stray one, a fold out of range.
        file.cases.remove("a");
        std::fs::write(&path, serde_yaml::to_string(&file).unwrap()).unwrap();
        let error = Folds::read(&path, &data).unwrap_err().to_string();
        assert!(
            error.contains("folds.yaml") && error.contains("case a"),
            "{error}"
        );
        file.cases.insert("a".into(), Some(0));
        file.cases.insert("z".into(), Some(0));
        std::fs::write(&path, serde_yaml::to_string(&file).unwrap()).unwrap();
        let error = Folds::read(&path, &data).unwrap_err().to_string();
        assert!(error.contains("case z"), "{error}");
        file.cases.remove("z");
        file.cases.insert("a".into(), Some(7));
        std::fs::write(&path, serde_yaml::to_string(&file).unwrap()).unwrap();
        let error = Folds::read(&path, &data).unwrap_err().to_string();
        assert!(error.contains("fold 7"), "{error}");
    }
}
