//! Pieces every template fills the same way: where the data is, the classes and input
//! channels, and the training-length and resource keys.

use autoseg_datasets::workdir;
use serde_json::{Map, Value, json};

use super::overrides::set_dotted;
use super::stats::FINGERPRINT;
use super::{Derivation, TemplateError, TemplateInput};
use crate::networks::NetworkConfig;
use autoseg_datasets::transforms::preprocess::Normalization;

/// The `data` block: datalist, root and folds (the fold itself is set per bundle); the
/// preprocessed cases are cached in the work dir, shared by every bundle with the same
/// preprocessing.
pub fn data_block(input: &TemplateInput) -> Value {
    let mut data = json!({
        "datalist": input.task.datalist,
        "dataroot": input.task.dataroot,
        "fold": 0,
        "num_folds": input.task.num_folds,
        "cache_dir": workdir::default_cache_from_bundle(),
    });
    if let Some(folds) = &input.task.folds {
        data["folds"] = json!(folds);
    }
    data
}

/// The dataset's label ids (background first) and the image channels.
pub fn classes_and_channels(
    input: &TemplateInput,
    d: &mut Derivation,
) -> Result<(Vec<u16>, usize), TemplateError> {
    let found = input.stats.labels()?;
    let ignore = input.task.ignore_label;
    let labels: Vec<u16> = found
        .iter()
        .copied()
        .filter(|&l| Some(l) != ignore)
        .collect();
    let labels = d.record(
        "preprocessing.labels",
        labels,
        "every label id found in the dataset but the ignore label, in order; id labels[k] \
         is trained as class k (MONAI assumes ids 0..N-1)",
        &[
            ("stats_summary.label_stats.labels", json!(found)),
            ("task.ignore_label", json!(ignore)),
        ],
    );
    let key = "stats_summary.image_stats.channels.max";
    let channels = input.stats.number(key)? as usize;
    let channels = d.record(
        "network.in_channels",
        channels,
        "the most channels any case has",
        &[(key, json!(channels))],
    );
    Ok((labels, channels))
}

/// Foreground intensity figure `field` (`mean`, `stdev`, `percentile_00_5`...) of channel 0.
pub fn foreground(input: &TemplateInput, field: &str) -> Result<(String, f64), TemplateError> {
    let key = format!("{FINGERPRINT}.foreground_intensity_properties_per_channel[0].{field}");
    Ok((key.clone(), input.stats.number(&key)?))
}

/// nnU-Net's normalisation: CT is clipped to the foreground's 0.5-99.5 percentiles and
/// standardised with the foreground's mean and deviation; other modalities are
/// standardised per image, over the non-zero voxels when cropping to them shrank the median
/// image below 75 %.
pub fn nnunet_normalization(
    input: &TemplateInput,
    d: &mut Derivation,
) -> Result<(Normalization, String), TemplateError> {
    let key = "preprocessing.normalization";
    if input.task.is_ct() {
        let figures = ["percentile_00_5", "percentile_99_5", "mean", "stdev"]
            .map(|f| foreground(input, f))
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        let [lower, upper, mean, std] = [0, 1, 2, 3].map(|i| figures[i].1 as f32);
        let inputs: Vec<(&str, Value)> = figures
            .iter()
            .map(|(k, v)| (k.as_str(), json!(v)))
            .collect();
        let n = d.record(
            key,
            Normalization::Ct {
                lower,
                upper,
                mean,
                std,
            },
            "CT: clip to the foreground's 0.5-99.5 percentiles, then standardise with the \
             foreground's mean and deviation (nnU-Net's CTNormalization)",
            &inputs,
        );
        let words = format!(
            "CT: clipped to [{lower:.1}, {upper:.1}], minus {mean:.2}, divided by {std:.2}"
        );
        return Ok((n, words));
    }
    let size_key = format!("{FINGERPRINT}.median_relative_size_after_cropping");
    let relative = input.stats.number(&size_key)?;
    let (n, words) = if relative < 0.75 {
        (
            Normalization::ZScoreNonzero,
            "z-score per image and channel over the non-zero voxels",
        )
    } else {
        (
            Normalization::ZScore,
            "z-score per image and channel over every voxel",
        )
    };
    let rule = "not CT: z-score per image; over the non-zero voxels only when cropping to \
                them shrank the median image below 75 % (nnU-Net's use_mask_for_norm)";
    let n = d.record(key, n, rule, &[(&size_key, json!(relative))]);
    Ok((n, words.to_string()))
}

/// The training run's time budget from the resources, recorded when there is one.
pub fn time_budget(input: &TemplateInput, d: &mut Derivation) -> Value {
    match input.resources.time_budget_seconds {
        Some(seconds) => json!(d.record(
            "time_budget_seconds",
            seconds,
            "the time budget given for each bundle's training: the run stops at the end of \
             the epoch that passes it",
            &[("resources.time_budget_seconds", json!(seconds))],
        )),
        None => Value::Null,
    }
}

