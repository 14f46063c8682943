//! Cross-validation folds: from the datalist's `fold` keys, from its `validation` list, or a
//! seeded K-fold split that can keep groups (a patient's scans) inside one fold.

use std::collections::BTreeMap;

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
        let num_folds = folds.iter().max().unwrap() + 1;
        if let Some(empty) = (0..num_folds).find(|f| !folds.contains(f)) {
            return Err(DatasetError::Folds(format!(
                "fold {empty} has no cases (folds must run 0..{})",
                num_folds - 1
            )));
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datalist::Datalist;
    use std::path::Path;

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
}
