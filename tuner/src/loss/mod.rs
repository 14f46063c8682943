//! Segmentation losses with MONAI's definitions, so a bundle configured like an Auto3DSeg
//! or nnU-Net one trains on the same objective. Each is checked against MONAI's value on
//! fixed tensors (`fixtures/losses`).
//!
//! Every loss takes logits `[batch, classes, x, y, z]` and a target of the same shape: a
//! one-hot label map ([`one_hot`]) or, with sigmoid activation, independent binary
//! channels. A bundle names its loss in YAML through [`LossConfig`].

mod cross_entropy;
mod deep_supervision;
mod focal;
mod region;

use burn::tensor::activation::{sigmoid, softmax};
use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use autoseg_datasets::regions::Decoding;
pub use cross_entropy::{binary_cross_entropy, cross_entropy};
pub use deep_supervision::{DeepSupervision, DeepSupervisionWeights};
pub use focal::FocalOptions;
pub use region::{DiceOptions, GeneralizedDiceWeights, RegionOptions, TverskyOptions};

/// How logits become probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// Mutually exclusive classes (the usual case): softmax over channels.
    #[default]
    Softmax,
    /// Independent (possibly overlapping) channels, as in BraTS regions.
    Sigmoid,
    /// The network already outputs probabilities.
    Identity,
}

impl Activation {
    fn apply<const D: usize>(self, logits: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Softmax => softmax(logits, 1),
            Activation::Sigmoid => sigmoid(logits),
            Activation::Identity => logits,
        }
    }
}

/// A loss as a bundle's `hyper_parameters.yaml` names it (`loss: {name: dice_ce, ...}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
// Misspelt keys are caught by `autoseg_templates::strict` (deny_unknown_fields cannot be
// combined with the flattened option groups).
#[serde(tag = "name", rename_all = "snake_case")]
pub enum LossConfig {
    /// MONAI `DiceLoss`.
    Dice(DiceOptions),
    /// MONAI `DiceCELoss`: Dice plus cross-entropy (Auto3DSeg's and nnU-Net's default).
    DiceCe {
        /// The Dice term.
        #[serde(flatten)]
        dice: DiceOptions,
        /// Weight of the Dice term.
        #[serde(default = "one")]
        lambda_dice: f64,
        /// Weight of the cross-entropy term.
        #[serde(default = "one")]
        lambda_ce: f64,
    },
    /// nnU-Net's `DC_and_BCE_loss` for regions: sigmoid Dice plus binary cross-entropy on
    /// every channel (MONAI's `DiceCELoss` takes a softmax cross-entropy over several
    /// channels even with a sigmoid Dice, which overlapping regions do not suit).
    DiceBce {
        /// The Dice term (its activation must be sigmoid).
        #[serde(flatten)]
        dice: DiceOptions,
        /// Weight of the Dice term.
        #[serde(default = "one")]
        lambda_dice: f64,
        /// Weight of the binary cross-entropy term.
        #[serde(default = "one")]
        lambda_bce: f64,
    },
    /// MONAI `DiceFocalLoss`: Dice plus (sigmoid) focal loss.
    DiceFocal {
        /// The Dice term.
        #[serde(flatten)]
        dice: DiceOptions,
        /// Focusing exponent of the focal term.
        #[serde(default = "two")]
        gamma: f64,
        /// Balance of positives in the focal term.
        #[serde(default)]
        alpha: Option<f64>,
        /// Weight of the Dice term.
        #[serde(default = "one")]
        lambda_dice: f64,
        /// Weight of the focal term.
        #[serde(default = "one")]
        lambda_focal: f64,
    },
    /// MONAI `FocalLoss`.
    Focal(FocalOptions),
    /// MONAI `TverskyLoss`.
    Tversky(TverskyOptions),
    /// MONAI `GeneralizedDiceLoss`.
    GeneralizedDice {
        /// Activation, background, batch and smoothing.
        #[serde(flatten)]
        region: RegionOptions,
        /// How classes are weighted by their reference volume.
        #[serde(default)]
        w_type: GeneralizedDiceWeights,
    },
}

