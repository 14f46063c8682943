//! SegResNetDS: MONAI's residual encoder-decoder with deep supervision, the network of
//! Auto3DSeg's flagship `segresnet` algorithm.
//!
//! Parameter names follow MONAI's `state_dict` (`encoder.layers.0.blocks.0.conv1.weight`,
//! `up_layers.0.upsample.deconv.weight`, ...), so weights move between the two unchanged.
//! Normalisation is instance norm (Auto3DSeg's choice) and the activation ReLU.

use burn::module::Module;
use burn::nn::InstanceNorm;
use burn::nn::conv::{Conv3d, ConvTranspose3d};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::NetworkError;
use super::layers::{
    Triple, assert_divisible, conv_transpose3d, conv3d, conv3d_same, instance_norm, product,
};
use crate::ops::{Activation, apply_conv_transpose3d, apply_conv3d, instance_norm_act};
use crate::weights::{PytorchWeights, WeightsLayout};

/// The hyper-parameters of a SegResNetDS, as a bundle's `network.yaml` holds them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegResNetDsConfig {
    /// Input channels (image modalities).
    pub in_channels: usize,
    /// Output channels (classes, background included).
    pub out_channels: usize,
    /// Channels after the first convolution; doubled at every level.
    #[serde(default = "default_init_filters")]
    pub init_filters: usize,
    /// Residual blocks per encoder level; its length is the number of levels.
    #[serde(default = "default_blocks_down")]
    pub blocks_down: Vec<usize>,
    /// Residual blocks per decoder level (default one per level).
    #[serde(default)]
    pub blocks_up: Option<Vec<usize>>,
    /// Number of deep-supervision outputs, finest first (1: the final output only).
    #[serde(default = "default_dsdepth")]
    pub dsdepth: usize,
    /// Voxel spacing the network sees. When given, the first levels use flat kernels and
    /// strides on the finer axes until the resolution is about isotropic (MONAI's
    /// `resolution` argument); when absent every level is isotropic.
    #[serde(default)]
    pub resolution: Option<[f64; 3]>,
    /// 3, or 2 for the planar variant (`segresnet2d`): every kernel and stride is 1 along z,
    /// so each z-slice of a `[n, c, x, y, z]` input is segmented on its own, and the weights
    /// are those of MONAI's `SegResNetDS(spatial_dims=2)`.
    #[serde(default = "three")]
    pub spatial_dims: usize,
}

fn three() -> usize {
    3
}

fn default_init_filters() -> usize {
    32
}
fn default_blocks_down() -> Vec<usize> {
    vec![1, 2, 2, 4]
}
fn default_dsdepth() -> usize {
    1
}

/// MONAI's `scales_for_resolution`: the downsampling factor per axis at each level, 1 on the
/// coarse axes until the finer ones have caught up, then 2 everywhere.
pub fn scales_for_resolution(resolution: [f64; 3], levels: usize) -> Vec<Triple> {
    let max = resolution.iter().cloned().fold(f64::MIN, f64::max);
    let steps = resolution.map(|r| (max / r).log2().floor() as u32);
    let catch_up = steps.iter().copied().max().unwrap_or(0);
    let mut scales: Vec<Triple> = (0..catch_up)
        .map(|i| steps.map(|n| if 1u64 << i >= 1u64 << n { 1 } else { 2 }))
        .collect();
    scales.resize(levels, [2; 3]);
    scales
}

/// MONAI's `aniso_kernel`: kernel 3 along the axes a level scales, 1 along the others.
fn kernel_for_scale(scale: Triple) -> Triple {
    scale.map(|s| if s > 1 { 3 } else { 1 })
}

/// A pre-activation residual block: `x + conv2(relu(norm2(conv1(relu(norm1(x))))))`.
#[derive(Module, Debug)]
pub struct SegResBlock {
    pub(crate) norm1: InstanceNorm,
    pub(crate) conv1: Conv3d,
    pub(crate) norm2: InstanceNorm,
    pub(crate) conv2: Conv3d,
}

