//! The task config: MONAI Auto3DSeg's `input.yaml` keys, read into typed fields.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

use crate::error::DatasetError;
use crate::regions::RegionPlan;

/// Imaging modality, which decides intensity normalisation (CT: fixed window; MRI: per image).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Modality {
    /// Computed tomography (Hounsfield units).
    Ct,
    /// Magnetic resonance (arbitrary units).
    Mri,
    /// Anything else, kept as written (treated like MRI, as Auto3DSeg does).
    Other(String),
}

impl Modality {
    /// Reads "CT", "ct", "MRI", "MR", "mri"... anything else is kept as given.
    pub fn parse(text: &str) -> Modality {
        match text.trim().to_ascii_lowercase().as_str() {
            "ct" => Modality::Ct,
            "mri" | "mr" => Modality::Mri,
            _ => Modality::Other(text.trim().to_string()),
        }
    }
}

impl fmt::Display for Modality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Modality::Ct => f.write_str("CT"),
            Modality::Mri => f.write_str("MRI"),
            Modality::Other(s) => f.write_str(s),
        }
    }
}

/// One output class: a plain name (its label id is its position + 1), or a region merging
/// several label ids, as Auto3DSeg's `class_names: [{name, index: [..]}]` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClassSpec {
    /// A label id's name.
    Name(String),
    /// A region made of several label ids.
    Region {
        /// The region's name.
        name: String,
        /// The label ids it covers.
        index: Vec<u16>,
    },
}

/// A task: what data to learn from and how it is labelled.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskConfig {
    /// The YAML file it came from.
    pub path: PathBuf,
    /// Task name.
    pub name: Option<String>,
    /// Modality.
    pub modality: Modality,
    /// The datalist, resolved against the YAML's folder.
    pub datalist: PathBuf,
    /// The data root, resolved against the YAML's folder (default: the datalist's folder).
    pub dataroot: PathBuf,
    /// Foreground class names or regions, if given.
    pub class_names: Option<Vec<ClassSpec>>,
    /// The regions `class_names` declares, with the label written for each (the task's
    /// `regions_class_order`, or each region's smallest id where they are disjoint).
    pub regions: Option<RegionPlan>,
    /// Number of cross-validation folds, if given.
    pub num_fold: Option<usize>,
    /// The datalist key (e.g. a patient id) whose cases must share a fold, if given.
    pub group_key: Option<String>,
    /// The label id of unannotated voxels (nnU-Net's `ignore` label): they take no part in
    /// the loss, in foreground sampling or in any Dice.
    pub ignore_label: Option<u16>,
    /// Keys this version does not use, kept verbatim (and reported by `autoseg check`).
    pub extra: BTreeMap<String, Value>,
}

/// Keys read into fields, or known and deliberately ignored (as MONAI ignores them too).
const KNOWN_KEYS: &[&str] = &[
    "name",
    "task",
    "description",
    "modality",
    "datalist",
    "dataroot",
    "class_names",
    "num_fold",
    "group_key",
    "ignore_label",
    "regions_class_order",
    "multigpu",
];

impl TaskConfig {
    /// Reads and parses a task YAML. Relative `datalist`/`dataroot` paths are taken from the
    /// YAML's own folder, so the config works from any working directory.
    pub fn read(path: &Path) -> Result<TaskConfig, DatasetError> {
        let text = crate::textfile::read_text(path).map_err(|source| DatasetError::Io {
            path: path.into(),
            source,
        })?;
        TaskConfig::parse(&text, path)
    }