fn one() -> f64 {
    1.0
}
fn two() -> f64 {
    2.0
}

impl Default for LossConfig {
    /// Softmax Dice + cross-entropy with MONAI's defaults.
    fn default() -> Self {
        LossConfig::DiceCe {
            dice: DiceOptions::default(),
            lambda_dice: 1.0,
            lambda_ce: 1.0,
        }
    }
}

/// A loss configuration that cannot be used with the network's outputs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LossError {
    /// Class weights of the wrong length or sign.
    #[error("loss `{loss}`: {reason}")]
    Invalid {
        /// The loss's name.
        loss: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl LossConfig {
    /// The loss's name in YAML.
    pub fn name(&self) -> &'static str {
        match self {
            LossConfig::Dice(_) => "dice",
            LossConfig::DiceCe { .. } => "dice_ce",
            LossConfig::DiceBce { .. } => "dice_bce",
            LossConfig::DiceFocal { .. } => "dice_focal",
            LossConfig::Focal(_) => "focal",
            LossConfig::Tversky(_) => "tversky",
            LossConfig::GeneralizedDice { .. } => "generalized_dice",
        }
    }

    /// Checks the configuration against the network's number of output channels and how
    /// they decode: regions need independent (sigmoid) channels.
    pub fn validate(&self, classes: usize, decoding: Decoding) -> Result<(), LossError> {
        let invalid = |reason: String| {
            Err(LossError::Invalid {
                loss: self.name(),
                reason,
            })
        };
        if let Some(activation) = self.activation()
            && activation != Activation::Sigmoid
            && (decoding == Decoding::Regions || matches!(self, LossConfig::DiceBce { .. }))
        {
            return invalid(format!(
                "activation {activation:?}: regions and `dice_bce` score each channel on its \
                 own, so the activation must be sigmoid"
            ));
        }
        if decoding == Decoding::Regions && matches!(self, LossConfig::DiceCe { .. }) {
            return invalid(
                "its cross-entropy is a softmax over channels, which overlapping regions do \
                 not suit: use `dice_bce` (nnU-Net's loss for regions)"
                    .into(),
            );
        }
        let weights = match self {
            LossConfig::Dice(d)
            | LossConfig::DiceCe { dice: d, .. }
            | LossConfig::DiceBce { dice: d, .. }
            | LossConfig::DiceFocal { dice: d, .. } => d.class_weights.as_ref(),
            LossConfig::Focal(f) => f.class_weights.as_ref(),
            _ => None,
        };
        if let Some(w) = weights {
            if w.len() != classes {
                return invalid(format!(
                    "class_weights has {} values for {classes} output channels",
                    w.len()
                ));
            }
            if w.iter().any(|&v| !(v >= 0.0 && v.is_finite())) {
                return invalid(format!(
                    "class_weights {w:?} must be finite and non-negative"
                ));
            }
        }
        Ok(())
    }

    /// The loss of `logits` against `target` (same shape), a scalar tensor. With a
    /// `labelled` mask `[b, 1, x, y, z]` (1 where annotated), unannotated voxels take no
    /// part: whatever the network predicts there changes no term.
    pub fn forward(
        &self,
        logits: Tensor<5>,
        target: Tensor<5>,
        labelled: Option<Tensor<5>>,
    ) -> Tensor<1> {
        let (logits, target) = (flatten(logits), flatten(target));
        let mask = labelled.map(flatten);
        let mask = mask.as_ref();
        match self {
            LossConfig::Dice(dice) => dice.forward(logits, target, mask),
            LossConfig::DiceCe {
                dice,
                lambda_dice,
                lambda_ce,
            } => {
                let weights = dice.class_weights.as_deref();
                let ce = cross_entropy(logits.clone(), target.clone(), weights, mask);
                dice.forward(logits, target, mask).mul_scalar(*lambda_dice)
                    + ce.mul_scalar(*lambda_ce)
            }
            LossConfig::DiceBce {
                dice,
                lambda_dice,
                lambda_bce,
            } => {
                let bce = binary_cross_entropy(logits.clone(), target.clone(), mask);
                dice.forward(logits, target, mask).mul_scalar(*lambda_dice)
                    + bce.mul_scalar(*lambda_bce)
            }
            LossConfig::DiceFocal {
                dice,
                gamma,
                alpha,
                lambda_dice,
                lambda_focal,
            } => {
                let focal = FocalOptions {
                    include_background: dice.region.include_background,
                    gamma: *gamma,
                    alpha: *alpha,
                    use_softmax: false,
                    class_weights: dice.class_weights.clone(),
                };
                let focal = focal.forward(logits.clone(), target.clone(), mask);
                dice.forward(logits, target, mask).mul_scalar(*lambda_dice)
                    + focal.mul_scalar(*lambda_focal)
            }
            LossConfig::Focal(focal) => focal.forward(logits, target, mask),
            LossConfig::Tversky(tversky) => tversky.forward(logits, target, mask),
            LossConfig::GeneralizedDice { region, w_type } => {
                region::generalized_dice(region, *w_type, logits, target, mask)
            }
        }
    }
}