impl SegResBlock {
    fn new(channels: usize, kernel: Triple, device: &Device) -> Self {
        Self {
            norm1: instance_norm(channels, device),
            conv1: conv3d_same([channels; 2], kernel, false, device),
            norm2: instance_norm(channels, device),
            conv2: conv3d_same([channels; 2], kernel, false, device),
        }
    }

    fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        let y = apply_conv3d(
            &self.conv1,
            instance_norm_act(&self.norm1, x.clone(), Activation::Relu),
        );
        let y = apply_conv3d(
            &self.conv2,
            instance_norm_act(&self.norm2, y, Activation::Relu),
        );
        x + y
    }
}

fn run_blocks(blocks: &[SegResBlock], x: Tensor<5>) -> Tensor<5> {
    blocks.iter().fold(x, |x, block| block.forward(x))
}

/// One encoder level: residual blocks, then a strided convolution (all but the last level).
#[derive(Module, Debug)]
pub struct EncoderLevel {
    pub(crate) blocks: Vec<SegResBlock>,
    pub(crate) downsample: Option<Conv3d>,
}

/// The encoder: an initial convolution and the levels.
#[derive(Module, Debug)]
pub struct SegResEncoder {
    pub(crate) conv_init: Conv3d,
    pub(crate) layers: Vec<EncoderLevel>,
}

/// MONAI's `UpSample(mode="deconv")`: a transposed convolution stored as `deconv`.
#[derive(Module, Debug)]
pub struct Deconv {
    pub(crate) deconv: ConvTranspose3d,
}

/// One decoder level: upsampling, the skip sum, residual blocks and an optional head.
#[derive(Module, Debug)]
pub struct DecoderLevel {
    pub(crate) upsample: Deconv,
    pub(crate) blocks: Vec<SegResBlock>,
    pub(crate) head: Option<Conv3d>,
}

/// The network.
#[derive(Module, Debug)]
pub struct SegResNetDs {
    pub(crate) encoder: SegResEncoder,
    pub(crate) up_layers: Vec<DecoderLevel>,
    #[module(skip)]
    shape_factor: Triple,
    #[module(skip)]
    layout: WeightsLayout,
}

impl SegResNetDsConfig {
    /// MONAI's defaults (32 filters, blocks 1/2/2/4, one output, isotropic) for the given
    /// channel counts.
    pub fn new(in_channels: usize, out_channels: usize) -> Self {
        Self {
            in_channels,
            out_channels,
            init_filters: default_init_filters(),
            blocks_down: default_blocks_down(),
            blocks_up: None,
            dsdepth: default_dsdepth(),
            resolution: None,
            spatial_dims: 3,
        }
    }

    /// Checks the configuration and builds the network with freshly initialised weights.
    pub fn init(&self, device: &Device) -> Result<SegResNetDs, NetworkError> {
        self.validate()?;
        let levels = self.blocks_down.len();
        let scales = self.scales();
        // Planar networks are anisotropic ones that never scale z.
        let aniso = self.resolution.is_some() || self.spatial_dims == 2;
        let kernel = |level: usize| {
            if aniso {
                kernel_for_scale(scales[level])
            } else {
                [3; 3]
            }
        };
        let mut filters = self.init_filters;
        let conv_init = conv3d_same([self.in_channels, filters], kernel(0), false, device);
        let mut layers = Vec::with_capacity(levels);
        for (level, &blocks) in self.blocks_down.iter().enumerate() {
            let k = kernel(level);
            let downsample = (level + 1 < levels).then(|| {
                conv3d(
                    [filters, 2 * filters],
                    k,
                    scales[level],
                    k.map(|k| k / 2),
                    false,
                    device,
                )
            });
            layers.push(EncoderLevel {
                blocks: (0..blocks)
                    .map(|_| SegResBlock::new(filters, k, device))
                    .collect(),
                downsample,
            });
            filters *= 2;
        }
        let up = levels - 1;
        let blocks_up = self.blocks_up.clone().unwrap_or_else(|| vec![1; up]);
        let mut filters = self.init_filters << up;
        let mut up_layers = Vec::with_capacity(up);
        for (i, &blocks) in blocks_up.iter().enumerate() {
            filters /= 2;
            let level = blocks_up.len() - i - 1;
            let (k, stride) = (kernel(level), scales[level]);
            let padding = k.map(|k| (k - 1) / 2);
            let output_padding = [0, 1, 2].map(|a| stride[a] - 1 - (k[a] - 1) % 2);
            let deconv = conv_transpose3d(
                [2 * filters, filters],
                k,
                stride,
                padding,
                output_padding,
                false,
                device,
            );
            let head = (blocks_up.len() - i <= self.dsdepth)
                .then(|| conv3d_same([filters, self.out_channels], [1; 3], true, device));
            up_layers.push(DecoderLevel {
                upsample: Deconv { deconv },
                blocks: (0..blocks)
                    .map(|_| SegResBlock::new(filters, k, device))
                    .collect(),
                head,
            });
        }
        let shape_factor = self.shape_factor();
        Ok(SegResNetDs {
            encoder: SegResEncoder { conv_init, layers },
            up_layers,
            shape_factor,
            layout: WeightsLayout::for_dims(self.spatial_dims),
        })
    }

