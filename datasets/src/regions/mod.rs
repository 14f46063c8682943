//! Region-based targets (BraTS' whole tumour, tumour core, enhancing tumour): each region is
//! the union of some label ids, regions may overlap, and each trains as its own sigmoid
//! output, as nnU-Net's `regions_class_order` datasets and Auto3DSeg's `class_names:
//! [{name, index}]` tasks do.
//!
//! - [`RegionPlan`]: the regions and the label written for each (a bundle's `regions`).
//! - [`Decoding`]: how a network's channels become one class index per voxel: the argmax of
//!   softmax classes, or nnU-Net's rule for regions (the last region whose probability
//!   passes 0.5 wins).
//! - [`Targets`]: what a Dice is taken of: each foreground class, or each region.

use serde::{Deserialize, Serialize};

mod decode;
mod sources;
mod targets;

pub use decode::{ClassDecoder, Decoding, REGION_THRESHOLD};
pub use targets::{Targets, dice};

/// One region: a name and the label ids it merges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    /// The region's name (`whole_tumor`).
    pub name: String,
    /// The dataset label ids it covers (`[1, 2, 3, 4]`).
    pub labels: Vec<u16>,
}

/// The most regions a bundle may have: each voxel's memberships fit one `u64`.
pub const MAX_REGIONS: usize = 64;

/// The regions a bundle trains, one sigmoid channel each, and the label id written for
/// each: voxels take `class_order[i]` where region `i`'s probability passes 0.5, later
/// regions over earlier ones (nnU-Net's `regions_class_order`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionPlan {
    /// The regions, in channel order.
    pub regions: Vec<Region>,
    /// The label id written for each region, in the same order.
    pub class_order: Vec<u16>,
}

impl RegionPlan {
    /// Regions with the label written for each: `class_order` as given, or where the regions
    /// are disjoint, each region's smallest label id (any order then writes the same map).
    /// Overlapping regions need an explicit order: which wins decides the map.
    pub fn new(regions: Vec<Region>, class_order: Option<Vec<u16>>) -> Result<RegionPlan, String> {
        let class_order = match class_order {
            Some(order) => order,
            None => {
                if let Some((a, b)) = first_overlap(&regions) {
                    return Err(format!(
                        "regions `{}` and `{}` share label ids, so which one a voxel is written \
                         as depends on their order: give `regions_class_order`, the label id \
                         written for each region (later regions are written over earlier ones, \
                         as in nnU-Net)",
                        regions[a].name, regions[b].name
                    ));
                }
                (regions.iter())
                    .map(|r| r.labels.iter().copied().min().unwrap_or(0))
                    .collect()
            }
        };
        let plan = RegionPlan {
            regions,
            class_order,
        };
        plan.validate()?;
        Ok(plan)
    }

    /// Checks what serde cannot: 1 to 64 named regions of foreground label ids, and one
    /// written label per region that belongs to it (so a written map scores as its regions).
    pub fn validate(&self) -> Result<(), String> {
        if self.regions.is_empty() || self.regions.len() > MAX_REGIONS {
            return Err(format!(
                "regions: {} given, 1 to {MAX_REGIONS} allowed",
                self.regions.len()
            ));
        }
        for r in &self.regions {
            if r.labels.is_empty() || r.labels.contains(&0) {
                return Err(format!(
                    "region `{}`: its label ids {:?} must be foreground ids (not 0), at least one",
                    r.name, r.labels
                ));
            }
        }
        if self.class_order.len() != self.regions.len() {
            return Err(format!(
                "regions_class_order has {} label ids for {} regions",
                self.class_order.len(),
                self.regions.len()
            ));
        }
        for (r, &id) in self.regions.iter().zip(&self.class_order) {
            if !r.labels.contains(&id) {
                return Err(format!(
                    "regions_class_order writes region `{}` as label {id}, which is not one of \
                     its label ids {:?}: the written map would not score as the region",
                    r.name, r.labels
                ));
            }
        }
        Ok(())
    }

    /// The label id of each decoded class index: background, then each region's.
    pub fn written_labels(&self) -> Vec<u16> {
        std::iter::once(0)
            .chain(self.class_order.iter().copied())
            .collect()
    }

    /// The regions label id `id` belongs to, one bit per region.
    pub fn membership(&self, id: u16) -> u64 {
        (self.regions.iter().enumerate())
            .filter(|(_, r)| r.labels.contains(&id))
            .fold(0, |bits, (i, _)| bits | 1 << i)
    }

    /// The class indices each region covers, where class `k` is label id `labels[k]` (a
    /// bundle's `preprocessing.labels`).
    pub fn class_sets(&self, labels: &[u16]) -> Vec<Vec<usize>> {
        (self.regions.iter())
            .map(|r| {
                (0..labels.len())
                    .filter(|&k| r.labels.contains(&labels[k]))
                    .collect()
            })
            .collect()
    }

    /// The regions' names.
    pub fn names(&self) -> Vec<&str> {
        self.regions.iter().map(|r| r.name.as_str()).collect()
    }
}

