//! Cross-entropy on logits, as MONAI's `DiceCELoss` computes its CE term.

use burn::tensor::Tensor;
use burn::tensor::activation::log_softmax;

use super::{class_vector, masked_mean};

/// Softmax cross-entropy of `[b, c, n]` logits against a one-hot (or soft) target, mean
/// over voxels; with class weights, PyTorch's weighted mean `sum(w_y nll) / sum(w_y)`.
/// A single channel gets binary cross-entropy on its sigmoid instead (MONAI's rule, which
/// also means sigmoid Dice+CE on several channels uses the softmax CE, as in MONAI).
/// With a `labelled` mask `[b, 1, n]`, the mean is over the labelled voxels alone
/// (PyTorch's `ignore_index`).
pub fn cross_entropy(
    logits: Tensor<3>,
    target: Tensor<3>,
    class_weights: Option<&[f32]>,
    labelled: Option<&Tensor<3>>,
) -> Tensor<1> {
    if logits.dims()[1] == 1 {
        return binary_cross_entropy(logits, target, labelled);
    }
    let log_p = log_softmax(logits, 1);
    let target = match labelled {
        Some(mask) => target * mask.clone(),
        None => target,
    };
    match class_weights {
        None => masked_mean((log_p * target).sum_dim(1).neg(), labelled),
        Some(w) => {
            let weighted = target * class_vector(w, &log_p);
            let total = weighted.clone().sum();
            (log_p * weighted).sum().neg() / total
        }
    }
}

/// `BCEWithLogits` on every channel, mean over voxels and channels (over the labelled
/// voxels alone with a `labelled` mask `[b, 1, n]`), in its overflow-free form
/// `max(x, 0) - x t + log(1 + exp(-|x|))`.
pub fn binary_cross_entropy(
    logits: Tensor<3>,
    target: Tensor<3>,
    labelled: Option<&Tensor<3>>,
) -> Tensor<1> {
    let stable = logits.clone().abs().neg().exp().log1p();
    masked_mean(
        logits.clone().clamp_min(0.0) - logits * target + stable,
        labelled,
    )
}
