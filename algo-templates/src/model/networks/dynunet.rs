//! DynUNet: the nnU-Net U-Net (`PlainConvUNet`) as MONAI writes it: per stage two
//! convolutions with instance norm and LeakyReLU(0.01), a strided first convolution to go
//! down, a transposed convolution to go up, skip concatenation, 1x1x1 heads.
//!
//! Kernels and strides per stage are data (nnU-Net derives them from patch size and
//! spacing; the `dynunet` template does the same); widths are nnU-Net's `32 * 2^stage`,
//! capped at 320. Parameter names follow MONAI's `DynUNet` state_dict
//! (`input_block.conv1.conv.weight`, `upsamples.0.transp_conv.conv.weight`, ...).

use burn::module::Module;
use burn::nn::InstanceNorm;
use burn::nn::conv::{Conv3d, ConvTranspose3d};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::NetworkError;
use super::layers::{
    Triple, Wrapped, assert_divisible, conv_transpose3d, conv3d, instance_norm, product,
};
use crate::ops::{Activation, instance_norm_act};
use crate::weights::{PytorchWeights, WeightsLayout};

/// nnU-Net's LeakyReLU slope.
pub(crate) const NEGATIVE_SLOPE: f64 = 0.01;

/// The hyper-parameters of a DynUNet, as a bundle's `network.yaml` holds them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DynUNetConfig {
    /// Input channels (image modalities).
    pub in_channels: usize,
    /// Output channels (classes, background included).
    pub out_channels: usize,
    /// Convolution kernel per stage (input block first, bottleneck last).
    pub kernel_sizes: Vec<Triple>,
    /// Stride per stage; the first is usually `[1, 1, 1]`.
    pub strides: Vec<Triple>,
    /// Channels per stage; nnU-Net's `min(32 * 2^stage, 320)` when absent.
    #[serde(default)]
    pub filters: Option<Vec<usize>>,
    /// Extra outputs from the decoder levels below the final one, for deep supervision.
    #[serde(default)]
    pub deep_supervision_heads: usize,
    /// 3, or 2 for nnU-Net's 2D U-Net: kernels and strides must then be 1 along z, widths
    /// are capped at 512 instead of 320, and the weights are those of MONAI's
    /// `DynUNet(spatial_dims=2)`.
    #[serde(default = "three")]
    pub spatial_dims: usize,
}

fn three() -> usize {
    3
}

/// nnU-Net's stage widths: `min(32 * 2^stage, 320)` in 3D, capped at 512 in 2D.
pub fn nnunet_filters(stages: usize, spatial_dims: usize) -> Vec<usize> {
    let cap = if spatial_dims == 2 { 512 } else { 320 };
    (0..stages).map(|i| (32usize << i).min(cap)).collect()
}

/// Two convolutions, each followed by instance norm and LeakyReLU (MONAI's `UnetBasicBlock`).
#[derive(Module, Debug)]
pub struct BasicBlock {
    pub(crate) conv1: Wrapped<Conv3d>,
    pub(crate) conv2: Wrapped<Conv3d>,
    pub(crate) norm1: InstanceNorm,
    pub(crate) norm2: InstanceNorm,
}

/// MONAI's `get_padding`: `(kernel - stride + 1) / 2`, rounded down.
fn same_padding(kernel: Triple, stride: Triple) -> Triple {
    [0, 1, 2].map(|a| (kernel[a] + 1 - stride[a].min(kernel[a] + 1)) / 2)
}

impl BasicBlock {
    fn new(channels: [usize; 2], kernel: Triple, stride: Triple, device: &Device) -> Self {
        let padding = same_padding(kernel, stride);
        Self {
            conv1: Wrapped {
                conv: conv3d(channels, kernel, stride, padding, false, device),
            },
            conv2: Wrapped {
                conv: conv3d(
                    [channels[1]; 2],
                    kernel,
                    [1; 3],
                    same_padding(kernel, [1; 3]),
                    false,
                    device,
                ),
            },
            norm1: instance_norm(channels[1], device),
            norm2: instance_norm(channels[1], device),
        }
    }

    fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        let act = Activation::LeakyRelu(NEGATIVE_SLOPE);
        let x = instance_norm_act(&self.norm1, self.conv1.forward(x), act);
        instance_norm_act(&self.norm2, self.conv2.forward(x), act)
    }
}

/// A transposed convolution up, concatenation with the skip, a basic block.
#[derive(Module, Debug)]
pub struct UpBlock {
    pub(crate) transp_conv: Wrapped<ConvTranspose3d>,
    pub(crate) conv_block: BasicBlock,
}

/// A 1x1x1 convolution to class logits (MONAI's `UnetOutBlock`).
#[derive(Module, Debug)]
pub struct OutBlock {
    pub(crate) conv: Wrapped<Conv3d>,
}

