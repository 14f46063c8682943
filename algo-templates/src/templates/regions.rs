//! Region-based targets in any template's configuration: where the task declares regions,
//! the network outputs one channel per region, trained with nnU-Net's sigmoid Dice + BCE,
//! and the bundle records the regions and the labels they are written as. Every template
//! gets the same change, so it lives here once rather than in each template.

use autoseg_datasets::id_ranges;
use serde_json::{Value, json};

use super::{Filled, TemplateError, TemplateInput};

/// Turns a filled configuration's classes into the task's regions, if it has any. A region
/// naming a label id no case holds is an error: it could never be learnt.
pub fn apply(filled: &mut Filled, input: &TemplateInput) -> Result<(), TemplateError> {
    let Some(plan) = &input.task.regions else {
        return Ok(());
    };
    let found = input.stats.labels()?;
    for region in &plan.regions {
        if let Some(id) = region.labels.iter().find(|id| !found.contains(id)) {
            return Err(TemplateError::Regions(format!(
                "region `{}` names label id {id}, which no case holds (the cases hold {})",
                region.name,
                id_ranges(found.iter().copied())
            )));
        }
    }
    let d = &mut filled.derivation;
    let task_regions = json!(plan);
    let plan = d.record(
        "regions",
        plan.clone(),
        "the task's regions (Auto3DSeg's class_names {name, index}, or nnU-Net's labels \
         lists): each trains as its own sigmoid output; a voxel is written as \
         class_order[i] where region i passes 0.5, later regions over earlier \
         (nnU-Net's regions_class_order)",
        &[("task.regions", task_regions)],
    );
    let outputs = d.record(
        "network.out_channels",
        plan.regions.len(),
        "one output per region, no background channel",
        &[("regions", json!(plan.names()))],
    );
    let config = &mut filled.config;
    config.insert("regions".into(), json!(plan));
    config["network"]["out_channels"] = json!(outputs);
    let loss = &mut config["loss"]["loss"];
    if let Value::Object(options) = loss {
        options.insert("name".into(), json!("dice_bce"));
        options.insert("activation".into(), json!("sigmoid"));
        options.insert("include_background".into(), json!(true));
    }
    d.record(
        "loss.loss",
        loss.clone(),
        "regions overlap, so each is scored on its own: sigmoid Dice plus binary \
         cross-entropy per region, every channel scored (nnU-Net's DC_and_BCE_loss)",
        &[("regions", json!(plan.names()))],
    );
    Ok(())
}