    /// Parses task YAML; `path` names the file and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<TaskConfig, DatasetError> {
        let fail = |message: String| DatasetError::TaskConfig {
            path: path.into(),
            message,
        };
        let value: Value =
            crate::textfile::from_yaml(text).map_err(|e| fail(format!("malformed YAML: {e}")))?;
        let Value::Mapping(map) = value else {
            return Err(fail(
                "the top level must be a mapping of keys (modality, datalist, dataroot...)".into(),
            ));
        };
        let mut keys: BTreeMap<String, Value> = BTreeMap::new();
        for (k, v) in map {
            let Value::String(k) = k else {
                return Err(fail(format!("keys must be strings, found {k:?}")));
            };
            keys.insert(k, v);
        }
        let text_key = |key: &str| -> Result<Option<String>, DatasetError> {
            match keys.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(fail(format!(
                    "`{key}` must be text, got {}",
                    describe(other)
                ))),
            }
        };
        let base = path.parent().unwrap_or(Path::new(""));
        let modality =
            text_key("modality")?.ok_or_else(|| fail("missing `modality` (CT or MRI)".into()))?;
        let datalist =
            base.join(text_key("datalist")?.ok_or_else(|| fail("missing `datalist`".into()))?);
        let dataroot = match text_key("dataroot")? {
            Some(root) => base.join(root),
            None => datalist.parent().map(Path::to_path_buf).unwrap_or_default(),
        };
        let num_fold = match keys.get("num_fold") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(n) if n >= 1 => Some(n as usize),
                _ => {
                    return Err(fail(format!(
                        "`num_fold` must be a positive integer, got {}",
                        describe(v)
                    )));
                }
            },
        };
        let class_names = match keys.get("class_names") {
            None | Some(Value::Null) => None,
            Some(v) => Some(parse_class_names(v).map_err(|m| fail(format!("`class_names`: {m}")))?),
        };
        let ignore_label = match keys.get("ignore_label") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .filter(|&n| (1..=u16::MAX as u64).contains(&n))
                    .ok_or_else(|| {
                        fail(format!(
                            "`ignore_label` must be a label id from 1 to 65535, got {}",
                            describe(v)
                        ))
                    })? as u16,
            ),
        };
        if let (Some(id), Some(classes)) = (ignore_label, &class_names)
            && let Some(class) = class_of_label(classes, id)
        {
            return Err(fail(format!(
                "`ignore_label` {id} is also the class `{class}` in `class_names`: \
                 a voxel cannot be both unannotated and annotated"
            )));
        }
        let regions =
            parse_regions(keys.get("regions_class_order"), class_names.as_deref()).map_err(fail)?;
        let name = text_key("name")?;
        let group_key = text_key("group_key")?;
        let extra = keys
            .into_iter()
            .filter(|(k, _)| !KNOWN_KEYS.contains(&k.as_str()))
            .collect();
        Ok(TaskConfig {
            path: path.into(),
            name,
            modality: Modality::parse(&modality),
            datalist,
            dataroot,
            class_names,
            regions,
            num_fold,
            group_key,
            ignore_label,
            extra,
        })
    }

    /// The task as YAML with `datalist` and `dataroot` relative to the folder `dir` (which
    /// must exist): what `autoseg analyze` records in a work dir, so later stages find the
    /// data, and the work dir and data can move together.
    pub fn to_yaml_relative_to(&self, dir: &Path) -> Result<String, DatasetError> {
        let absolute = |p: &Path| {
            std::fs::canonicalize(p).map_err(|source| DatasetError::Io {
                path: p.to_path_buf(),
                source,
            })
        };
        let dir = absolute(dir)?;
        let relative = |p: &Path| -> Result<Value, DatasetError> {
            let path = crate::fsutil::relative_path(&dir, &absolute(p)?);
            Ok(Value::String(path.display().to_string()))
        };
        let mut map = serde_yaml::Mapping::new();
        let mut put = |k: &str, v: Value| {
            map.insert(Value::String(k.into()), v);
        };
        if let Some(name) = &self.name {
            put("name", Value::String(name.clone()));
        }
        put("modality", Value::String(self.modality.to_string()));
        put("datalist", relative(&self.datalist)?);
        put("dataroot", relative(&self.dataroot)?);
        if let Some(classes) = &self.class_names {
            put(
                "class_names",
                Value::Sequence(classes.iter().map(class_value).collect()),
            );
        }
        if let Some(regions) = &self.regions {
            let ids = regions.class_order.iter().map(|&i| Value::Number(i.into()));
            put("regions_class_order", Value::Sequence(ids.collect()));
        }
        if let Some(n) = self.num_fold {
            put("num_fold", Value::Number(n.into()));
        }
        if let Some(key) = &self.group_key {
            put("group_key", Value::String(key.clone()));
        }
        if let Some(id) = self.ignore_label {
            put("ignore_label", Value::Number(id.into()));
        }
        for (k, v) in &self.extra {
            put(k, v.clone());
        }
        Ok(serde_yaml::to_string(&map).expect("task configs serialise"))
    }

    /// The keys autoseg does not use (yet), for reporting.
    pub fn unused_keys(&self) -> Vec<&str> {
        self.extra.keys().map(String::as_str).collect()
    }
}

fn class_value(class: &ClassSpec) -> Value {
    match class {
        ClassSpec::Name(name) => Value::String(name.clone()),
        ClassSpec::Region { name, index } => {
            let mut m = serde_yaml::Mapping::new();
            m.insert("name".into(), Value::String(name.clone()));
            let ids = index.iter().map(|&i| Value::Number(i.into())).collect();
            m.insert("index".into(), Value::Sequence(ids));
            Value::Mapping(m)
        }
    }
}

/// The name of the class or region in `classes` that covers label id `id`, if any (a plain
/// name's id is its position + 1).
fn class_of_label(classes: &[ClassSpec], id: u16) -> Option<&str> {
    classes
        .iter()
        .enumerate()
        .find_map(|(i, class)| match class {
            ClassSpec::Name(name) => (i + 1 == id as usize).then_some(name.as_str()),
            ClassSpec::Region { name, index } => index.contains(&id).then_some(name.as_str()),
        })
}

