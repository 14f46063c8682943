//! The segmentation networks, written once against burn's `Tensor` API so they run on flex,
//! libtorch CPU and libtorch CUDA alike, with PyTorch-compatible parameter names.

mod dynunet;
pub(crate) mod layers;
mod segresnet_ds;
mod small_unet;

pub use dynunet::{DynUNet, DynUNetConfig, nnunet_filters};
pub use layers::Triple;
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
        Ok(match self {
            NetworkConfig::SegresnetDs(c) => Network::SegresnetDs(c.init(device)?),
            NetworkConfig::Dynunet(c) => Network::Dynunet(c.init(device)?),
        })
    }

    /// Checks the configuration without building the network.
    pub fn validate(&self) -> Result<(), NetworkError> {
        match self {
            NetworkConfig::SegresnetDs(c) => c.validate(),
            NetworkConfig::Dynunet(c) => c.validate().map(|_| ()),
        }
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
}
