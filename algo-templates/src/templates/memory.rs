//! Memory estimates from the network's shape, not from measurement: nnU-Net's proxy
//! (the summed size of every convolution's output feature map) for planning patch and
//! batch, and a bytes-per-step figure derived from it for `autoseg inspect`.

use crate::networks::{DynUNetConfig, NetworkConfig, SegResNetDsConfig, Triple};

/// nnU-Net's reference: a 3D U-Net whose feature maps sum to this many values fits
/// `REFERENCE_GB` at batch `REFERENCE_BATCH` (`UNet_reference_val_3d`).
pub const REFERENCE_3D: f64 = 560e6;
/// The 2D reference (`UNet_reference_val_2d`).
pub const REFERENCE_2D: f64 = 85e6;
/// GPU memory of the reference, in GB (`UNet_reference_val_corresp_GB`).
pub const REFERENCE_GB: f64 = 8.0;
/// Batch of the 3D reference (`UNet_reference_val_corresp_bs_3d`).
pub const REFERENCE_BATCH_3D: f64 = 2.0;
/// Batch of the 2D reference (`UNet_reference_val_corresp_bs_2d`).
pub const REFERENCE_BATCH_2D: f64 = 12.0;

fn voxels(size: Triple) -> f64 {
    size.iter().map(|&s| s as f64).product()
}

fn shrink(size: Triple, stride: Triple) -> Triple {
    std::array::from_fn(|a| size[a] / stride[a])
}

/// nnU-Net's `PlainConvUNet.compute_conv_feature_map_size` for a DynUNet (same blocks:
/// two convolutions per stage, a transposed convolution and two convolutions per decoder
/// stage, a segmentation head per deep-supervision level).
pub fn dynunet_feature_map(config: &DynUNetConfig, patch: Triple) -> f64 {
    let filters = config.filters.clone().unwrap_or_else(|| {
        crate::networks::nnunet_filters(config.strides.len(), config.spatial_dims)
    });
    let mut size = patch;
    let mut total = 0.0;
    let mut skip_sizes = Vec::new();
    for (s, stride) in config.strides.iter().enumerate() {
        size = shrink(size, *stride);
        total += 2.0 * filters[s] as f64 * voxels(size);
        if s + 1 < config.strides.len() {
            skip_sizes.push(size);
        }
    }
    let decoder_stages = skip_sizes.len();
    for (s, skip) in skip_sizes.iter().rev().enumerate() {
        let channels = filters[decoder_stages - 1 - s] as f64;
        // two convolutions and the transposed convolution's output, at the skip's size
        total += 3.0 * channels * voxels(*skip);
        let is_head =
            s + 1 == decoder_stages || decoder_stages - s <= config.deep_supervision_heads + 1;
        if is_head {
            total += config.out_channels as f64 * voxels(*skip);
        }
    }
    total
}

/// The same sum for SegResNetDS: per level, two convolutions per residual block (encoder
/// and decoder), the up-sampling convolution and the heads.
pub fn segresnet_feature_map(config: &SegResNetDsConfig, patch: Triple) -> f64 {
    let levels = config.blocks_down.len();
    let blocks_up = config
        .blocks_up
        .clone()
        .unwrap_or_else(|| vec![1; levels.saturating_sub(1)]);
    let planar = config.spatial_dims == 2;
    let mut total = 0.0;
    let mut size = patch;
    for (l, &blocks) in config.blocks_down.iter().enumerate() {
        if l > 0 {
            size = std::array::from_fn(|a| {
                if planar && a == 2 {
                    size[a]
                } else {
                    size[a].div_ceil(2)
                }
            });
        }
        let channels = (config.init_filters << l) as f64;
        let up_blocks = if l + 1 < levels {
            blocks_up[levels - 2 - l]
        } else {
            0
        };
        total += channels * voxels(size) * (2.0 * (blocks + up_blocks) as f64 + 1.0);
        if l < config.dsdepth {
            total += config.out_channels as f64 * voxels(size);
        }
    }
    total
}

/// The feature-map sum of any network.
pub fn feature_map(network: &NetworkConfig, patch: Triple) -> f64 {
    match network {
        NetworkConfig::Dynunet(c) => dynunet_feature_map(c, patch),
        NetworkConfig::SegresnetDs(c) => segresnet_feature_map(c, patch),
    }
}

/// Bytes of the machine's memory a training step takes on CPU cores per value of the
/// feature-map proxy (batch included): f32 activations, their gradients and the loss's
/// per-class tensors. Measured by peak RSS on Mindboggle (67 classes, 2 cores, flex):
/// DynUNet 16-160 at batch 2 of 112x144x112 (660M values) 10.9 GB in training, 16.5 bytes a
/// value; SegResNetDS 16 at batch 1 of 160x224x144 (1.0G values) 18.1 GB in calibration,
/// 18.0. The larger is taken.
pub const CPU_BYTES_PER_VALUE: f64 = 18.0;

/// The share of the machine's memory one training step may take on CPU cores: the loader's
/// prefetched batches, the cached cases, validation and the system keep the rest.
pub const CPU_STEP_MEMORY_SHARE: f64 = 0.5;

/// The feature-map values (batch included) a training step may hold on CPU cores of a
/// machine with `host_gb` of memory.
pub fn cpu_step_values(host_gb: f64) -> f64 {
    host_gb * 1e9 * CPU_STEP_MEMORY_SHARE / CPU_BYTES_PER_VALUE
}

/// GPU memory one training step needs, in GB, by nnU-Net's scale: the reference network
/// at its batch fills the reference memory (with mixed precision, as nnU-Net trains).
pub fn step_memory_gb(network: &NetworkConfig, patch: Triple, batch: usize) -> f64 {
    let (reference, reference_batch) = if network.spatial_dims() == 2 {
        (REFERENCE_2D, REFERENCE_BATCH_2D)
    } else {
        (REFERENCE_3D, REFERENCE_BATCH_3D)
    };
    let per_sample = REFERENCE_GB / (reference * reference_batch);
    feature_map(network, patch) * batch as f64 * per_sample
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task04s_unet_gets_nnunets_batch_of_seven_before_the_cap() {
        // nnU-Net: batch = round(reference / estimate x 2), then capped at 5 % of the
        // dataset. Task04's 40x56x40 U-Net is small enough for a batch in the seventies.
        let config = DynUNetConfig {
            kernel_sizes: vec![[3; 3]; 4],
            strides: vec![[1; 3], [2; 3], [2; 3], [2; 3]],
            deep_supervision_heads: 2,
            ..DynUNetConfig::new(1, 3)
        };
        let estimate = dynunet_feature_map(&config, [40, 56, 40]);
        let batch = (REFERENCE_3D / estimate * REFERENCE_BATCH_3D).round();
        assert!((40.0..120.0).contains(&batch), "{estimate} -> {batch}");
    }
}
