//! The MSD-style datalist JSON and the [`Dataset`] it resolves to under a data root.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::DatasetError;

/// One datalist entry, as written: `image` (one path or one per channel), `label`, `fold`, and
/// any other keys (a patient id, say), kept for grouping and reports.
#[derive(Debug, Clone, PartialEq)]
pub struct DataItem {
    /// Image paths, one per channel file, relative to the data root unless absolute.
    pub image: Vec<String>,
    /// Label path, if any.
    pub label: Option<String>,
    /// The fold this case validates in, if the datalist says.
    pub fold: Option<usize>,
    /// Every other key.
    pub extra: Map<String, Value>,
}

/// A parsed datalist: `training`, `validation` and `testing` lists plus the file's other keys
/// (MSD's `name`, `modality`, `labels`...).
#[derive(Debug, Clone, PartialEq)]
pub struct Datalist {
    /// Where it was read from.
    pub path: PathBuf,
    /// Labelled cases.
    pub training: Vec<DataItem>,
    /// Labelled cases set aside as one validation fold.
    pub validation: Vec<DataItem>,
    /// Cases to predict (`testing`, or MSD's `test`).
    pub testing: Vec<DataItem>,
    /// The other top-level keys.
    pub meta: Map<String, Value>,
    /// The regions nnU-Net's form of `labels` declares (values listing label ids).
    pub regions: Option<crate::regions::RegionPlan>,
}

impl Datalist {
    /// Reads and parses a datalist file.
    pub fn read(path: &Path) -> Result<Datalist, DatasetError> {
        let text = crate::textfile::read_text(path).map_err(|source| DatasetError::Io {
            path: path.into(),
            source,
        })?;
        Datalist::parse(&text, path)
    }

    /// Parses datalist JSON; `path` names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Datalist, DatasetError> {
        let fail = |message: String| DatasetError::Datalist {
            path: path.into(),
            message,
        };
        let value: Value =
            crate::textfile::from_json(text).map_err(|e| fail(format!("malformed JSON: {e}")))?;
        let Value::Object(mut top) = value else {
            return Err(fail(
                "the top level must be a JSON object with a `training` list".into(),
            ));
        };
        let mut list = |key: &str, needs_label: bool| -> Result<Vec<DataItem>, DatasetError> {
            match top.remove(key) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| {
                        parse_item(item, needs_label).map_err(|m| fail(format!("{key}[{i}]: {m}")))
                    })
                    .collect(),
                Some(_) => Err(fail(format!("`{key}` must be a list"))),
            }
        };
        let training = list("training", true)?;
        let validation = list("validation", true)?;
        let mut testing = list("testing", false)?;
        testing.extend(list("test", false)?);
        if training.is_empty() && validation.is_empty() && testing.is_empty() {
            return Err(fail(
                "no cases: `training`, `validation` and `testing` are all empty or missing".into(),
            ));
        }
        let regions = crate::regions::RegionPlan::from_nnunet_json(text).map_err(fail)?;
        Ok(Datalist {
            path: path.into(),
            training,
            validation,
            testing,
            meta: top,
            regions,
        })
    }

    /// Channel names from MSD's `modality` map (`{"0": "FLAIR", "1": "T1c"}`), in order.
    pub fn channel_names(&self) -> Option<Vec<String>> {
        indexed_names(self.meta.get("modality")?)
    }

    /// Class names from MSD's `labels` map (`{"0": "background", "1": "tumour"}`), by id;
    /// the ignore label (see [`Self::ignore_label`]) is not a class.
    pub fn label_names(&self) -> Option<Vec<String>> {
        indexed_names(self.meta.get("labels")?)
    }

    /// The label id named `ignore` in the `labels` map, in MSD's form (`{"3": "ignore"}`)
    /// or nnU-Net v2's (`{"ignore": 3}`): nnU-Net's label of unannotated voxels.
    pub fn ignore_label(&self) -> Option<u16> {
        let map = self.meta.get("labels")?.as_object()?;
        let by_name = map.get(IGNORE).and_then(Value::as_u64);
        let by_id = map
            .iter()
            .find(|(_, v)| v.as_str() == Some(IGNORE))
            .and_then(|(k, _)| k.parse().ok());
        // 0 is the background: an entry naming it `ignore` is no ignore label.
        by_name
            .or(by_id)
            .and_then(|id| u16::try_from(id).ok())
            .filter(|&id| id > 0)
    }
}

