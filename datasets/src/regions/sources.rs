//! Where regions are declared: Auto3DSeg's task config (`class_names: [{name, index}]`, with
//! autoseg's `regions_class_order` beside it) and nnU-Net v2's dataset.json (`labels` whose
//! values are lists of label ids, with `regions_class_order`).

use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, de};
use serde_json::Value;

use super::{Region, RegionPlan};
use crate::task::ClassSpec;

impl RegionPlan {
    /// The regions of a task's `class_names`, if it lists any; plain names and regions may
    /// not mix (Auto3DSeg reads the list as one or the other).
    pub fn from_class_names(
        classes: &[ClassSpec],
        class_order: Option<&[u16]>,
    ) -> Result<Option<RegionPlan>, String> {
        let regions: Vec<Region> = classes
            .iter()
            .filter_map(|c| match c {
                ClassSpec::Region { name, index } => Some(Region {
                    name: name.clone(),
                    labels: index.clone(),
                }),
                ClassSpec::Name(_) => None,
            })
            .collect();
        if regions.is_empty() {
            return match class_order {
                Some(_) => Err("`regions_class_order` is given but no entry is a \
                                region ({name, index} entries)"
                    .into()),
                None => Ok(None),
            };
        }
        if regions.len() != classes.len() {
            return Err("plain names and regions ({name, index}) are mixed: give \
                        every class as a region (a label of its own is `{name: x, index: [id]}`)"
                .into());
        }
        RegionPlan::new(regions, class_order.map(<[u16]>::to_vec)).map(Some)
    }

    /// The regions of an nnU-Net v2 dataset.json (`"labels": {"background": 0, "whole
    /// tumor": [1, 2, 3], ...}, "regions_class_order": [1, 2, 3]`), read in the file's own
    /// order (which `regions_class_order` follows); `None` when no label is a list.
    pub fn from_nnunet_json(text: &str) -> Result<Option<RegionPlan>, String> {
        let Ok(head) = serde_json::from_str::<NnunetHead>(text) else {
            return Ok(None); // not nnU-Net's form: other readers report what is wrong
        };
        let entries = head.labels.map(|l| l.0).unwrap_or_default();
        if !entries.iter().any(|(_, v)| v.is_array()) {
            return Ok(None);
        }
        let mut regions = Vec::new();
        for (name, value) in entries {
            let ids = match &value {
                Value::Array(ids) => ids.iter().map(label_id).collect::<Option<Vec<u16>>>(),
                other => label_id(other).map(|id| vec![id]),
            }
            .ok_or_else(|| format!("`labels`: `{name}` must be a label id or a list of them"))?;
            if ids == [0] || name == "ignore" {
                continue; // the background, and the unannotated voxels: no region
            }
            regions.push(Region { name, labels: ids });
        }
        RegionPlan::new(regions, head.regions_class_order).map(Some)
    }
}

fn label_id(value: &Value) -> Option<u16> {
    value.as_u64().and_then(|n| u16::try_from(n).ok())
}

/// The keys of a dataset.json that declare regions.
#[derive(Deserialize)]
struct NnunetHead {
    labels: Option<OrderedMap>,
    regions_class_order: Option<Vec<u16>>,
}

/// A JSON object's entries in the file's order (serde_json's map sorts them).
struct OrderedMap(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for OrderedMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = OrderedMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedMap, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    entries.push(entry);
                }
                Ok(OrderedMap(entries))
            }
        }
        deserializer
            .deserialize_map(Entries)
            .map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nnunets_dataset_json_regions_keep_the_files_order() {
        let text = r#"{"labels": {"background": 0, "whole tumor": [1, 2, 3],
            "tumor core": [2, 3], "enhancing tumor": 3},
            "regions_class_order": [1, 2, 3], "training": []}"#;
        let plan = RegionPlan::from_nnunet_json(text).unwrap().unwrap();
        assert_eq!(
            plan.names(),
            ["whole tumor", "tumor core", "enhancing tumor"]
        );
        assert_eq!(plan.regions[2].labels, [3]);
        assert_eq!(plan.class_order, [1, 2, 3]);
        let plain = r#"{"labels": {"background": 0, "organ": 1}}"#;
        assert_eq!(RegionPlan::from_nnunet_json(plain).unwrap(), None);
        let unordered = r#"{"labels": {"background": 0, "a": [1, 2], "b": [2]}}"#;
        let err = RegionPlan::from_nnunet_json(unordered).unwrap_err();
        assert!(err.contains("give `regions_class_order`"), "{err}");
    }

    #[test]
    fn task_class_names_are_all_regions_or_none() {
        let region = |name: &str, index: &[u16]| ClassSpec::Region {
            name: name.into(),
            index: index.to_vec(),
        };
        let brats = [
            region("wt", &[1, 2, 3, 4]),
            region("tc", &[1, 3, 4]),
            region("et", &[4]),
        ];
        let plan = RegionPlan::from_class_names(&brats, Some(&[2, 1, 4]))
            .unwrap()
            .unwrap();
        assert_eq!(plan.written_labels(), [0, 2, 1, 4]);
        let mixed = [ClassSpec::Name("a".into()), region("b", &[2])];
        let err = RegionPlan::from_class_names(&mixed, None).unwrap_err();
        assert!(
            err.contains("plain names and regions ({name, index}) are mixed"),
            "{err}"
        );
        let names = [ClassSpec::Name("a".into())];
        assert_eq!(RegionPlan::from_class_names(&names, None).unwrap(), None);
        assert!(RegionPlan::from_class_names(&names, Some(&[1])).is_err());
    }
}
