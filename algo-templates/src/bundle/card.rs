//! A bundle's `README.md`: a model card a person reads before trusting or sharing the
//! model: what it segments, from what, made how, how to run it, and its limits.

use serde_json::{Map, Value};

use super::metadata::Metadata;

fn field(config: &Map<String, Value>, key: &str) -> String {
    let mut at = Value::Object(config.clone());
    for part in key.split('.') {
        at = at.get(part).cloned().unwrap_or(Value::Null);
    }
    match at {
        Value::String(s) => s,
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// The model card of a bundle.
pub fn model_card(m: &Metadata, config: &Map<String, Value>, summary: &str) -> String {
    let inputs: Vec<String> = m
        .inputs
        .iter()
        .enumerate()
        .map(|(i, c)| format!("| {i} | {} | {} |", c.name, c.modality))
        .collect();
    let outputs: Vec<String> = m
        .outputs
        .iter()
        .map(|c| format!("| {} | {} |", c.label, c.name))
        .collect();
    let spacing = m
        .spacing_mm
        .map_or("each image's own".into(), |s| format!("{s:?} mm"));
    format!(
        "# {task}: {template}, fold {fold}\n\n\
         {description}\n\n\
         Made by autoseg {version} (`autoseg generate`); every value in `configs/` and the \
         reason for it is in `derivation.yaml` (`autoseg inspect` shows both).\n\n\
         ## Inputs\n\n| channel | name | modality |\n|---|---|---|\n{inputs}\n\n\
         Images are reoriented to RAS, cropped to their non-zero box, resampled to \
         {spacing}, and normalised: {intensity}.\n\n\
         ## Outputs\n\n| label | class |\n|---|---|\n{outputs}\n\n\
         Predictions are label maps (uint8) on each input's own grid, orientation and affine.\n\n\
         ## Model\n\n{summary}. Patch {patch}, batch {batch}, {epochs} epochs of {iterations} \
         iterations; optimiser {optimizer}, learning rate {lr}.\n\n\
         ## Use\n\n```\nautoseg train --bundle .            # train (add --resume to continue)\n\
         autoseg predict --bundle . --images IMAGES --out OUT\n\
         autoseg inspect .                    # configuration, reasons, training status\n```\n\n\
         Weights: `model/best.safetensors` ({weights}).\n\n\
         ## Data\n\nSource: {source}. Licence: {license}. The bundle holds no images; its \
         configuration points to the datalist by a relative path.\n\n\
         ## Limits\n\nA research model, not a medical device. It has seen only its training \
         data's scanners, protocols and population; check it on your own data before relying \
         on it. Its validation Dice is in `progress.yaml` once trained.\n",
        task = m.task,
        template = m.template,
        fold = m.fold,
        description = m.description,
        version = m.autoseg_version,
        inputs = inputs.join("\n"),
        intensity = m.intensity_normalization,
        outputs = outputs.join("\n"),
        patch = field(config, "patch_size"),
        batch = field(config, "batch_size"),
        epochs = field(config, "num_epochs"),
        iterations = field(config, "iterations_per_epoch"),
        optimizer = field(config, "optimizer.name"),
        lr = field(config, "learning_rate"),
        weights = m.weights_format,
        source = m.data_source,
        license = m.data_license,
    )
}