/// The `labels` name nnU-Net gives the label of unannotated voxels.
const IGNORE: &str = "ignore";

fn indexed_names(value: &Value) -> Option<Vec<String>> {
    let map = value.as_object()?;
    let mut pairs: Vec<(usize, String)> = map
        .iter()
        .filter_map(|(k, v)| Some((k.parse().ok()?, v.as_str()?.to_string())))
        .filter(|(_, name)| name != IGNORE)
        .collect();
    pairs.sort();
    let contiguous = pairs.iter().enumerate().all(|(i, (k, _))| i == *k);
    (contiguous && !pairs.is_empty()).then(|| pairs.into_iter().map(|(_, v)| v).collect())
}

fn parse_item(item: Value, needs_label: bool) -> Result<DataItem, String> {
    let mut map = match item {
        Value::String(path) => {
            return Ok(DataItem {
                image: vec![path],
                label: None,
                fold: None,
                extra: Map::new(),
            });
        }
        Value::Object(map) => map,
        _ => return Err("must be an object with `image` (and `label`), or a path".into()),
    };
    let image = match map.remove("image") {
        Some(Value::String(path)) => vec![path],
        Some(Value::Array(paths)) if !paths.is_empty() => paths
            .into_iter()
            .map(|p| {
                p.as_str()
                    .map(str::to_string)
                    .ok_or("`image` list entries must be paths".to_string())
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("`image` must be a path or a non-empty list of paths".into()),
        None => return Err("missing `image`".into()),
    };
    let label = match map.remove("label") {
        Some(Value::String(path)) => Some(path),
        None | Some(Value::Null) if !needs_label => None,
        None | Some(Value::Null) => return Err("missing `label`".into()),
        Some(_) => return Err("`label` must be a path".into()),
    };
    let fold = match map.remove("fold") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or(format!("`fold` must be a non-negative integer, got {v}"))?
                as usize,
        ),
    };
    Ok(DataItem {
        image,
        label,
        fold,
        extra: map,
    })
}

/// Which datalist list a case came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// `training`
    Training,
    /// `validation`
    Validation,
    /// `testing`
    Testing,
}

impl Split {
    /// The datalist key.
    pub fn key(self) -> &'static str {
        match self {
            Split::Training => "training",
            Split::Validation => "validation",
            Split::Testing => "testing",
        }
    }
}

/// One case with its paths resolved under the data root.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// A short unique name (the image file's stem, unless two cases share it).
    pub id: String,
    /// The list it came from and its index there, for messages such as `training[12]`.
    pub split: Split,
    /// Index within that list.
    pub index: usize,
    /// Image files, one per channel file.
    pub images: Vec<PathBuf>,
    /// Label file.
    pub label: Option<PathBuf>,
    /// Fold from the datalist.
    pub fold: Option<usize>,
    /// The datalist item's other keys.
    pub extra: Map<String, Value>,
}

impl Case {
    /// Where the case sits in the datalist, e.g. `training[12]`.
    pub fn locator(&self) -> String {
        format!("{}[{}]", self.split.key(), self.index)
    }

    /// Every file of the case: images, then the label.
    pub fn files(&self) -> impl Iterator<Item = &PathBuf> {
        self.images.iter().chain(self.label.as_ref())
    }
}

/// A datalist resolved against its data root: labelled cases (training then validation) and
/// testing cases.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The data root, absolute.
    pub root: PathBuf,
    /// The datalist as parsed.
    pub datalist: Datalist,
    /// Labelled cases: `training` then `validation`.
    pub cases: Vec<Case>,
    /// Cases to predict.
    pub testing: Vec<Case>,
    /// Whether paths may lead outside the root.
    pub allow_outside_root: bool,
}

