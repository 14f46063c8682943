//! `segresnet`: Auto3DSeg's flagship template, MONAI's SegResNetDS with its rules.
//!
//! Target spacing `[med_x, med_y, max(mean(med_x, med_y), p10_z)]`, used only when the
//! dataset's spacings stray from it (0.5th percentile below half of it, or 99.5th above
//! 1.5x). ROI from 224x224x144 clipped to the image, on up to 5 levels. CT: the foreground's
//! 0.5-99.5 percentiles mapped to [-1, 1], then a sigmoid; others: z-score on non-zero
//! voxels. Epochs `clip(ceil(80000 / cases), 300, 1250)`; crops per image from GPU memory.

use serde_json::{Value, json};

use super::cpu_memory::fitted_step;
use super::recipe::{
    Plan, add_recipe, base_config, classes_and_channels, foreground, short_budget, steps,
};
use super::{Derivation, Filled, Template, TemplateError, TemplateInput};
use crate::networks::{NetworkConfig, SegResNetDsConfig};
use autoseg_datasets::transforms::preprocess::Normalization;

/// The Auto3DSeg template.
pub struct SegResNetTemplate;

/// Auto3DSeg's default ROI before clipping.
const DEFAULT_ROI: [usize; 3] = [224, 224, 144];
/// The most levels (resolutions) of the network.
const MAX_LEVELS: usize = 5;

/// Auto3DSeg's width, 32 filters at the first level doubling to 512 at the fifth (87M
/// parameters on Task04); halved on CPU cores alone with a budget under 12 hours, as
/// dynunet's CPU rule does: a quarter of the convolution work, so a CPU budget makes about
/// 4x the steps (Task04 on 2 cores: 6.1 s a step at 32, calibrated by `autoseg run`).
fn init_filters(input: &TemplateInput, d: &mut Derivation) -> usize {
    let Some(seconds) = short_budget(input).filter(|_| input.resources.cpu_only) else {
        return d.record(
            "network.init_filters",
            32,
            "Auto3DSeg's 32, doubling at each level",
            &[],
        );
    };
    d.record(
        "network.init_filters",
        16,
        "half Auto3DSeg's 32: on CPU cores alone a budget under 12 hours makes a few \
         thousand steps, and a quarter of the convolution work makes about 4x as many",
        &[
            ("resources.cpu_only", json!(true)),
            ("resources.time_budget_seconds", json!(seconds)),
        ],
    )
}

/// Auto3DSeg's `auto` target spacing from the median and 10th-percentile spacings.
pub fn auto_spacing(median: [f64; 3], p10: [f64; 3]) -> [f64; 3] {
    let in_plane = (median[0] + median[1]) / 2.0;
    [median[0], median[1], in_plane.max(p10[2])]
}

/// Whether the spacings stray enough from `target` to resample.
pub fn needs_resampling(p005: [f64; 3], p995: [f64; 3], target: [f64; 3]) -> bool {
    (0..3).any(|a| p005[a] / target[a] < 0.5 || p995[a] / target[a] > 1.5)
}

/// The ROI and level count: the default clipped to the image, levels as many as the
/// smallest axis allows (at most 5), each axis rounded up to a multiple of
/// `2^(levels - 1)`.
pub fn roi_and_levels(
    image: [f64; 3],
    default: [usize; 3],
    max_levels: usize,
) -> ([usize; 3], usize) {
    let clipped: [usize; 3] = std::array::from_fn(|a| default[a].min(image[a].max(1.0) as usize));
    let smallest = *clipped.iter().min().expect("three axes");
    let levels = ((smallest as f64).log2().floor() as usize).clamp(2, max_levels);
    let divisor = 1usize << (levels - 1);
    (clipped.map(|r| r.next_multiple_of(divisor)), levels)
}

/// SegResNetDS's encoder blocks for a level count (Auto3DSeg's table).
pub fn blocks_down(levels: usize) -> Vec<usize> {
    match levels {
        1 => vec![8],
        2 => vec![2, 6],
        3 => vec![1, 3, 4],
        4 => vec![1, 2, 2, 4],
        _ => vec![1, 2, 2, 4, 4],
    }
}