impl OutBlock {
    fn new(channels: [usize; 2], device: &Device) -> Self {
        Self {
            conv: Wrapped {
                conv: conv3d(channels, [1; 3], [1; 3], [0; 3], true, device),
            },
        }
    }
}

/// The network.
#[derive(Module, Debug)]
pub struct DynUNet {
    pub(crate) input_block: BasicBlock,
    pub(crate) downsamples: Vec<BasicBlock>,
    pub(crate) bottleneck: BasicBlock,
    pub(crate) upsamples: Vec<UpBlock>,
    pub(crate) output_block: OutBlock,
    pub(crate) deep_supervision_heads: Vec<OutBlock>,
    #[module(skip)]
    shape_factor: Triple,
    #[module(skip)]
    layout: WeightsLayout,
}

impl DynUNetConfig {
    /// A 5-stage isotropic nnU-Net (kernels 3, strides 1 then 2) for the given channels;
    /// the `dynunet` template replaces kernels and strides with the plan's.
    pub fn new(in_channels: usize, out_channels: usize) -> Self {
        let mut strides = vec![[2; 3]; 5];
        strides[0] = [1; 3];
        Self {
            in_channels,
            out_channels,
            kernel_sizes: vec![[3; 3]; 5],
            strides,
            filters: None,
            deep_supervision_heads: 0,
            spatial_dims: 3,
        }
    }

    /// Checks the configuration and builds the network with freshly initialised weights.
    pub fn init(&self, device: &Device) -> Result<DynUNet, NetworkError> {
        let filters = self.validate()?;
        let stages = self.strides.len();
        let block = |i: usize, input: usize| {
            BasicBlock::new(
                [input, filters[i]],
                self.kernel_sizes[i],
                self.strides[i],
                device,
            )
        };
        let input_block = block(0, self.in_channels);
        let downsamples = (1..stages - 1).map(|i| block(i, filters[i - 1])).collect();
        let bottleneck = block(stages - 1, filters[stages - 2]);
        // Decoder, coarsest first: stage i+1 up to stage i.
        let upsamples = (0..stages - 1)
            .rev()
            .map(|i| {
                let up = self.strides[i + 1];
                UpBlock {
                    transp_conv: Wrapped {
                        conv: conv_transpose3d(
                            [filters[i + 1], filters[i]],
                            up,
                            up,
                            [0; 3],
                            [0; 3],
                            false,
                            device,
                        ),
                    },
                    // MONAI pairs the decoder block with the kernel of the stage below.
                    conv_block: BasicBlock::new(
                        [2 * filters[i], filters[i]],
                        self.kernel_sizes[i + 1],
                        [1; 3],
                        device,
                    ),
                }
            })
            .collect();
        let output_block = OutBlock::new([filters[0], self.out_channels], device);
        let deep_supervision_heads = (0..self.deep_supervision_heads)
            .map(|i| OutBlock::new([filters[i + 1], self.out_channels], device))
            .collect();
        let shape_factor = self.shape_factor();
        Ok(DynUNet {
            input_block,
            downsamples,
            bottleneck,
            upsamples,
            output_block,
            deep_supervision_heads,
            shape_factor,
            layout: WeightsLayout::for_dims(self.spatial_dims),
        })
    }

    /// What each input size must be a multiple of: the product of the strides.
    pub fn shape_factor(&self) -> Triple {
        product(&self.strides)
    }

    /// Checks the configuration without building the network.
    pub fn validate(&self) -> Result<Vec<usize>, NetworkError> {
        let invalid = |why: String| Err(NetworkError::InvalidConfig(format!("dynunet: {why}")));
        let stages = self.strides.len();
        if stages < 3 || self.kernel_sizes.len() != stages {
            return invalid(format!(
                "kernel_sizes ({}) and strides ({stages}) must have the same length, at least 3",
                self.kernel_sizes.len()
            ));
        }
        if self.in_channels == 0 || self.out_channels == 0 {
            return invalid("channel counts must be positive".into());
        }
        if self
            .kernel_sizes
            .iter()
            .flatten()
            .chain(self.strides.iter().flatten())
            .any(|&v| v == 0)
        {
            return invalid("kernel sizes and strides must be positive".into());
        }
        for (k, s) in self.kernel_sizes.iter().zip(&self.strides) {
            if (0..3).any(|a| s[a] > k[a] + 1) {
                return invalid(format!("stride {s:?} is larger than kernel {k:?} + 1"));
            }
        }
        match self.spatial_dims {
            3 => {}
            2 if self
                .kernel_sizes
                .iter()
                .chain(&self.strides)
                .all(|t| t[2] == 1) => {}
            2 => return invalid("a 2D network needs kernels and strides of 1 along z".into()),
            d => return invalid(format!("spatial_dims must be 2 or 3, not {d}")),
        }
        if self.deep_supervision_heads >= stages - 1 {
            return invalid(format!(
                "deep_supervision_heads {} must be below the {} decoder levels",
                self.deep_supervision_heads,
                stages - 1
            ));
        }
        let filters = self
            .filters
            .clone()
            .unwrap_or_else(|| nnunet_filters(stages, self.spatial_dims));
        if filters.len() < stages || filters.contains(&0) {
            return invalid(format!(
                "filters {filters:?} must give a positive width for each of the {stages} stages"
            ));
        }
        Ok(filters[..stages].to_vec())
    }
}

