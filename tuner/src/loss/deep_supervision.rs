//! Deep supervision: the loss summed over a network's outputs at several resolutions, the
//! target brought to each by nearest-exact resizing (MONAI's `DeepSupervisionLoss`).

use autoseg_templates::ops::resize_nearest_exact;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::LossConfig;

/// How the outputs, finest first, are weighted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DeepSupervisionWeights {
    /// `1 / 2^i`, normalised to sum to 1 (nnU-Net's scheme).
    #[default]
    Halving,
    /// MONAI's `exp` mode: `max(1 / 2^i, 1/16)`, not normalised.
    MonaiExp,
    /// Every output alike (MONAI's `same`).
    Same,
}

impl DeepSupervisionWeights {
    /// The weights for `levels` outputs.
    pub fn weights(self, levels: usize) -> Vec<f64> {
        let halving = (0..levels).map(|l| 0.5f64.powi(l as i32));
        match self {
            DeepSupervisionWeights::Halving => {
                let total: f64 = halving.clone().sum();
                halving.map(|w| w / total).collect()
            }
            DeepSupervisionWeights::MonaiExp => halving.map(|w| w.max(0.0625)).collect(),
            DeepSupervisionWeights::Same => vec![1.0; levels],
        }
    }
}

/// A loss applied to every deep-supervision output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DeepSupervision {
    /// The loss at each resolution.
    pub loss: LossConfig,
    /// The weight of each resolution.
    #[serde(default)]
    pub weights: DeepSupervisionWeights,
}

impl DeepSupervision {
    /// Weighted sum of the loss of each output (finest first) against the full-resolution
    /// one-hot `target`, over the `labelled` voxels when some are not.
    pub fn forward(
        &self,
        outputs: Vec<Tensor<5>>,
        target: Tensor<5>,
        labelled: Option<Tensor<5>>,
    ) -> Tensor<1> {
        let weights = self.weights.weights(outputs.len());
        outputs
            .into_iter()
            .zip(weights)
            .map(|(output, w)| {
                let [_, _, x, y, z] = output.dims();
                let target = resize_nearest_exact(target.clone(), [x, y, z]);
                let labelled = labelled
                    .clone()
                    .map(|mask| resize_nearest_exact(mask, [x, y, z]));
                self.loss.forward(output, target, labelled).mul_scalar(w)
            })
            .reduce(|a, b| a + b)
            .expect("at least one output")
    }
}