impl Template for SegResNetTemplate {
    fn name(&self) -> &'static str {
        "segresnet"
    }

    fn summary(&self) -> &'static str {
        "MONAI's SegResNetDS with Auto3DSeg's segresnet rules and training recipe"
    }

    fn fill(&self, input: &TemplateInput) -> Result<Filled, TemplateError> {
        let stats = input.stats;
        let mut d = Derivation::new(self.name());
        let (labels, in_channels) = classes_and_channels(input, &mut d)?;
        let key = |k: &str| format!("stats_summary.image_stats.{k}");
        let median = stats.triple(&key("spacing.median"))?;
        let p10 = stats.triple(&key("spacing.percentile_10_0"))?;
        let p005 = stats.triple(&key("spacing.percentile_00_5"))?;
        let p995 = stats.triple(&key("spacing.percentile_99_5"))?;
        let auto = auto_spacing(median, p10);
        let resample = needs_resampling(p005, p995, auto);
        let spacing_inputs = [
            (key("spacing.median"), json!(median)),
            (key("spacing.percentile_10_0"), json!(p10)),
            (key("spacing.percentile_00_5"), json!(p005)),
            (key("spacing.percentile_99_5"), json!(p995)),
        ];
        let inputs: Vec<(&str, Value)> = spacing_inputs
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        let target = d.record(
            "preprocessing.target_spacing",
            resample.then_some(auto),
            "[med_x, med_y, max(mean(med_x, med_y), p10_z)], only when some case's spacing is \
             under half or over 1.5x of it; otherwise each case keeps its own (Auto3DSeg)",
            &inputs,
        );
        let sizemm_key = key("sizemm.percentile_99_5");
        let shape_key = key("shape.percentile_99_5");
        let image: [f64; 3] = match target {
            Some(t) => {
                let mm = stats.triple(&sizemm_key)?;
                std::array::from_fn(|a| mm[a] / t[a])
            }
            None => stats.triple(&shape_key)?,
        };
        let (roi, levels) = roi_and_levels(image, DEFAULT_ROI, MAX_LEVELS);
        let roi = d.record(
            "patch_size",
            roi,
            "224x224x144 clipped to the 99.5th-percentile image size, rounded up to a multiple \
             of 2^(levels-1), levels = min(5, log2 of the smallest axis) (Auto3DSeg)",
            &[(
                if target.is_some() {
                    &sizemm_key
                } else {
                    &shape_key
                },
                json!(image),
            )],
        );
        let init_filters = init_filters(input, &mut d);
        let network = SegResNetDsConfig {
            init_filters,
            blocks_down: blocks_down(levels),
            blocks_up: None,
            dsdepth: 4.min(levels - 1).max(1),
            resolution: None,
            ..SegResNetDsConfig::new(in_channels, labels.len())
        };
        d.record(
            "network.blocks_down",
            &network.blocks_down,
            "Auto3DSeg's blocks per level for this many levels",
            &[("levels", json!(levels))],
        );
        let (normalization, intensity) = normalization(input, &mut d)?;
        let n_cases = stats.number("stats_summary.n_cases")?;
        let gpu_gb = input.resources.gpu_memory_gb.unwrap_or(16.0);
        let crops = d.record(
            "batch_size",
            (1.1 * (gpu_gb / 16.0).max(1.0)) as usize,
            "crops per image: int(1.1 x max(1, GPU GB / 16)) (Auto3DSeg)",
            &[("resources.gpu_memory_gb", json!(gpu_gb))],
        );
        let epochs = ((80000.0 / n_cases).ceil().clamp(300.0, 1250.0) as usize) / crops.min(3);
        let epochs = d.record(
            "num_epochs",
            epochs,
            "clip(ceil(80000 / cases), 300, 1250), divided by min(3, crops per image) \
             (Auto3DSeg)",
            &[("stats_summary.n_cases", json!(n_cases))],
        );
        let training_cases = (n_cases * (input.task.num_folds.max(2) - 1) as f64
            / input.task.num_folds.max(2) as f64)
            .ceil() as usize;
        let iterations = d.record(
            "iterations_per_epoch",
            training_cases.max(1),
            "one image per step, every training case once per epoch (Auto3DSeg)",
            &[("stats_summary.n_cases", json!(n_cases))],
        );
        // On CPU cores the patch may yet shrink to fit the machine's memory: the sampling
        // follows the patch training will take.
        let network = NetworkConfig::SegresnetDs(network);
        let (trained_roi, _) = fitted_step(&network, roi, crops, input.resources);
        let small_roi = (0..3).any(|a| (trained_roi[a] as f64) < 0.8 * image[a]);
        let sampling = if small_roi {
            json!({"name": "class_balanced", "ratios": vec![1.0; labels.len()]})
        } else {
            json!({"name": "foreground", "foreground": 0.0})
        };
        d.record(
            "sampling",
            &sampling,
            "patches centred on each class alike when the ROI training takes (after the CPU \
             memory rule, where it applies) is under 0.8x the image on some axis, else \
             uniformly random (Auto3DSeg)",
            &[
                ("patch_size", json!(trained_roi)),
                ("image size", json!(image)),
            ],
        );
        let validations = (0.16 * epochs as f64).max(10.0);
        let every = d.record(
            "validation.every",
            ((epochs as f64 / validations).round() as usize).max(1),
            "about max(10, 16 % of the epochs) validations, evenly spaced (Auto3DSeg spaces \
             them on a sine schedule, denser at the end)",
            &[("num_epochs", json!(epochs))],
        );
        let warmup = steps(3, iterations);
        let plan = Plan {
            preprocessing: json!({"target_spacing": target, "normalization": normalization,
                                  "labels": labels}),
            network,
            patch: roi,
            batch: crops,
        };
        let mut config = base_config(input, &mut d, plan);
        add_recipe(
            &mut config,
            json!({
                "loss": {"loss": {"name": "dice_ce", "include_background": true, "batch": false,
                                  "squared_pred": true, "smooth_nr": 0.0, "smooth_dr": 1e-5},
                         "weights": "monai_exp"},
                "optimizer": {"name": "adam_w", "weight_decay": 1e-5},
                "schedule": {"name": "warmup_cosine", "warmup_steps": warmup,
                             "warmup_multiplier": 0.1},
                "learning_rate": 2e-4,
                "num_epochs": epochs,
                "iterations_per_epoch": iterations,
                "sampling": sampling,
                "augment": auto3dseg_augmentation(),
                "validation": {"every": every, "overlap": 0.625, "batch": 1},
                "inference": {"overlap": 0.625, "batch": 1},
            }),
        );
        d.record(
            "learning_rate",
            2e-4,
            "AdamW from 2e-4 (weight decay 1e-5), 3 epochs of warm-up from 0.1x, then \
             cosine decay; Dice + CE (squared) with deep supervision (Auto3DSeg)",
            &[],
        );
        Ok(Filled {
            config,
            derivation: d,
            intensity,
        })
    }
}

