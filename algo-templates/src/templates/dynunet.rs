//! `dynunet`: nnU-Net v2's 3d_fullres plan and training recipe, on MONAI's DynUNet.
//!
//! Target spacing: the median, except that a strongly anisotropic coarse axis takes its
//! 10th percentile. Patch: shaped like 1/spacing with 256^3 voxels, clipped to the median
//! image, shrunk axis by axis until nnU-Net's memory proxy fits the GPU. Topology from
//! [`pool_and_conv`]. Batch: what the memory left allows, capped so one batch covers at
//! most 5 % of the dataset's voxels, at least 2. A time budget under 12 hours swaps
//! nnU-Net's recipe for [`short_budget_recipe`]'s, and on CPU cores alone also halves the
//! widths ([`cpu_budget_filters`]).

use serde_json::json;

use super::memory::{REFERENCE_3D, REFERENCE_BATCH_3D, REFERENCE_GB, dynunet_feature_map};
use super::recipe::{
    Plan, add_recipe, base_config, classes_and_channels, nnunet_normalization, short_budget,
    short_budget_recipe,
};
use super::stats::FINGERPRINT;
use super::topology::{Topology, pool_and_conv};
use super::{Derivation, Filled, Template, TemplateError, TemplateInput};
use crate::networks::{DynUNetConfig, NetworkConfig, Triple, nnunet_filters};

/// nnU-Net's `ANISO_THRESHOLD`.
const ANISOTROPY_THRESHOLD: f64 = 3.0;
/// nnU-Net's `UNet_featuremap_min_edge_length`.
const MIN_FEATURE_MAP: usize = 4;
/// nnU-Net's `max_dataset_covered`.
const MAX_DATASET_COVERED: f64 = 0.05;
/// nnU-Net's `UNet_min_batch_size`.
const MIN_BATCH: usize = 2;

/// The nnU-Net template.
pub struct DynUnetTemplate;

/// nnU-Net's `determine_fullres_target_spacing`, from the fingerprint's median and
/// 10th-percentile spacings and median shape.
pub fn fullres_spacing(median: [f64; 3], p10: [f64; 3], median_shape: [f64; 3]) -> [f64; 3] {
    let worst = (0..3)
        .max_by(|&a, &b| median[a].total_cmp(&median[b]))
        .expect("three axes");
    let others: Vec<usize> = (0..3).filter(|&a| a != worst).collect();
    let max_other_spacing = others.iter().map(|&a| median[a]).fold(f64::MIN, f64::max);
    let min_other_size = others
        .iter()
        .map(|&a| median_shape[a])
        .fold(f64::MAX, f64::min);
    let aniso_spacing = median[worst] > ANISOTROPY_THRESHOLD * max_other_spacing;
    let aniso_voxels = median_shape[worst] * ANISOTROPY_THRESHOLD < min_other_size;
    let mut target = median;
    if aniso_spacing && aniso_voxels {
        let mut axis = p10[worst];
        if axis < max_other_spacing {
            axis = max_other_spacing.max(axis) + 1e-5;
        }
        target[worst] = axis;
    }
    target
}

/// nnU-Net's starting patch: shaped like 1/spacing, holding 256^3 voxels, clipped to the
/// median shape.
pub fn initial_patch(spacing: [f64; 3], median_shape: [f64; 3]) -> Triple {
    let inverse = spacing.map(|s| 1.0 / s);
    let scale = (256f64.powi(3) / inverse.iter().product::<f64>()).cbrt();
    std::array::from_fn(|a| {
        let p = (inverse[a] * scale).round_ties_even();
        p.min(median_shape[a]).ceil().max(1.0) as usize
    })
}

/// nnU-Net's widths halved, for a short budget on CPU cores: a quarter of the convolution
/// work per step (the work of a 3D convolution grows with in x out channels), so the budget
/// makes several times the steps, which matters more than width once steps are few.
pub fn cpu_budget_filters(filters: &[usize]) -> Vec<usize> {
    filters.iter().map(|&f| (f / 2).max(1)).collect()
}