    /// Each level's downsampling factors.
    fn scales(&self) -> Vec<Triple> {
        let levels = self.blocks_down.len();
        match (self.resolution, self.spatial_dims) {
            (_, 2) => vec![[2, 2, 1]; levels],
            (Some(resolution), _) => scales_for_resolution(resolution, levels),
            (None, _) => vec![[2; 3]; levels],
        }
    }

    /// What each input size must be a multiple of (of a valid configuration).
    pub fn shape_factor(&self) -> Triple {
        let scales = self.scales();
        product(&scales[..scales.len().saturating_sub(1)])
    }

    /// Checks the configuration without building the network.
    pub fn validate(&self) -> Result<(), NetworkError> {
        let invalid =
            |why: String| Err(NetworkError::InvalidConfig(format!("segresnet_ds: {why}")));
        match (self.spatial_dims, self.resolution) {
            (3, _) | (2, None) => {}
            (2, Some(_)) => return invalid("resolution applies to 3D networks only".into()),
            (d, _) => return invalid(format!("spatial_dims must be 2 or 3, not {d}")),
        }
        if self.in_channels == 0 || self.out_channels == 0 || self.init_filters == 0 {
            return invalid("channel counts must be positive".into());
        }
        if self.blocks_down.len() < 2 {
            return invalid("blocks_down needs at least two levels".into());
        }
        if let Some(up) = &self.blocks_up
            && up.len() != self.blocks_down.len() - 1
        {
            return invalid(format!(
                "blocks_up has {} levels, blocks_down implies {}",
                up.len(),
                self.blocks_down.len() - 1
            ));
        }
        if self.dsdepth == 0 || self.dsdepth > self.blocks_down.len() - 1 {
            return invalid(format!(
                "dsdepth {} must be between 1 and {}",
                self.dsdepth,
                self.blocks_down.len() - 1
            ));
        }
        if let Some(r) = self.resolution
            && r.iter().any(|&v| !(v > 0.0 && v.is_finite()))
        {
            return invalid(format!("resolution {r:?} must be positive"));
        }
        Ok(())
    }
}

impl PytorchWeights for SegResNetDs {
    /// Planar for the 2D variant.
    fn layout(&self) -> WeightsLayout {
        self.layout
    }

    /// MONAI's `up_layers[i]["head"]`.
    fn is_output_head(&self, name: &str) -> bool {
        name.contains(".head.")
    }
}

impl SegResNetDs {
    /// The factors each spatial size of the input must be a multiple of.
    pub fn shape_factor(&self) -> Triple {
        self.shape_factor
    }