impl LossConfig {
    /// How the loss turns logits into probabilities (`None`: focal's own switch).
    fn activation(&self) -> Option<Activation> {
        match self {
            LossConfig::Dice(d)
            | LossConfig::DiceCe { dice: d, .. }
            | LossConfig::DiceBce { dice: d, .. }
            | LossConfig::DiceFocal { dice: d, .. } => Some(d.region.activation),
            LossConfig::Tversky(t) => Some(t.region.activation),
            LossConfig::GeneralizedDice { region, .. } => Some(region.activation),
            LossConfig::Focal(f) => Some(if f.use_softmax {
                Activation::Softmax
            } else {
                Activation::Sigmoid
            }),
        }
    }
}

/// One-hot encodes a label map `[batch, 1, x, y, z]` into `[batch, classes, x, y, z]`.
pub fn one_hot(labels: Tensor<5, Int>, classes: usize) -> Tensor<5> {
    let channels = (0..classes)
        .map(|c| labels.clone().equal_elem(c as i64).float())
        .collect();
    Tensor::cat(channels, 1)
}

/// Region targets of a class-index map `[batch, 1, x, y, z]`: one binary channel per region,
/// set where the voxel's class is one of the region's `class_sets`.
pub fn region_targets(labels: Tensor<5, Int>, class_sets: &[Vec<usize>]) -> Tensor<5> {
    let channels = class_sets
        .iter()
        .map(|set| {
            let member = |k: usize| labels.clone().equal_elem(k as i64).float();
            let zeros = labels.clone().float().zeros_like();
            set.iter().map(|&k| member(k)).fold(zeros, |a, b| a + b)
        })
        .collect();
    Tensor::cat(channels, 1)
}

/// `[b, c, x, y, z]` to `[b, c, voxels]`: every loss reduces over the voxels at once.
fn flatten(x: Tensor<5>) -> Tensor<3> {
    let [b, c, ..] = x.dims();
    x.reshape([b as i64, c as i64, -1])
}

/// Drops channel 0 (background) when it is not to be scored and there is more than one.
fn without_background(x: Tensor<3>, include_background: bool) -> Tensor<3> {
    let [b, c, n] = x.dims();
    if include_background || c == 1 {
        x
    } else {
        x.slice([0..b, 1..c, 0..n])
    }
}

/// The mean of `[b, c, n]` values over every voxel, or over the labelled ones (`mask`
/// `[b, 1, n]`) alone; a batch with none labelled gives 0.
fn masked_mean(x: Tensor<3>, mask: Option<&Tensor<3>>) -> Tensor<1> {
    match mask {
        None => x.mean(),
        Some(mask) => {
            let channels = x.dims()[1] as f64;
            let count = mask.clone().sum().mul_scalar(channels).clamp_min(1.0);
            (x * mask.clone()).sum() / count
        }
    }
}

/// A per-class weight vector shaped `[1, classes, 1]` to broadcast over `[b, c, n]`.
fn class_vector(weights: &[f32], like: &Tensor<3>) -> Tensor<3> {
    Tensor::<1>::from_floats(weights, &like.device()).reshape([1, weights.len(), 1])
}
