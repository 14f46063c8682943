//! Overlap losses: Dice, Tversky and Generalized Dice, as MONAI defines them.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::{Activation, class_vector, without_background};

/// What the overlap losses share: activation, background, batch pooling, smoothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RegionOptions {
    /// How logits become probabilities.
    pub activation: Activation,
    /// Score channel 0 too.
    pub include_background: bool,
    /// Pool the batch before the ratio (one score per class, not per sample and class).
    pub batch: bool,
    /// Added to the numerator.
    pub smooth_nr: f64,
    /// Added to the denominator.
    pub smooth_dr: f64,
}

impl Default for RegionOptions {
    fn default() -> Self {
        Self {
            activation: Activation::Softmax,
            include_background: true,
            batch: false,
            smooth_nr: 1e-5,
            smooth_dr: 1e-5,
        }
    }
}

/// Per-class sums of `[b, c, n]` over the voxels, and over the batch too when pooled:
/// `[b, c, 1]` or `[1, c, 1]`.
fn reduce(x: Tensor<3>, batch: bool) -> Tensor<3> {
    let per_sample = x.sum_dim(2);
    if batch {
        per_sample.sum_dim(0)
    } else {
        per_sample
    }
}

/// Probabilities and target with the background dropped if asked: the common prologue.
fn prepare(
    region: &RegionOptions,
    logits: Tensor<3>,
    target: Tensor<3>,
    labelled: Option<&Tensor<3>>,
) -> (Tensor<3>, Tensor<3>) {
    let mut probs = region.activation.apply(logits);
    let mut target = target;
    if let Some(mask) = labelled {
        // Unannotated voxels add to no sum: neither predicted nor reference volume.
        probs = probs * mask.clone();
        target = target * mask.clone();
    }
    (
        without_background(probs, region.include_background),
        without_background(target, region.include_background),
    )
}

/// The weights of the channels scored: all, or all but the background's.
fn scored_weights(weights: &[f32], include_background: bool) -> &[f32] {
    if include_background || weights.len() <= 1 {
        weights
    } else {
        &weights[1..]
    }
}

/// MONAI `DiceLoss`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct DiceOptions {
    /// Activation, background, batch and smoothing.
    #[serde(flatten)]
    pub region: RegionOptions,
    /// Square probabilities and target in the denominator (Milletari's V-Net Dice).
    pub squared_pred: bool,
    /// Score with Jaccard (IoU) instead of Dice.
    pub jaccard: bool,
    /// A weight per output channel, background included (dropped with it when
    /// `include_background` is false).
    pub class_weights: Option<Vec<f32>>,
}

impl DiceOptions {
    /// Mean over samples (unless pooled) and classes of `1 - Dice`.
    pub fn forward(
        &self,
        logits: Tensor<3>,
        target: Tensor<3>,
        labelled: Option<&Tensor<3>>,
    ) -> Tensor<1> {
        let batch = self.region.batch;
        let (p, g) = prepare(&self.region, logits, target, labelled);
        let intersection = reduce(p.clone() * g.clone(), batch);
        let (p_sum, g_sum) = if self.squared_pred {
            (reduce(p.clone() * p, batch), reduce(g.clone() * g, batch))
        } else {
            (reduce(p, batch), reduce(g, batch))
        };
        let numerator = intersection
            .clone()
            .mul_scalar(2.0)
            .add_scalar(self.region.smooth_nr);
        let denominator = if self.jaccard {
            (p_sum + g_sum - intersection).mul_scalar(2.0)
        } else {
            p_sum + g_sum
        }
        .add_scalar(self.region.smooth_dr);
        let f = (numerator / denominator).neg().add_scalar(1.0);
        let channels = f.dims()[1];
        match &self.class_weights {
            Some(w) if channels > 1 => (f.clone()
                * class_vector(scored_weights(w, self.region.include_background), &f))
            .mean(),
            _ => f.mean(),
        }
    }
}

/// MONAI `TverskyLoss`: `1 - TP / (TP + alpha FP + beta FN)`, smoothed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TverskyOptions {
    /// Activation, background, batch and smoothing.
    #[serde(flatten)]
    pub region: RegionOptions,
    /// Weight of false positives.
    pub alpha: f64,
    /// Weight of false negatives.
    pub beta: f64,
}

impl Default for TverskyOptions {
    fn default() -> Self {
        Self {
            region: RegionOptions::default(),
            alpha: 0.5,
            beta: 0.5,
        }
    }
}

impl TverskyOptions {
    /// Mean over samples (unless pooled) and classes.
    pub fn forward(
        &self,
        logits: Tensor<3>,
        target: Tensor<3>,
        labelled: Option<&Tensor<3>>,
    ) -> Tensor<1> {
        let batch = self.region.batch;
        let (p, g) = prepare(&self.region, logits, target, labelled);
        let tp = reduce(p.clone() * g.clone(), batch);
        let fp = reduce(p, batch) - tp.clone();
        let fn_ = reduce(g, batch) - tp.clone();
        let numerator = tp.clone().add_scalar(self.region.smooth_nr);
        let denominator = (tp + fp.mul_scalar(self.alpha) + fn_.mul_scalar(self.beta))
            .add_scalar(self.region.smooth_dr);
        (numerator / denominator).neg().add_scalar(1.0).mean()
    }
}

/// How Generalized Dice weights a class by its reference volume `v`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum GeneralizedDiceWeights {
    /// `1 / v^2` (Sudre et al., MONAI's default).
    #[default]
    Square,
    /// `1 / v`.
    Simple,
    /// Every class alike.
    Uniform,
}

/// MONAI `GeneralizedDiceLoss`. A class absent from the reference (infinite weight) takes
/// the largest finite weight of its sample (of the batch when pooled), as MONAI does.
pub fn generalized_dice(
    region: &RegionOptions,
    w_type: GeneralizedDiceWeights,
    logits: Tensor<3>,
    target: Tensor<3>,
    labelled: Option<&Tensor<3>>,
) -> Tensor<1> {
    let batch = region.batch;
    let (p, g) = prepare(region, logits, target, labelled);
    let tp = reduce(p.clone() * g.clone(), batch);
    let volume = reduce(g, batch);
    let denominator = reduce(p, batch) + volume.clone();
    let absent = volume.clone().equal_elem(0.0);
    let safe = volume.mask_fill(absent.clone(), 1.0);
    let w = match w_type {
        GeneralizedDiceWeights::Square => (safe.clone() * safe).recip(),
        GeneralizedDiceWeights::Simple => safe.recip(),
        GeneralizedDiceWeights::Uniform => safe.ones_like(),
    }
    .mask_fill(absent.clone(), 0.0);
    let largest = w.clone().max_dim(1);
    let w = w + absent.float() * largest;
    let numerator = (tp * w.clone())
        .sum_dim(1)
        .mul_scalar(2.0)
        .add_scalar(region.smooth_nr);
    let denominator = (denominator * w).sum_dim(1).add_scalar(region.smooth_dr);
    (numerator / denominator).neg().add_scalar(1.0).mean()
}