    /// The final output only (what inference uses): `[n, out_channels, x, y, z]` logits.
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        self.head(self.features(x))
    }

    /// What the final head reads: the finest decoder level's features.
    pub fn features(&self, x: Tensor<5>) -> Tensor<5> {
        self.decode(x, 0).0
    }

    /// The final head, a 1x1x1 convolution: logits from [`Self::features`], voxel by voxel.
    pub fn head(&self, features: Tensor<5>) -> Tensor<5> {
        let last = self.up_layers.last().expect("at least one decoder level");
        apply_conv3d(
            last.head.as_ref().expect("the finest level has a head"),
            features,
        )
    }

    /// All deep-supervision outputs, finest (full resolution) first.
    pub fn forward_deep(&self, x: Tensor<5>) -> Vec<Tensor<5>> {
        let (features, deep) = self.decode(x, usize::MAX);
        let mut outputs = vec![self.head(features)];
        outputs.extend(deep);
        outputs
    }

    /// The finest level's features, and up to `coarser` outputs of the heads above it,
    /// finest first.
    fn decode(&self, x: Tensor<5>, coarser: usize) -> (Tensor<5>, Vec<Tensor<5>>) {
        assert_divisible(&x, self.shape_factor);
        let mut skips = Vec::with_capacity(self.encoder.layers.len());
        let mut x = apply_conv3d(&self.encoder.conv_init, x);
        for level in &self.encoder.layers {
            x = run_blocks(&level.blocks, x);
            skips.push(x.clone());
            if let Some(down) = &level.downsample {
                x = apply_conv3d(down, x);
            }
        }
        let mut x = skips.pop().expect("at least two levels");
        let mut outputs = Vec::new();
        let levels = self.up_layers.len();
        // Heads above the finest level, coarsest first; only the `coarser` finest of them.
        let heads = self.up_layers[..levels - 1]
            .iter()
            .filter(|l| l.head.is_some())
            .count();
        let mut heads_seen = 0;
        for (i, level) in self.up_layers.iter().enumerate() {
            let skip = skips.pop().expect("one skip per decoder level");
            x = run_blocks(
                &level.blocks,
                apply_conv_transpose3d(&level.upsample.deconv, x) + skip,
            );
            let finest = i + 1 == levels;
            if let (false, Some(head)) = (finest, &level.head) {
                heads_seen += 1;
                if heads - heads_seen < coarser {
                    outputs.push(apply_conv3d(head, x.clone()));
                }
            }
        }
        outputs.reverse();
        (x, outputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::networks::{materialized, seeded};

    #[test]
    fn scales_follow_monai_for_anisotropic_and_isotropic_spacing() {
        // MONAI: scales_for_resolution([1, 1, 5], 5) == [(2,2,1), (2,2,1), (2,2,2), (2,2,2), (2,2,2)]
        assert_eq!(
            scales_for_resolution([1.0, 1.0, 5.0], 5),
            vec![[2, 2, 1], [2, 2, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2]]
        );
        assert_eq!(scales_for_resolution([1.0, 1.0, 1.0], 3), vec![[2; 3]; 3]);
        // Truncated to the number of levels.
        assert_eq!(
            scales_for_resolution([0.5, 1.0, 8.0], 2),
            vec![[2, 2, 1], [2, 2, 1]]
        );
    }

    #[test]
    fn deep_outputs_halve_in_size_and_the_final_one_is_full_size() {
        let device = Device::flex();
        let config = SegResNetDsConfig {
            init_filters: 4,
            blocks_down: vec![1, 1, 1],
            dsdepth: 2,
            ..SegResNetDsConfig::new(2, 3)
        };
        let net = seeded(&device, 1, || materialized(config.init(&device).unwrap()));
        assert_eq!(net.shape_factor(), [4, 4, 4]);
        let x = Tensor::<5>::zeros([1, 2, 8, 8, 4], &device);
        let outputs = net.forward_deep(x.clone());
        let dims: Vec<_> = outputs.iter().map(|o| o.dims()).collect();
        assert_eq!(dims, vec![[1, 3, 8, 8, 4], [1, 3, 4, 4, 2]]);
        assert_eq!(net.forward(x).dims(), [1, 3, 8, 8, 4]);
    }

    #[test]
    fn bad_configs_are_refused_with_the_reason() {
        let mut config = SegResNetDsConfig {
            blocks_down: vec![1, 2],
            dsdepth: 3,
            ..SegResNetDsConfig::new(1, 2)
        };
        let err = config.init(&Device::flex()).unwrap_err().to_string();
        assert!(err.contains("dsdepth 3"), "{err}");
        config.dsdepth = 1;
        config.resolution = Some([1.0, 0.0, 1.0]);
        let err = config.init(&Device::flex()).unwrap_err().to_string();
        assert!(err.contains("resolution"), "{err}");
    }
}