impl Dataset {
    /// The label id of unannotated voxels: the task's `ignore_label`, else the datalist's
    /// `labels` entry named "ignore".
    pub fn ignore_label(&self, task: Option<&crate::TaskConfig>) -> Option<u16> {
        task.and_then(|t| t.ignore_label)
            .or_else(|| self.datalist.ignore_label())
    }

    /// The regions to train, if any: the task's (`class_names` regions), else the
    /// datalist's (nnU-Net's `labels` lists).
    pub fn regions<'a>(
        &'a self,
        task: Option<&'a crate::TaskConfig>,
    ) -> Option<&'a crate::regions::RegionPlan> {
        task.and_then(|t| t.regions.as_ref())
            .or(self.datalist.regions.as_ref())
    }

    /// Resolves `datalist` under `root` (default: the datalist's folder, as MSD lays it out).
    pub fn open(
        datalist: &Path,
        root: Option<&Path>,
        allow_outside_root: bool,
    ) -> Result<Dataset, DatasetError> {
        let list = Datalist::read(datalist)?;
        let root = match root {
            Some(root) => root.to_path_buf(),
            None => datalist.parent().map(Path::to_path_buf).unwrap_or_default(),
        };
        Dataset::new(list, &root, allow_outside_root)
    }

    /// Resolves a parsed datalist under `root`.
    pub fn new(
        datalist: Datalist,
        root: &Path,
        allow_outside_root: bool,
    ) -> Result<Dataset, DatasetError> {
        let root = std::path::absolute(root).map_err(|source| DatasetError::Io {
            path: root.into(),
            source,
        })?;
        let root = normalize(&root);
        let resolve = |p: &String| normalize(&root.join(p));
        let make = |split: Split, items: &[DataItem]| -> Vec<Case> {
            items
                .iter()
                .enumerate()
                .map(|(index, item)| Case {
                    id: String::new(),
                    split,
                    index,
                    images: item.image.iter().map(resolve).collect(),
                    label: item.label.as_ref().map(resolve),
                    fold: item.fold,
                    extra: item.extra.clone(),
                })
                .collect()
        };
        let mut cases = make(Split::Training, &datalist.training);
        cases.extend(make(Split::Validation, &datalist.validation));
        let mut testing = make(Split::Testing, &datalist.testing);
        assign_ids(cases.iter_mut().chain(testing.iter_mut()));
        Ok(Dataset {
            root,
            datalist,
            cases,
            testing,
            allow_outside_root,
        })
    }

    /// Every case, labelled then testing.
    pub fn all_cases(&self) -> impl Iterator<Item = &Case> {
        self.cases.iter().chain(&self.testing)
    }

    /// Refuses a path outside the data root, unless that was allowed: by its name (a `../`
    /// escape, even to a file that is not there) and, where it exists, by where it really
    /// is (a symlink inside the root that leads out).
    pub fn check_inside_root(&self, path: &Path) -> Result<(), DatasetError> {
        let really_inside = match (path.canonicalize(), self.root.canonicalize()) {
            (Ok(real), Ok(root)) => real.starts_with(root),
            _ => true,
        };
        if self.allow_outside_root || (path.starts_with(&self.root) && really_inside) {
            Ok(())
        } else {
            Err(DatasetError::OutsideRoot {
                path: path.into(),
                root: self.root.clone(),
            })
        }
    }
}

/// Resolves `.` and `..` without touching the file system, so a `../` escape is seen for what
/// it is even when the target does not exist.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// The file name without `.nii.gz`/`.nii` and without nnU-Net's `_0000` channel suffix.
fn stem(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let base = [".nii.gz", ".nii", ".gz"]
        .iter()
        .find_map(|ext| name.strip_suffix(ext))
        .unwrap_or(&name);
    let channel_suffix = base.len() > 5
        && base.as_bytes()[base.len() - 5] == b'_'
        && base[base.len() - 4..].bytes().all(|b| b.is_ascii_digit());
    if channel_suffix {
        base[..base.len() - 5].to_string()
    } else {
        base.to_string()
    }
}