/// A plan: topology, patch and batch.
#[derive(Debug, Clone, PartialEq)]
pub struct UnetPlan {
    /// Strides, kernels and the padded patch.
    pub topology: Topology,
    /// Images per batch.
    pub batch_size: usize,
    /// nnU-Net's memory proxy for the patch.
    pub estimate: f64,
    /// Times the patch was shrunk to fit memory.
    pub reductions: usize,
    /// The batch memory allowed, before the 5 % cap.
    pub batch_from_memory: usize,
    /// The batch that covers 5 % of the dataset.
    pub batch_cap: usize,
}

fn network_for(topology: &Topology, in_channels: usize, classes: usize) -> DynUNetConfig {
    let stages = topology.strides.len();
    DynUNetConfig {
        kernel_sizes: topology.kernel_sizes.clone(),
        strides: topology.strides.clone(),
        filters: Some(nnunet_filters(stages, 3)),
        deep_supervision_heads: stages.saturating_sub(2),
        ..DynUNetConfig::new(in_channels, classes)
    }
}

/// nnU-Net's `get_plans_for_configuration` for 3D: the memory loop and the batch rule.
pub fn plan_unet(
    spacing: [f64; 3],
    median_shape: [f64; 3],
    n_cases: usize,
    in_channels: usize,
    classes: usize,
    gpu_memory_gb: f64,
) -> UnetPlan {
    let reference = REFERENCE_3D * gpu_memory_gb / REFERENCE_GB;
    let mut topology = pool_and_conv(
        spacing,
        initial_patch(spacing, median_shape),
        MIN_FEATURE_MAP,
        999_999,
    );
    let estimate_of =
        |t: &Topology| dynunet_feature_map(&network_for(t, in_channels, classes), t.patch);
    let mut estimate = estimate_of(&topology);
    let mut reductions = 0;
    while estimate > reference {
        // Shrink the axis largest relative to the median image (the last on ties, as
        // numpy's argsort()[-1]), by what the smaller patch must be divisible by.
        let ratios: Vec<f64> = (0..3)
            .map(|a| topology.patch[a] as f64 / median_shape[a])
            .collect();
        let axis = (0..3)
            .rev()
            .max_by(|&a, &b| ratios[a].total_cmp(&ratios[b]).then(a.cmp(&b)))
            .expect("three axes");
        let mut trial = topology.patch;
        trial[axis] -= topology.divisible_by[axis];
        let step = pool_and_conv(spacing, trial, MIN_FEATURE_MAP, 999_999).divisible_by[axis];
        let mut patch = topology.patch;
        patch[axis] -= step;
        topology = pool_and_conv(spacing, patch, MIN_FEATURE_MAP, 999_999);
        estimate = estimate_of(&topology);
        reductions += 1;
    }
    let batch_from_memory = (reference / estimate * REFERENCE_BATCH_3D).round_ties_even() as usize;
    let dataset_voxels = median_shape.iter().product::<f64>() * n_cases as f64;
    let patch_voxels = topology.patch.iter().map(|&p| p as f64).product::<f64>();
    let batch_cap =
        (dataset_voxels * MAX_DATASET_COVERED / patch_voxels).round_ties_even() as usize;
    UnetPlan {
        batch_size: batch_from_memory.min(batch_cap).max(MIN_BATCH),
        topology,
        estimate,
        reductions,
        batch_from_memory,
        batch_cap,
    }
}