/// Checks a bundle's outputs against its classes: one network output per class
/// (`labels`, background first), or with regions, one per region, each region made of
/// classes the bundle trains.
pub fn check_outputs(
    labels: &[u16],
    regions: Option<&RegionPlan>,
    out_channels: usize,
) -> Result<(), String> {
    let Some(plan) = regions else {
        if labels.len() != out_channels {
            return Err(format!(
                "preprocessing lists {} labels but the network has {out_channels} outputs",
                labels.len()
            ));
        }
        return Ok(());
    };
    plan.validate()?;
    if plan.regions.len() != out_channels {
        return Err(format!(
            "{} regions but the network has {out_channels} outputs (one per region)",
            plan.regions.len()
        ));
    }
    for r in &plan.regions {
        if let Some(id) = r.labels.iter().find(|id| !labels.contains(id)) {
            return Err(format!(
                "region `{}` names label id {id}, which is not in preprocessing.labels {labels:?}",
                r.name
            ));
        }
    }
    Ok(())
}

/// The first pair of regions sharing a label id.
fn first_overlap(regions: &[Region]) -> Option<(usize, usize)> {
    (0..regions.len()).find_map(|b| {
        (0..b)
            .find(|&a| {
                regions[a]
                    .labels
                    .iter()
                    .any(|id| regions[b].labels.contains(id))
            })
            .map(|a| (a, b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(name: &str, labels: &[u16]) -> Region {
        Region {
            name: name.into(),
            labels: labels.to_vec(),
        }
    }

    /// BraTS as nnU-Net orders it: whole tumour, tumour core, enhancing tumour.
    fn brats() -> RegionPlan {
        let regions = vec![
            region("wt", &[1, 2, 3, 4]),
            region("tc", &[1, 3, 4]),
            region("et", &[4]),
        ];
        RegionPlan::new(regions, Some(vec![2, 1, 4])).unwrap()
    }

    #[test]
    fn labels_are_written_by_nnunets_region_order_rule() {
        // nnU-Net: seg = 0; for i, c in enumerate(order): seg[p[i] > 0.5] = c.
        // Five voxels: none, WT only, WT+TC, all three, TC+ET without WT (inconsistent).
        let probabilities = [
            [0.1, 0.9, 0.8, 0.7, 0.2], // wt
            [0.2, 0.4, 0.6, 0.9, 0.8], // tc
            [0.3, 0.1, 0.5, 0.6, 0.9], // et
        ]
        .concat();
        let plan = brats();
        let classes = Decoding::Regions.classes(&probabilities, 3);
        let written = plan.written_labels();
        let labels: Vec<u16> = classes.iter().map(|&c| written[c as usize]).collect();
        assert_eq!(labels, [0, 2, 1, 4, 4]);
    }

    #[test]
    fn disjoint_regions_default_their_order_and_overlapping_ones_must_give_it() {
        let disjoint = vec![region("a", &[3, 2]), region("b", &[5])];
        let plan = RegionPlan::new(disjoint, None).unwrap();
        assert_eq!(plan.class_order, [2, 5]);
        let overlapping = vec![region("wt", &[1, 2]), region("tc", &[2])];
        let err = RegionPlan::new(overlapping.clone(), None).unwrap_err();
        assert!(err.contains("`wt` and `tc` share label ids"), "{err}");
        let err = RegionPlan::new(overlapping, Some(vec![2, 1])).unwrap_err();
        assert!(err.contains("region `tc` as label 1"), "{err}");
        let err = RegionPlan::new(vec![region("bg", &[0, 1])], None).unwrap_err();
        assert!(err.contains("foreground ids"), "{err}");
    }

    #[test]
    fn regions_are_scored_as_unions_of_labels_and_ignore_counts_for_nothing() {
        let plan = brats();
        // Predicted: decoded class indices (0, then each region's); reference: label ids.
        let written = plan.written_labels();
        let reference_ids: Vec<u16> = (0..=5).collect(); // 5 = ignore
        let targets = Targets::regions(&plan, &written, &reference_ids);
        // Reference labels 2, 1, 4 and an ignored voxel; predicted wt-only, wt+tc, all, all.
        let reference = [2, 1, 4, 5];
        let predicted = [1, 2, 3, 3];
        let outcomes = targets.outcomes(&predicted, &reference, Some(5));
        assert_eq!(outcomes, [(3, 0, 0), (2, 0, 0), (1, 0, 0)]);
        let predicted = [0, 1, 3, 0];
        let outcomes = targets.outcomes(&predicted, &reference, Some(5));
        // wt: voxel 0 missed; tc: voxel 1 missed (predicted wt only); et: hit.
        assert_eq!(outcomes, [(2, 0, 1), (1, 0, 1), (1, 0, 0)]);
        assert_eq!(dice(outcomes[0]), 0.8);
        assert!(dice((0, 0, 0)).is_nan());
        let classes = Targets::Classes(3).outcomes(&[1, 2, 0], &[1, 1, 0], None);
        assert_eq!(classes, [(1, 0, 1), (0, 1, 0)]);
    }

    #[test]
    fn argmax_decoding_takes_the_first_best_and_background_holds_the_outside() {
        let probabilities = [[0.5, 0.2], [0.5, 0.3], [0.0, 0.5]].concat();
        assert_eq!(Decoding::Argmax.classes(&probabilities, 3), [0, 2]);
        assert_eq!(Decoding::Argmax.outside(0), 1.0);
        assert_eq!(Decoding::Regions.outside(0), 0.0);
        assert_eq!(Decoding::Regions.class_count(3), 4);
    }
}
