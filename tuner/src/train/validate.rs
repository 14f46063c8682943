//! Validation: full sliding-window inference on each validation case (streamed along z and
//! decoded a slice at a time, so many classes never take a whole volume each), then Dice per
//! foreground class (or per region) as MONAI's `DiceMetric` and nnU-Net report it: per
//! case, then the mean over the cases whose reference holds the class (an absent class is
//! NaN for that case and left out). Voxels of the ignore label count for nothing.

use autoseg_datasets::regions::{Targets, dice as dice_of};
use autoseg_templates::inference::{HeadSlices, streamed_classes};
use autoseg_templates::networks::Network;
use burn::tensor::Device;

use super::TrainConfig;
use autoseg_datasets::training::prepared::PreparedCase;

/// Mean Dice per foreground class (per region) over `cases`; NaN for one in no reference.
pub fn dice(
    net: &Network,
    cases: &[PreparedCase],
    config: &TrainConfig,
    device: &Device,
) -> Vec<f64> {
    let outputs = config.network.out_channels();
    let window = config.sliding_window();
    let decoding = config.decoding();
    let targets = scored_targets(config);
    let ignore = config.preprocessing.ignore_class().map(u16::from);
    let mut sums = vec![(0.0f64, 0usize); targets.count()];
    let forward = HeadSlices {
        network: net,
        decoding,
        mirror_axes: &[],
    };
    for case in cases {
        let h = &case.header;
        let image = case.image().to_vec();
        let classes = streamed_classes(
            &window, image, h.channels, h.dims, outputs, decoding, &forward, device,
        );
        let predicted: Vec<u16> = classes.into_iter().map(u16::from).collect();
        let reference: Vec<u16> = case.label().iter().map(|&l| l as u16).collect();
        let outcomes = targets.outcomes(&predicted, &reference, ignore);
        for (sum, outcome) in sums.iter_mut().zip(outcomes) {
            let (tp, _, fn_) = outcome;
            if tp + fn_ > 0 {
                sum.0 += dice_of(outcome);
                sum.1 += 1;
            }
        }
    }
    sums.into_iter()
        .map(|(s, n)| if n == 0 { f64::NAN } else { s / n as f64 })
        .collect()
}

/// What validation scores: the foreground classes, or the regions (decoded classes stand
/// for the labels the regions are written as, the reference's for the bundle's labels).
fn scored_targets(config: &TrainConfig) -> Targets {
    match &config.regions {
        None => Targets::Classes(config.network.out_channels()),
        Some(plan) => Targets::regions(plan, &plan.written_labels(), &config.preprocessing.labels),
    }
}
