//! The segmentation networks, written once against burn's `Tensor` API so they run on flex,
//! libtorch CPU and libtorch CUDA alike, with PyTorch-compatible parameter names.

mod dynunet;
mod layers;
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
