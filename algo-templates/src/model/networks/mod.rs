//! The segmentation networks, written once against burn's `Tensor` API so they run on flex,
//! libtorch CPU and libtorch CUDA alike, with PyTorch-compatible parameter names.

pub(crate) mod dynunet;
pub(crate) mod layers;
mod seeded;
pub(crate) mod segresnet_ds;
mod small_unet;

pub use dynunet::{DynUNet, DynUNetConfig, nnunet_filters};
pub use layers::Triple;
pub(crate) use seeded::{materialized, seeded};
pub use segresnet_ds::{SegResNetDs, SegResNetDsConfig, scales_for_resolution};
pub use small_unet::SmallUNet;

/// A network that cannot be built from its configuration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NetworkError {
    /// A configuration value out of range; the text names the network and the value.
    #[error("invalid network configuration: {0}")]
    InvalidConfig(String),
}

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::weights::{PytorchWeights, WeightsLayout};

/// The most classes a network may output: predictions hold a class in one byte.
pub const MAX_CLASSES: usize = 256;
/// The widest stage (and most input channels) a configuration may ask for (nnU-Net's widest
/// is 512).
const MAX_WIDTH: usize = 4096;
/// The largest kernel along an axis (nnU-Net's and MONAI's are 1 or 3).
const MAX_KERNEL: usize = 15;
/// The most residual blocks in a SegResNet level (MONAI's deepest has 4).
const MAX_BLOCKS: usize = 64;
/// The most resolution stages (nnU-Net plans at most 7 in 3D).
const MAX_STAGES: usize = 12;

/// A network as a bundle's `network.yaml` names it (`name: segresnet_ds` or `dynunet`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum NetworkConfig {
    /// MONAI's SegResNetDS.
    SegresnetDs(SegResNetDsConfig),
    /// nnU-Net's U-Net as MONAI's DynUNet.
    Dynunet(DynUNetConfig),
}

impl NetworkConfig {
    /// Builds the network with fresh weights.
    pub fn init(&self, device: &Device) -> Result<Network, NetworkError> {
        self.validate()?;
        Ok(match self {
            NetworkConfig::SegresnetDs(c) => Network::SegresnetDs(c.init(device)?),
            NetworkConfig::Dynunet(c) => Network::Dynunet(c.init(device)?),
        })
    }

    /// Builds the network with the weights of `seed`, every parameter drawn under
    /// [`seeded`]'s lock, so networks built side by side in a process (trials, tests) each
    /// get the weights of their own seed.
    pub fn init_seeded(&self, device: &Device, seed: u64) -> Result<Network, NetworkError> {
        seeded(device, seed, || self.init(device).map(materialized))
    }

    /// Checks the configuration without building the network, sizes included: a kernel,
    /// width or depth far past any network's would allocate weights the system cannot give.
    pub fn validate(&self) -> Result<(), NetworkError> {
        let invalid = |why: String| Err(NetworkError::InvalidConfig(why));
        if self.out_channels() > MAX_CLASSES {
            return invalid(format!(
                "{} output classes: at most {MAX_CLASSES} (a class is stored in one byte)",
                self.out_channels()
            ));
        }
        if self.in_channels() > MAX_WIDTH {
            return invalid(format!(
                "{} input channels: at most {MAX_WIDTH}",
                self.in_channels()
            ));
        }
        let (widths, kernels) = match self {
            NetworkConfig::SegresnetDs(c) => {
                c.validate()?;
                let blocks = c.blocks_down.iter().chain(c.blocks_up.iter().flatten());
                if let Some(b) = blocks.copied().find(|&b| b > MAX_BLOCKS) {
                    return invalid(format!("{b} blocks in a level: at most {MAX_BLOCKS}"));
                }
                let levels = c.blocks_down.len() as u32;
                let widest = c.init_filters.checked_shl(levels - 1).unwrap_or(usize::MAX);
                (vec![widest], vec![[3; 3]])
            }
            NetworkConfig::Dynunet(c) => (c.validate()?, c.kernel_sizes.clone()),
        };
        if let Some(w) = widths.iter().find(|&&w| w > MAX_WIDTH) {
            return invalid(format!("a stage of {w} features: at most {MAX_WIDTH}"));
        }
        if let Some(k) = kernels.iter().find(|k| k.iter().any(|&v| v > MAX_KERNEL)) {
            return invalid(format!("kernel {k:?}: at most {MAX_KERNEL} along an axis"));
        }
        if widths.len() > MAX_STAGES {
            return invalid(format!("{} stages: at most {MAX_STAGES}", widths.len()));
        }
        Ok(())
    }