/// Auto3DSeg's segresnet augmentation in autoseg's terms: affine (p 0.2, 15 degrees,
/// scale 0.8-1.2), smoothing 0.2, intensity scaling 0.5 (0.7-1.3), noise 0.2 (sigma 0.1),
/// flips 0.5. Its intensity shift has no counterpart here; gamma and low resolution are off.
pub fn auto3dseg_augmentation() -> Value {
    json!({
        "p_rotation": 0.2, "max_rotation_degrees": 15.0,
        "p_scale": 0.2, "scale": [0.8, 1.2],
        "p_blur": 0.2, "p_brightness": 0.5, "brightness": [0.7, 1.3],
        "p_contrast": 0.0, "p_noise": 0.2, "noise_variance": 0.01,
        "p_mirror": 0.5, "p_gamma": 0.0, "p_gamma_inverted": 0.0, "p_low_resolution": 0.0,
    })
}

/// Auto3DSeg's normalisation: CT's foreground range squashed by a sigmoid; others z-scored
/// over non-zero voxels.
pub fn normalization(
    input: &TemplateInput,
    d: &mut Derivation,
) -> Result<(Normalization, String), TemplateError> {
    let key = "preprocessing.normalization";
    if input.task.is_ct() {
        let (lk, lower) = foreground(input, "percentile_00_5")?;
        let (uk, upper) = foreground(input, "percentile_99_5")?;
        let n = Normalization::RangeSigmoid {
            lower: lower as f32,
            upper: upper as f32,
        };
        let rule = "CT: the foreground's 0.5-99.5 percentiles mapped to [-1, 1], unclipped, \
                    then a sigmoid (Auto3DSeg)";
        let n = d.record(key, n, rule, &[(&lk, json!(lower)), (&uk, json!(upper))]);
        return Ok((
            n,
            format!("CT: sigmoid of [{lower:.1}, {upper:.1}] mapped to [-1, 1]"),
        ));
    }
    let n = d.record(
        key,
        Normalization::ZScoreNonzero,
        "not CT: z-score per image and channel over the non-zero voxels (Auto3DSeg)",
        &[],
    );
    Ok((
        n,
        "z-score per image and channel over the non-zero voxels".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::templates::{DataStats, Resources, TaskInfo, fit_cpu_memory};

    /// An MRI set whose images (1 mm, 160x160x128) the default ROI covers whole.
    fn stats() -> DataStats {
        let summary = serde_json::json!({"stats_summary": {
            "n_cases": 20,
            "image_stats": {
                "channels": {"max": 1},
                "spacing": {"median": [1.0, 1.0, 1.0], "percentile_10_0": [1.0, 1.0, 1.0],
                            "percentile_00_5": [1.0, 1.0, 1.0], "percentile_99_5": [1.0, 1.0, 1.0]},
                "shape": {"percentile_99_5": [160.0, 160.0, 128.0]},
                "sizemm": {"percentile_99_5": [160.0, 160.0, 128.0]},
            },
            "label_stats": {"labels": [0, 1, 2]},
        }});
        DataStats::from_value(std::path::Path::new("datastats.yaml"), summary)
    }

    fn task() -> TaskInfo {
        TaskInfo {
            name: "phantom".into(),
            modality: "MRI".into(),
            channel_names: vec!["T1".into()],
            label_names: vec![],
            ignore_label: None,
            regions: None,
            datalist: "dataset.json".into(),
            dataroot: ".".into(),
            num_folds: 5,
            folds: None,
            data_source: String::new(),
            data_license: String::new(),
        }
    }

    #[test]
    fn sampling_follows_the_patch_the_cpu_memory_rule_leaves() {
        let (stats, task) = (stats(), task());
        let filled = |host_memory_gb| {
            let resources = Resources {
                gpu_memory_gb: None,
                cores: 2,
                time_budget_seconds: None,
                cpu_only: true,
                host_memory_gb,
            };
            let input = TemplateInput {
                stats: &stats,
                task: &task,
                resources: &resources,
            };
            let mut filled = SegResNetTemplate.fill(&input).unwrap();
            fit_cpu_memory(&mut filled, &resources);
            filled
        };
        // The whole image fits a step: uniform patches, as Auto3DSeg samples them.
        let roomy = filled(Some(1000.0));
        assert_eq!(roomy.config["patch_size"], json!([160, 160, 128]));
        assert_eq!(roomy.config["sampling"]["name"], "foreground");
        // On 4 GB the patch shrinks under 0.8x the image: patches centred on the classes.
        let tight = filled(Some(4.0));
        let patch: [usize; 3] = serde_json::from_value(tight.config["patch_size"].clone()).unwrap();
        assert!(patch[0] < 128, "{patch:?}");
        assert_eq!(tight.config["sampling"]["name"], "class_balanced");
        let sampling = tight.derivation.get("sampling").unwrap();
        assert_eq!(sampling.inputs["patch_size"], json!(patch));
    }

    #[test]
    fn spacing_and_roi_follow_auto3dseg() {
        assert_eq!(
            auto_spacing([0.8, 0.8, 5.0], [0.7, 0.7, 2.5]),
            [0.8, 0.8, 2.5]
        );
        assert_eq!(
            auto_spacing([1.0, 1.0, 0.5], [1.0, 1.0, 0.5]),
            [1.0, 1.0, 1.0]
        );
        assert!(!needs_resampling(
            [1.0, 1.0, 1.0],
            [1.0, 1.0, 1.0],
            [1.0, 1.0, 1.0]
        ));
        assert!(needs_resampling(
            [0.4, 1.0, 1.0],
            [1.0, 1.0, 1.0],
            [1.0, 1.0, 1.0]
        ));
        // Task04-sized images: 43x59x47 -> 5 levels, multiples of 16.
        assert_eq!(
            roi_and_levels([43.0, 59.0, 47.0], DEFAULT_ROI, 5),
            ([48, 64, 48], 5)
        );
        // A large CT keeps the default.
        assert_eq!(
            roi_and_levels([512.0, 512.0, 300.0], DEFAULT_ROI, 5),
            (DEFAULT_ROI, 5)
        );
        // A thin image gets fewer levels.
        assert_eq!(
            roi_and_levels([101.0, 100.0, 13.0], DEFAULT_ROI, 5),
            ([104, 100, 16], 3)
        );
    }
}