impl Template for DynUnetTemplate {
    fn name(&self) -> &'static str {
        "dynunet"
    }

    fn summary(&self) -> &'static str {
        "nnU-Net's U-Net (MONAI DynUNet) with nnU-Net v2's 3d_fullres plan and training recipe"
    }

    fn fill(&self, input: &TemplateInput) -> Result<Filled, TemplateError> {
        let stats = input.stats;
        let mut d = Derivation::new(self.name());
        let (labels, in_channels) = classes_and_channels(input, &mut d)?;
        let keys = [
            format!("{FINGERPRINT}.median_spacing"),
            format!("{FINGERPRINT}.spacing_percentile_10"),
            format!("{FINGERPRINT}.median_shape_after_crop"),
        ];
        let [median, p10, shape] = [0, 1, 2].map(|i| stats.triple(&keys[i]));
        let (median, p10, shape) = (median?, p10?, shape?);
        let n_cases = stats.number("stats_summary.n_cases")? as usize;
        let spacing = d.record(
            "preprocessing.target_spacing",
            fullres_spacing(median, p10, shape),
            "median spacing; a coarse axis more than 3x the others' spacing, with fewer than \
             a third of their voxels, takes its 10th percentile instead (nnU-Net)",
            &[
                (&keys[0], json!(median)),
                (&keys[1], json!(p10)),
                (&keys[2], json!(shape)),
            ],
        );
        // nnU-Net takes the median of every case's resampled shape; from the summary we
        // have the median shape at the median spacing, resampled.
        let median_shape: [f64; 3] = std::array::from_fn(|a| shape[a] * median[a] / spacing[a]);
        let gpu_gb = input.resources.gpu_memory_gb.unwrap_or(REFERENCE_GB);
        let plan = plan_unet(
            spacing,
            median_shape,
            n_cases,
            in_channels,
            labels.len(),
            gpu_gb,
        );
        let topology = &plan.topology;
        let plan_inputs = [
            ("median shape at the target spacing", json!(median_shape)),
            ("target spacing", json!(spacing)),
            ("resources.gpu_memory_gb", json!(gpu_gb)),
            (
                "nnU-Net memory proxy (feature-map values)",
                json!(plan.estimate),
            ),
            ("patch reductions to fit memory", json!(plan.reductions)),
        ];
        let patch = d.record(
            "patch_size",
            topology.patch,
            "shaped like 1/spacing with 256^3 voxels, clipped to the median shape, shrunk \
             while nnU-Net's memory proxy exceeds 560e6 x GB/8, padded to the strides",
            &plan_inputs,
        );
        let mut network = network_for(topology, in_channels, labels.len());
        let cpu_budget = short_budget(input).filter(|_| input.resources.cpu_only);
        if cpu_budget.is_some() {
            network.filters = network.filters.as_deref().map(cpu_budget_filters);
        }
        d.record(
            "network.strides",
            &network.strides,
            "halve every axis whose spacing is within 2x of the finest while its feature map \
             keeps at least 8 voxels (nnU-Net's get_pool_and_conv_props)",
            &[
                ("patch_size", json!(patch)),
                ("target spacing", json!(spacing)),
            ],
        );
        d.record(
            "network.kernel_sizes",
            &network.kernel_sizes,
            "3 along axes within 2x of the finest spacing, else 1; 3 everywhere at the \
             bottleneck (nnU-Net)",
            &[("target spacing", json!(spacing))],
        );
        let mut filter_inputs = vec![("stages", json!(topology.strides.len()))];
        let filter_rule = match cpu_budget {
            None => "32 x 2^stage, capped at 320 (nnU-Net)",
            Some(seconds) => {
                filter_inputs.extend([
                    ("resources.cpu_only", json!(true)),
                    ("resources.time_budget_seconds", json!(seconds)),
                ]);
                "half nnU-Net's widths (16 x 2^stage, capped at 160): on CPU cores alone a \
                 budget under 12 hours makes a few thousand steps, and a quarter of the \
                 convolution work makes about 3x as many (Task04 on 2 cores: 5,700 steps \
                 instead of 2,000 in 81 minutes, cross-validation Dice 0.881 instead of 0.864)"
            }
        };
        d.record(
            "network.filters",
            &network.filters,
            filter_rule,
            &filter_inputs,
        );
        let batch_size = d.record(
            "batch_size",
            plan.batch_size,
            "round(memory reference / proxy x 2), capped so a batch covers at most 5 % of \
             the dataset's voxels, at least 2 (nnU-Net)",
            &[
                ("batch from memory", json!(plan.batch_from_memory)),
                ("batch covering 5 % of the dataset", json!(plan.batch_cap)),
                ("stats_summary.n_cases", json!(n_cases)),
            ],
        );
        let (normalization, intensity) = nnunet_normalization(input, &mut d)?;
        let plan = Plan {
            preprocessing: json!({"target_spacing": spacing, "normalization": normalization,
                                  "labels": labels}),
            network: NetworkConfig::Dynunet(network),
            patch,
            batch: batch_size,
        };
        let mut config = base_config(input, &mut d, plan);
        add_recipe(
            &mut config,
            json!({
                "loss": {"loss": {"name": "dice_ce", "include_background": false, "batch": false,
                                  "smooth_nr": 1e-5, "smooth_dr": 1e-5},
                         "weights": "halving"},
                "optimizer": {"name": "sgd", "momentum": 0.99, "nesterov": true,
                              "weight_decay": 3e-5},
                "schedule": {"name": "polynomial", "power": 0.9},
                "learning_rate": 1e-2,
                "num_epochs": 1000,
                "iterations_per_epoch": 250,
                "grad_clip_norm": 12.0,
                "sampling": {"name": "foreground", "foreground": 0.33},
                "augment": {},
                "validation": {"every": 10, "overlap": 0.5, "batch": 1},
                "inference": {"overlap": 0.5, "batch": 1, "mirror_axes": [0, 1, 2]},
            }),
        );
        d.record(
            "num_epochs",
            1000,
            "nnU-Net's 1000 epochs of 250 iterations, SGD (Nesterov, 0.99) from 0.01 with \
             polynomial decay, Dice + CE with deep supervision, a third of patches centred \
             on foreground",
            &[],
        );
        d.record(
            "inference.mirror_axes",
            [0, 1, 2],
            "test-time augmentation: every combination of mirrored axes, 8 passes per window, \
             probabilities averaged (nnU-Net)",
            &[],
        );
        d.record(
            "validation.every",
            10,
            "a full sliding-window validation every 10 epochs (nnU-Net estimates a pseudo \
             Dice on patches every epoch instead)",
            &[],
        );
        if let Some(seconds) = short_budget(input) {
            short_budget_recipe(&mut config, &mut d, seconds);
        }
        Ok(Filled {
            config,
            derivation: d,
            intensity,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task04_plans_as_nnunet_does() {
        // Dataset004 at 1 mm, median 36x50x35 (nnU-Net's order), 208 cases here.
        let spacing = fullres_spacing([1.0; 3], [1.0; 3], [36.0, 50.0, 35.0]);
        assert_eq!(spacing, [1.0; 3]);
        assert_eq!(initial_patch(spacing, [36.0, 50.0, 35.0]), [36, 50, 35]);
        let plan = plan_unet(spacing, [36.0, 50.0, 35.0], 208, 1, 3, 8.0);
        assert_eq!(plan.topology.patch, [40, 56, 40]);
        assert_eq!(plan.topology.strides.len(), 4);
        // 36*50*35*208*0.05 / (40*56*40) = 7.3 -> 7, nnU-Net's batch for this dataset.
        assert_eq!(plan.batch_size, 7);
        assert_eq!(plan.reductions, 0);
    }

    #[test]
    fn thick_slices_take_the_tenth_percentile_only_when_also_few() {
        // 0.7 x 0.7 x 5 mm with 512x512x40 voxels: anisotropic in spacing and voxels.
        let s = fullres_spacing([0.7, 0.7, 5.0], [0.6, 0.6, 2.5], [512.0, 512.0, 40.0]);
        assert_eq!(s, [0.7, 0.7, 2.5]);
        // The same spacing over 512x512x300 voxels keeps the median.
        let s = fullres_spacing([0.7, 0.7, 5.0], [0.6, 0.6, 2.5], [512.0, 512.0, 300.0]);
        assert_eq!(s, [0.7, 0.7, 5.0]);
    }

    #[test]
    fn a_large_ct_is_shrunk_to_fit_memory() {
        let plan = plan_unet([0.8, 0.8, 1.0], [400.0, 400.0, 300.0], 100, 1, 5, 8.0);
        assert!(plan.reductions > 0);
        assert!(plan.estimate <= REFERENCE_3D);
        assert_eq!(plan.batch_size, 2);
        for a in 0..3 {
            assert_eq!(plan.topology.patch[a] % plan.topology.divisible_by[a], 0);
        }
        assert!(plan.topology.strides.len() <= 7);
    }
}