    /// Trainable parameters, counted on a network built on the CPU.
    pub fn parameter_count(&self) -> Result<usize, NetworkError> {
        Ok(self.init(&Device::flex())?.num_params())
    }

    /// Output channels (classes, background included).
    pub fn out_channels(&self) -> usize {
        match self {
            NetworkConfig::SegresnetDs(c) => c.out_channels,
            NetworkConfig::Dynunet(c) => c.out_channels,
        }
    }

    /// Input channels.
    pub fn in_channels(&self) -> usize {
        match self {
            NetworkConfig::SegresnetDs(c) => c.in_channels,
            NetworkConfig::Dynunet(c) => c.in_channels,
        }
    }

    /// What each input size must be a multiple of (of a valid configuration).
    pub fn shape_factor(&self) -> Triple {
        match self {
            NetworkConfig::SegresnetDs(c) => c.shape_factor(),
            NetworkConfig::Dynunet(c) => c.shape_factor(),
        }
    }

    /// Features at full resolution: what a window's activations scale with.
    pub fn first_filters(&self) -> usize {
        match self {
            NetworkConfig::SegresnetDs(c) => c.init_filters,
            NetworkConfig::Dynunet(c) => c
                .validate()
                .ok()
                .and_then(|f| f.first().copied())
                .unwrap_or(32),
        }
    }

    /// 2 for the planar variants, else 3.
    pub fn spatial_dims(&self) -> usize {
        match self {
            NetworkConfig::SegresnetDs(c) => c.spatial_dims,
            NetworkConfig::Dynunet(c) => c.spatial_dims,
        }
    }
}

/// Any of the networks, behind one interface for training and inference.
// One network lives per run; boxing its variants would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Network {
    /// SegResNetDS.
    SegresnetDs(SegResNetDs),
    /// DynUNet.
    Dynunet(DynUNet),
}

impl Network {
    /// Class logits at full resolution.
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        match self {
            Network::SegresnetDs(n) => n.forward(x),
            Network::Dynunet(n) => n.forward(x),
        }
    }

    /// What the final head reads, at full resolution: [`Self::forward`] is
    /// `head(features(x))`.
    pub fn features(&self, x: Tensor<5>) -> Tensor<5> {
        match self {
            Network::SegresnetDs(n) => n.features(x),
            Network::Dynunet(n) => n.features(x),
        }
    }

    /// The final head: a 1x1x1 convolution in every network here, so any block of
    /// [`Self::features`]' voxels goes through it alone (prediction runs it a slab at a time
    /// to keep every class's logits of a whole window out of memory).
    pub fn head(&self, features: Tensor<5>) -> Tensor<5> {
        match self {
            Network::SegresnetDs(n) => n.head(features),
            Network::Dynunet(n) => n.head(features),
        }
    }

    /// Every deep-supervision output, finest first.
    pub fn forward_deep(&self, x: Tensor<5>) -> Vec<Tensor<5>> {
        match self {
            Network::SegresnetDs(n) => n.forward_deep(x),
            Network::Dynunet(n) => n.forward_deep(x),
        }
    }

    /// What each input size must be a multiple of.
    pub fn shape_factor(&self) -> Triple {
        match self {
            Network::SegresnetDs(n) => n.shape_factor(),
            Network::Dynunet(n) => n.shape_factor(),
        }
    }
}

impl PytorchWeights for Network {
    fn layout(&self) -> WeightsLayout {
        match self {
            Network::SegresnetDs(n) => n.layout(),
            Network::Dynunet(n) => n.layout(),
        }
    }

    fn is_output_head(&self, name: &str) -> bool {
        match self {
            Network::SegresnetDs(n) => n.is_output_head(name),
            Network::Dynunet(n) => n.is_output_head(name),
        }
    }
}