impl PytorchWeights for DynUNet {
    /// Planar for the 2D variant.
    fn layout(&self) -> WeightsLayout {
        self.layout
    }

    fn is_output_head(&self, name: &str) -> bool {
        name.starts_with("output_block.") || name.starts_with("deep_supervision_heads.")
    }
}

impl DynUNet {
    /// The factors each spatial size of the input must be a multiple of.
    pub fn shape_factor(&self) -> Triple {
        self.shape_factor
    }

    /// The final output: `[n, out_channels, x / s0, y / s0, z / s0]` logits (`s0` the first
    /// stride, usually 1).
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        self.head(self.features(x))
    }

    /// What the final head reads: the last decoder level's features.
    pub fn features(&self, x: Tensor<5>) -> Tensor<5> {
        self.decode(x, 0).0
    }

    /// The final head, a 1x1x1 convolution: logits from [`Self::features`], voxel by voxel.
    pub fn head(&self, features: Tensor<5>) -> Tensor<5> {
        self.output_block.conv.forward(features)
    }

    /// The final output then one per deep-supervision head, each at its own resolution
    /// (halving per level), finest first: nnU-Net's deep-supervision outputs.
    pub fn forward_deep(&self, x: Tensor<5>) -> Vec<Tensor<5>> {
        let (features, deep) = self.decode(x, self.deep_supervision_heads.len());
        let mut outputs = vec![self.head(features)];
        outputs.extend(deep);
        outputs
    }

    /// The last level's features and the first `heads` deep-supervision outputs, finest
    /// first.
    fn decode(&self, x: Tensor<5>, heads: usize) -> (Tensor<5>, Vec<Tensor<5>>) {
        assert_divisible(&x, self.shape_factor);
        let mut skips = vec![self.input_block.forward(x)];
        for block in &self.downsamples {
            let next = block.forward(skips.last().expect("input block").clone());
            skips.push(next);
        }
        let mut x = self
            .bottleneck
            .forward(skips.last().expect("input block").clone());
        let levels = self.upsamples.len();
        let mut deep = Vec::with_capacity(heads);
        for (j, up) in self.upsamples.iter().enumerate() {
            let skip = skips.pop().expect("one skip per decoder level");
            let x_up = up.transp_conv.forward(x);
            x = up.conv_block.forward(Tensor::cat(vec![x_up, skip], 1));
            // Level j leaves stage `levels - 1 - j`; head i reads stage i + 1.
            let stage = levels - 1 - j;
            if stage >= 1 && stage <= heads {
                deep.push(
                    self.deep_supervision_heads[stage - 1]
                        .conv
                        .forward(x.clone()),
                );
            }
        }
        deep.reverse();
        (x, deep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::networks::{materialized, seeded};

    fn config() -> DynUNetConfig {
        DynUNetConfig {
            kernel_sizes: vec![[3; 3], [3; 3], [3, 3, 1], [3; 3]],
            strides: vec![[1; 3], [2; 3], [2, 2, 1], [2; 3]],
            filters: Some(vec![4, 8, 16, 32]),
            deep_supervision_heads: 2,
            ..DynUNetConfig::new(1, 3)
        }
    }

    #[test]
    fn outputs_come_finest_first_at_each_level_resolution() {
        let device = Device::flex();
        let net = seeded(&device, 1, || materialized(config().init(&device).unwrap()));
        assert_eq!(net.shape_factor(), [8, 8, 4]);
        let x = Tensor::<5>::zeros([2, 1, 16, 8, 4], &device);
        let dims: Vec<_> = net
            .forward_deep(x.clone())
            .iter()
            .map(|o| o.dims())
            .collect();
        assert_eq!(
            dims,
            vec![[2, 3, 16, 8, 4], [2, 3, 8, 4, 2], [2, 3, 4, 2, 2]]
        );
        assert_eq!(net.forward(x).dims(), [2, 3, 16, 8, 4]);
    }

    #[test]
    fn widths_default_to_nnunet_and_bad_configs_say_why() {
        assert_eq!(nnunet_filters(7, 3), vec![32, 64, 128, 256, 320, 320, 320]);
        assert_eq!(nnunet_filters(6, 2), vec![32, 64, 128, 256, 512, 512]);
        let mut bad = config();
        bad.strides.pop();
        let err = bad.init(&Device::flex()).unwrap_err().to_string();
        assert!(err.contains("same length"), "{err}");
        let mut bad = config();
        bad.deep_supervision_heads = 3;
        assert!(bad.init(&Device::flex()).is_err());
    }
}
