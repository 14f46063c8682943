//! Networks, algorithm templates, and the bundle format and runtime.
//!
//! So far: [`device`] (the burn backend every network runs on), [`ops`] (volume operations
//! burn lacks), [`networks`] (SegResNetDS, DynUNet and the benchmark U-Net) and [`weights`]
//! (safetensors files with PyTorch parameter names). The `Template` rules and bundles come
//! next (see the project's issues).

pub mod bundle;
pub mod device;
pub mod generate;
pub mod inference;
pub mod networks;
pub mod ops;
pub mod strict;
pub mod templates;
pub mod weights;

pub use device::{ComputeDevice, DeviceError};