/// Gives every case an id that is a plain file name (outputs and caches are named by it, so
/// it must never lead out of their folder): the image's stem, made safe by [`file_name_id`],
/// and where two cases share one, the stem with the case's list and index.
fn assign_ids<'a>(cases: impl Iterator<Item = &'a mut Case>) {
    let mut cases: Vec<&mut Case> = cases.collect();
    let stems: Vec<String> = cases
        .iter()
        .map(|c| file_name_id(&stem(&c.images[0])))
        .collect();
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for s in &stems {
        *uses.entry(s).or_default() += 1;
    }
    for (case, s) in cases.iter_mut().zip(&stems) {
        case.id = if uses[s.as_str()] == 1 {
            s.clone()
        } else {
            // Shared stems (same file name in two folders, or a case listed twice): the
            // datalist position keeps ids unique.
            format!("{s}@{}-{}", case.split.key(), case.index)
        };
    }
}

/// `stem` as a file name of its own: characters other than letters, digits, `-`, `_`, `.`
/// and `@` become `_`, and a name that is empty or starts with a dot (`.`, `..`, hidden
/// files) gains a `case` prefix.
pub fn file_name_id(stem: &str) -> String {
    let safe: String = stem
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '@') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.is_empty() || safe.starts_with('.') {
        format!("case{safe}")
    } else {
        safe
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_msd_and_auto3dseg_forms() {
        let text = r#"{"name": "x", "modality": {"0": "FLAIR", "1": "T1c"}, "labels": {"0": "bg", "1": "tumour"},
            "training": [{"image": ["./a_0000.nii.gz", "./a_0001.nii.gz"], "label": "./la.nii.gz", "fold": 1, "pid": "p1"}],
            "validation": [{"image": "b.nii.gz", "label": "lb.nii.gz"}],
            "test": ["./imagesTs/c.nii.gz"], "testing": [{"image": "d.nii"}]}"#;
        let list = Datalist::parse(text, Path::new("d.json")).unwrap();
        assert_eq!(list.training[0].image.len(), 2);
        assert_eq!(list.training[0].fold, Some(1));
        assert_eq!(list.training[0].extra["pid"], "p1");
        assert_eq!(list.testing.len(), 2);
        assert_eq!(list.channel_names().unwrap(), ["FLAIR", "T1c"]);
        assert_eq!(list.label_names().unwrap(), ["bg", "tumour"]);
        let ds = Dataset::new(list, Path::new("/data/set"), false).unwrap();
        assert_eq!(ds.cases[0].id, "a");
        assert_eq!(ds.cases[0].images[1], Path::new("/data/set/a_0001.nii.gz"));
        assert_eq!(
            (ds.testing[0].id.as_str(), ds.testing[1].id.as_str()),
            ("d", "c")
        );
    }

    #[test]
    fn the_ignore_label_is_read_in_both_forms_and_is_no_class() {
        let msd = r#"{"labels": {"0": "background", "1": "organ", "2": "ignore"},
                      "training": [{"image": "a.nii", "label": "b.nii"}]}"#;
        let list = Datalist::parse(msd, Path::new("d.json")).unwrap();
        assert_eq!(list.ignore_label(), Some(2));
        assert_eq!(list.label_names().unwrap(), ["background", "organ"]);
        let nnunet = r#"{"labels": {"background": 0, "organ": 1, "ignore": 9},
                         "training": [{"image": "a.nii", "label": "b.nii"}]}"#;
        let list = Datalist::parse(nnunet, Path::new("d.json")).unwrap();
        assert_eq!(list.ignore_label(), Some(9));
        let none = r#"{"labels": {"0": "ignore"}, "training": ["a.nii"]}"#;
        let list = Datalist::parse(none, Path::new("d.json")).unwrap();
        assert_eq!(list.ignore_label(), None);
    }

    #[test]
    fn malformed_datalists_name_the_item_and_key() {
        let cases = [
            (
                r#"{"training": [{"image": "a.nii"}]}"#,
                "training[0]: missing `label`",
            ),
            (
                r#"{"training": [{"label": "a.nii"}]}"#,
                "training[0]: missing `image`",
            ),
            (
                r#"{"training": [{"image": 3, "label": "l"}]}"#,
                "training[0]: `image` must be",
            ),
            (
                r#"{"training": [{"image": "a", "label": "l", "fold": -1}]}"#,
                "`fold` must be a non-negative integer",
            ),
            (r#"{"training": "a"}"#, "`training` must be a list"),
            (r#"{"training": []}"#, "no cases"),
            (r#"{"training": [}"#, "malformed JSON"),
        ];
        for (text, expected) in cases {
            let err = Datalist::parse(text, Path::new("list.json"))
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("list.json: ") && err.contains(expected),
                "{err}"
            );
        }
    }

    #[test]
    fn escapes_are_seen_lexically_and_ids_stay_unique() {
        let text = r#"{"training": [{"image": "../outside/a.nii.gz", "label": "l.nii.gz"},
            {"image": "x/s.nii.gz", "label": "l1"}, {"image": "y/s.nii.gz", "label": "l2"}]}"#;
        let list = Datalist::parse(text, Path::new("d.json")).unwrap();
        let ds = Dataset::new(list, Path::new("/data/set"), false).unwrap();
        assert_eq!(ds.cases[0].images[0], Path::new("/data/outside/a.nii.gz"));
        assert!(matches!(
            ds.check_inside_root(&ds.cases[0].images[0]),
            Err(DatasetError::OutsideRoot { .. })
        ));
        assert!(ds.check_inside_root(&ds.cases[1].images[0]).is_ok());
        assert_ne!(ds.cases[1].id, ds.cases[2].id);
        assert_eq!(ds.cases[2].id, "s@training-2");
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_out_of_the_root_is_outside_it() {
        let dir = tempfile::tempdir().unwrap();
        let (root, outside) = (dir.path().join("root"), dir.path().join("secret.nii.gz"));
        std::fs::create_dir(&root).unwrap();
        std::fs::write(&outside, b"x").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("a.nii.gz")).unwrap();
        std::fs::write(root.join("b.nii.gz"), b"x").unwrap();
        let text = r#"{"training": [{"image": "a.nii.gz", "label": "b.nii.gz"}]}"#;
        let list = Datalist::parse(text, Path::new("d.json")).unwrap();
        let ds = Dataset::new(list, &root, false).unwrap();
        assert!(matches!(
            ds.check_inside_root(&ds.cases[0].images[0]),
            Err(DatasetError::OutsideRoot { .. })
        ));
        assert!(
            ds.check_inside_root(ds.cases[0].label.as_ref().unwrap())
                .is_ok()
        );
    }

    #[test]
    fn case_ids_are_plain_file_names() {
        let text = r#"{"training": [{"image": "/abs/x/s.nii.gz", "label": "l"},
            {"image": "/abs/y/s.nii.gz", "label": "l"}, {"image": "..nii", "label": "l"},
            {"image": "a b/c d:e.nii", "label": "l"}]}"#;
        let list = Datalist::parse(text, Path::new("d.json")).unwrap();
        let ds = Dataset::new(list, Path::new("/data/set"), true).unwrap();
        for case in &ds.cases {
            let mut parts = Path::new(&case.id).components();
            assert!(
                matches!(parts.next(), Some(Component::Normal(_))) && parts.next().is_none(),
                "{}",
                case.id
            );
            assert!(!case.id.starts_with('.'), "{}", case.id);
        }
        assert_eq!(ds.cases[2].id, "case.");
        assert_eq!(ds.cases[3].id, "c_d_e");
    }
}
