//! MONAI's `FocalLoss`: cross-entropy down-weighted on well-classified voxels.

use burn::tensor::Tensor;
use burn::tensor::activation::{log_sigmoid, log_softmax};
use serde::{Deserialize, Serialize};

use super::{class_vector, masked_mean, without_background};

/// MONAI `FocalLoss` (sigmoid by default, as MONAI's `DiceFocalLoss` uses it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FocalOptions {
    /// Score channel 0 too.
    pub include_background: bool,
    /// Focusing exponent: 0 is plain cross-entropy.
    pub gamma: f64,
    /// Balance of positives (sigmoid) or of foreground classes (softmax).
    pub alpha: Option<f64>,
    /// Softmax over channels instead of an independent sigmoid per channel.
    pub use_softmax: bool,
    /// A weight per output channel, background included.
    pub class_weights: Option<Vec<f32>>,
}

impl Default for FocalOptions {
    fn default() -> Self {
        Self {
            include_background: true,
            gamma: 2.0,
            alpha: None,
            use_softmax: false,
            class_weights: None,
        }
    }
}

impl FocalOptions {
    /// Mean over every (labelled) voxel and scored channel.
    pub fn forward(
        &self,
        logits: Tensor<3>,
        target: Tensor<3>,
        labelled: Option<&Tensor<3>>,
    ) -> Tensor<1> {
        // MONAI drops the background before the activation, even for softmax.
        let x = without_background(logits, self.include_background);
        let t = without_background(target, self.include_background);
        let channels = x.dims()[1];
        let loss = if self.use_softmax {
            self.softmax_focal(x, t)
        } else {
            self.sigmoid_focal(x, t)
        };
        match &self.class_weights {
            Some(w) => {
                let w = if w.len() > channels {
                    &w[w.len() - channels..]
                } else {
                    &w[..]
                };
                masked_mean(loss.clone() * class_vector(w, &loss), labelled)
            }
            None => masked_mean(loss, labelled),
        }
    }

    fn sigmoid_focal(&self, x: Tensor<3>, t: Tensor<3>) -> Tensor<3> {
        let bce = x.clone() - x.clone() * t.clone() - log_sigmoid(x.clone());
        let sign = t.clone().mul_scalar(2.0).sub_scalar(1.0);
        let modulation = log_sigmoid(x.neg() * sign).mul_scalar(self.gamma).exp();
        let loss = modulation * bce;
        match self.alpha {
            Some(a) => {
                loss * (t.clone().mul_scalar(a) + t.neg().add_scalar(1.0).mul_scalar(1.0 - a))
            }
            None => loss,
        }
    }

    fn softmax_focal(&self, x: Tensor<3>, t: Tensor<3>) -> Tensor<3> {
        let log_p = log_softmax(x, 1);
        let modulation = log_p
            .clone()
            .exp()
            .neg()
            .add_scalar(1.0)
            .powf_scalar(self.gamma);
        let loss = (modulation * log_p * t).neg();
        // MONAI ignores a scalar alpha when the background is not scored.
        match self.alpha {
            Some(a) if self.include_background => {
                let channels = loss.dims()[1];
                let mut w = vec![a as f32; channels];
                w[0] = 1.0 - a as f32;
                loss.clone() * class_vector(&w, &loss)
            }
            _ => loss,
        }
    }
}
