//! Validation: full sliding-window inference on each validation case, then Dice per
//! foreground class as MONAI's `DiceMetric` and nnU-Net report it: per case, then the mean
//! over the cases whose reference holds the class (an absent class is NaN for that case and
//! left out). Voxels of the ignore label count for nothing.

use autoseg_kernels::overlap::ConfusionMatrix;
use autoseg_templates::inference::argmax;
use autoseg_templates::networks::Network;
use burn::tensor::Device;

use super::TrainConfig;
use autoseg_datasets::training::prepared::PreparedCase;

/// Mean Dice per foreground class over `cases`; NaN for a class in no reference.
pub fn dice(
    net: &Network,
    cases: &[PreparedCase],
    config: &TrainConfig,
    device: &Device,
) -> Vec<f64> {
    let classes = config.network.out_channels();
    let window = config.sliding_window();
    let mut sums = vec![(0.0f64, 0usize); classes - 1];
    for case in cases {
        let h = &case.header;
        let probabilities =
            window.predict(case.image(), h.channels, h.dims, classes, device, |x| {
                net.forward(x)
            });
        let predicted = argmax(&probabilities, classes);
        let reference: Vec<u16> = case.label().iter().map(|&l| l as u16).collect();
        let ignore = config.preprocessing.ignore_class().map(u16::from);
        let confusion = ConfusionMatrix::of_annotated(&predicted, &reference, classes, ignore);
        for (k, sum) in sums.iter_mut().enumerate() {
            let (tp, _, fn_) = confusion.outcomes(k + 1);
            if tp + fn_ > 0 {
                sum.0 += confusion.dice(k + 1);
                sum.1 += 1;
            }
        }
    }
    sums.into_iter()
        .map(|(s, n)| if n == 0 { f64::NAN } else { s / n as f64 })
        .collect()
}