fn parse_class_names(value: &Value) -> Result<Vec<ClassSpec>, String> {
    let Value::Sequence(items) = value else {
        return Err("must be a list".into());
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(name) => Ok(ClassSpec::Name(name.clone())),
            Value::Mapping(m) => {
                let name = m
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or(format!("item {i}: missing `name`"))?;
                let index = match m.get("index") {
                    Some(Value::Sequence(ids)) => ids
                        .iter()
                        .map(|id| {
                            id.as_u64()
                                .filter(|&n| n <= u16::MAX as u64)
                                .map(|n| n as u16)
                        })
                        .collect::<Option<Vec<u16>>>()
                        .ok_or(format!("item {i}: `index` must list label ids"))?,
                    Some(id) => vec![
                        id.as_u64()
                            .ok_or(format!("item {i}: `index` must list label ids"))?
                            as u16,
                    ],
                    None => return Err(format!("item {i}: missing `index`")),
                };
                Ok(ClassSpec::Region {
                    name: name.to_string(),
                    index,
                })
            }
            _ => Err(format!("item {i} must be a name or {{name, index}}")),
        })
        .collect()
}

/// The regions of `class_names`, with `regions_class_order` (a list of label ids) if given.
fn parse_regions(
    order: Option<&Value>,
    classes: Option<&[ClassSpec]>,
) -> Result<Option<RegionPlan>, String> {
    let order = match order {
        None | Some(Value::Null) => None,
        Some(v) => Some(serde_yaml::from_value::<Vec<u16>>(v.clone()).map_err(|_| {
            format!(
                "`regions_class_order` must list label ids, got {}",
                describe(v)
            )
        })?),
    };
    RegionPlan::from_class_names(classes.unwrap_or_default(), order.as_deref())
        .map_err(|m| format!("`class_names`: {m}"))
}

fn describe(value: &Value) -> String {
    serde_yaml::to_string(value)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| format!("{value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_monai_keys_resolves_paths_and_keeps_unknown_keys() {
        let yaml = "name: spleen\nmodality: CT\ndatalist: ./folds.json\ndataroot: /data/spleen\n\
                    class_names: [{name: spleen, index: [1]}, {name: tumour, index: [2, 3]}]\n\
                    num_fold: 3\nroi_size: [96, 96, 96]\n";
        let task = TaskConfig::parse(yaml, Path::new("/work/input.yaml")).unwrap();
        assert_eq!(task.modality, Modality::Ct);
        assert_eq!(task.datalist, Path::new("/work/./folds.json"));
        assert_eq!(task.dataroot, Path::new("/data/spleen"));
        assert_eq!(task.num_fold, Some(3));
        assert_eq!(
            task.class_names.as_ref().unwrap()[1],
            ClassSpec::Region {
                name: "tumour".into(),
                index: vec![2, 3]
            }
        );
        assert_eq!(task.regions.as_ref().unwrap().class_order, [1, 2]);
        assert_eq!(task.unused_keys(), ["roi_size"]);
        assert_eq!(task.ignore_label, None);
        let sparse = format!("{yaml}ignore_label: 255\n");
        let task = TaskConfig::parse(&sparse, Path::new("/work/input.yaml")).unwrap();
        assert_eq!(task.ignore_label, Some(255));
    }

    #[test]
    fn malformed_configs_say_which_key() {
        let cases = [
            ("modality: [CT\n", "malformed YAML"),
            ("datalist: a.json\n", "missing `modality`"),
            ("modality: MRI\n", "missing `datalist`"),
            (
                "modality: MRI\ndatalist: a.json\nnum_fold: five\n",
                "`num_fold` must be a positive integer, got five",
            ),
            (
                "modality: MRI\ndatalist: a.json\nclass_names: x\n",
                "`class_names`: must be a list",
            ),
            ("- a\n- b\n", "top level must be a mapping"),
            (
                "modality: MRI\ndatalist: a.json\nignore_label: -1\n",
                "`ignore_label` must be a label id from 1 to 65535, got -1",
            ),
            (
                "modality: MRI\ndatalist: a.json\nclass_names: [{name: wt, index: [1, 2]}, \
                 {name: tc, index: [2]}]\n",
                "`class_names`: regions `wt` and `tc` share label ids",
            ),
            (
                "modality: MRI\ndatalist: a.json\nclass_names: [a, b]\nignore_label: 2\n",
                "`ignore_label` 2 is also the class `b`",
            ),
            (
                "modality: MRI\ndatalist: a.json\nclass_names: [{name: wt, index: [1, 4]}]\n\
                 ignore_label: 4\n",
                "`ignore_label` 4 is also the class `wt`",
            ),
        ];
        for (yaml, expected) in cases {
            let err = TaskConfig::parse(yaml, Path::new("task.yaml"))
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("task.yaml: ") && err.contains(expected),
                "{err}"
            );
        }
    }
}