/// Per-bundle training budgets under this many seconds (12 hours) get the
/// [`short_budget_recipe`]: nnU-Net's 1000 epochs of 250 steps take 12 to 48 hours on one
/// GPU, and its SGD from 0.01 has not found small structures after a few hundred steps.
pub const SHORT_BUDGET_SECONDS: f64 = 12.0 * 3600.0;

/// The bundle's training budget when it is too short for nnU-Net's schedule.
pub fn short_budget(input: &TemplateInput) -> Option<f64> {
    input
        .resources
        .time_budget_seconds
        .filter(|&s| s < SHORT_BUDGET_SECONDS)
}

/// Replaces an nnU-Net recipe by one that learns in a few thousand steps (what
/// `bench/train_task04.sh` found on Task04 in a CPU budget): AdamW at 3e-3 with a warm-up
/// cosine decay that ends with the budget, batches of 2 so the budget makes more steps,
/// nnU-Net's Dice pooled over the batch, and a validation every 200 steps so the best
/// epoch is seen. The patch, network and loss stay nnU-Net's.
pub fn short_budget_recipe(config: &mut Map<String, Value>, d: &mut Derivation, seconds: f64) {
    let choices = [
        (
            "optimizer",
            json!({"name": "adam_w", "weight_decay": 1e-5}),
            "AdamW, which learns small structures in fewer steps than SGD",
        ),
        (
            "learning_rate",
            json!(3e-3),
            "3e-3, the fastest rate that trained stably on Task04 in a CPU budget",
        ),
        (
            "schedule",
            json!({"name": "warmup_cosine", "warmup_steps": 20}),
            "20 warm-up steps, then a cosine decay that ends when the budget does",
        ),
        (
            "batch_size",
            json!(2),
            "nnU-Net's smallest batch, so the budget makes the most steps",
        ),
        (
            "iterations_per_epoch",
            json!(50),
            "epochs of 50 steps, so the budget ends close to an epoch's end",
        ),
        (
            "num_epochs",
            config["num_epochs"].clone(),
            "kept as an upper bound: the budget ends training first",
        ),
        (
            "loss.loss.batch",
            json!(true),
            "Dice pooled over the batch (nnU-Net's batch Dice), steadier at batch 2",
        ),
        (
            "validation.every",
            json!(4),
            "a sliding-window validation every 4 epochs (200 steps)",
        ),
        (
            "validation.batch",
            json!(4),
            "4 windows a pass, so validations take little of the budget",
        ),
    ];
    for (key, value, rule) in choices {
        set_dotted(config, key, value.clone())
            .expect("nnU-Net's recipe holds every block the short recipe sets");
        d.record(
            key,
            value,
            &format!("the budget is under 12 hours, too short for nnU-Net's 250,000 steps: {rule}"),
            &[("resources.time_budget_seconds", json!(seconds))],
        );
    }
}

/// Batches made ahead of the model: one per core, at least 2, so the loader (which makes
/// each batch's patches in parallel) absorbs slow batches on a busy machine.
pub fn prefetch(input: &TemplateInput, d: &mut Derivation) -> Value {
    let cores = input.resources.cores;
    json!(d.record(
        "prefetch",
        cores.max(2),
        "one batch made ahead per CPU core, at least 2",
        &[("resources.cores", json!(cores))],
    ))
}

/// What every template decides and every configuration holds.
pub struct Plan {
    /// `preprocessing`: target spacing, normalisation, label ids.
    pub preprocessing: Value,
    /// `network`.
    pub network: NetworkConfig,
    /// `patch_size`.
    pub patch: [usize; 3],
    /// `batch_size`.
    pub batch: usize,
}

/// A configuration with the keys every template fills alike: data, preprocessing,
/// network, patch and batch size, time budget and prefetching; the template adds its
/// recipe (loss, optimiser, schedule...).
pub fn base_config(input: &TemplateInput, d: &mut Derivation, plan: Plan) -> Map<String, Value> {
    let mut config = Map::new();
    config.insert("data".into(), data_block(input));
    let mut preprocessing = plan.preprocessing;
    if let Some(id) = input.task.ignore_label {
        let id = d.record(
            "preprocessing.ignore_label",
            id,
            "the task's ignore label (nnU-Net's `ignore`): its voxels take no part in the \
             loss, the foreground sampling or the validation Dice",
            &[("task.ignore_label", json!(id))],
        );
        preprocessing["ignore_label"] = json!(id);
    }
    config.insert("preprocessing".into(), preprocessing);
    config.insert("network".into(), json!(plan.network));
    config.insert("patch_size".into(), json!(plan.patch));
    config.insert("batch_size".into(), json!(plan.batch));
    config.insert("time_budget_seconds".into(), time_budget(input, d));
    config.insert("prefetch".into(), prefetch(input, d));
    config
}

/// Sets the keys of a recipe (loss, optimiser...) given as one JSON mapping.
pub fn add_recipe(config: &mut Map<String, Value>, recipe: Value) {
    if let Value::Object(map) = recipe {
        config.extend(map);
    }
}

/// The iterations that make `epochs` worth of warm-up.
pub fn steps(epochs: usize, iterations_per_epoch: usize) -> usize {
    epochs * iterations_per_epoch
}
