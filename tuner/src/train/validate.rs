//! Validation: full sliding-window inference on each validation case, Dice per foreground
//! class from the summed confusion over the cases (classes absent everywhere: NaN).

use autoseg_kernels::overlap::ConfusionMatrix;
use autoseg_templates::inference::argmax;
use autoseg_templates::networks::Network;
use burn::tensor::Device;

use super::TrainConfig;
use crate::data::preprocess::PreparedCase;

/// Dice per foreground class over the validation cases (nnU-Net's per-case mean is close;
/// the pooled figure is steadier on small folds).
pub fn dice(
    net: &Network,
    cases: &[PreparedCase],
    config: &TrainConfig,
    device: &Device,
) -> Vec<f64> {
    let classes = config.network.out_channels();
    let window = config.sliding_window();
    let mut counts = vec![(0u64, 0u64, 0u64); classes];
    for case in cases {
        let h = &case.header;
        let probabilities =
            window.predict(case.image(), h.channels, h.dims, classes, device, |x| {
                net.forward(x)
            });
        let predicted = argmax(&probabilities, classes);
        let reference: Vec<u16> = case.label().iter().map(|&l| l as u16).collect();
        let confusion = ConfusionMatrix::of(&predicted, &reference, classes);
        for (k, c) in counts.iter_mut().enumerate() {
            let (tp, fp, fn_) = confusion.outcomes(k);
            *c = (c.0 + tp, c.1 + fp, c.2 + fn_);
        }
    }
    counts[1..]
        .iter()
        .map(|&(tp, fp, fn_)| {
            let denominator = 2 * tp + fp + fn_;
            if denominator == 0 {
                f64::NAN
            } else {
                2.0 * tp as f64 / denominator as f64
            }
        })
        .collect()
}
