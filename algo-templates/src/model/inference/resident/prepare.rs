//! Preprocessing on the network's device: the host crops each channel to the non-zero box
//! (a copy, no arithmetic); resampling and normalisation run on the device, so the
//! prepared image never exists on the host.

use autoseg_datasets::Volume;
use autoseg_datasets::transforms::preprocess::{
    Normalization, PrepareError, PreparedGrid, PreprocessPlan, crop_channel, prepared_grid,
};
use autoseg_kernels::resample::Order;
use burn::tensor::activation::sigmoid;
use burn::tensor::{Bool, Device, Tensor};

use super::resample::resample_host_channel;

/// [`prepare_image`] on `device`: the prepared image (`[channels, x, y, z]`, z fastest)
/// and its grid. Refuses what `prepare_image` refuses, before anything is uploaded.
///
/// [`prepare_image`]: autoseg_datasets::transforms::preprocess::prepare_image
pub fn prepare_on_device(
    image: &Volume,
    plan: &PreprocessPlan,
    device: &Device,
) -> Result<(Tensor<4>, PreparedGrid), PrepareError> {
    let grid = prepared_grid(image, plan)?;
    let channels = (0..image.channels())
        .map(|c| {
            let crop = crop_channel(image.channel(c), grid.ras_dims, grid.crop);
            let orders = grid.orders(Order::Cubic);
            let resampled =
                resample_host_channel(&crop, grid.cropped_dims(), grid.dims, orders, device);
            normalize(resampled.squeeze_dim(0), &plan.normalization)
        })
        .collect();
    Ok((Tensor::cat(channels, 0), grid))
}

/// One channel (`[1, x, y, z]`) normalised as the host's preprocessing does.
fn normalize(channel: Tensor<4>, normalization: &Normalization) -> Tensor<4> {
    match *normalization {
        Normalization::None => channel,
        Normalization::Ct {
            lower,
            upper,
            mean,
            std,
        } => (channel.clamp(lower, upper) - mean) / std.max(1e-8),
        Normalization::RangeSigmoid { lower, upper } => {
            let half = ((upper - lower) / 2.0).max(1e-8);
            let centre = (lower + upper) / 2.0;
            sigmoid((channel - centre) / half)
        }
        Normalization::ZScoreNonzero => {
            let selected = channel.clone().not_equal_elem(0.0);
            z_score(channel, Some(selected))
        }
        Normalization::ZScore => z_score(channel, None),
    }
}

/// Standardises the `selected` voxels (all where `None`) by their own mean and deviation
/// (two passes, so f32 sums lose little); the others keep their values.
fn z_score(channel: Tensor<4>, selected: Option<Tensor<4, Bool>>) -> Tensor<4> {
    let weighted = |t: Tensor<4>| match &selected {
        Some(mask) => t * mask.clone().float(),
        None => t,
    };
    let n = match &selected {
        Some(mask) => mask.clone().float().sum().into_scalar::<f64>(),
        None => channel.shape().num_elements() as f64,
    };
    if n == 0.0 {
        return channel;
    }
    let mean = weighted(channel.clone()).sum().into_scalar::<f64>() / n;
    let centred = channel.clone() - mean as f32;
    let variance = weighted(centred.clone().square())
        .sum()
        .into_scalar::<f64>()
        / n;
    let standardised = centred / variance.max(0.0).sqrt().max(1e-8) as f32;
    match selected {
        Some(mask) => channel.mask_where(mask, standardised),
        None => standardised,
    }
}
