//! Networks, algorithm templates, and the bundle format and runtime.
//!
//! [`device`] (the burn backend every network runs on), [`ops`] (volume operations burn
//! lacks), [`networks`] (SegResNetDS, DynUNet and the benchmark U-Net), [`weights`]
//! (safetensors and PyTorch files with PyTorch parameter names), [`templates`] (the rules
//! that turn dataset statistics into bundles) and [`generate`] (writing them), [`bundle`]
//! (the bundle format and the predictor), [`inference`] (the sliding window) and
//! [`export`] (ONNX and MONAI bundles).

pub mod bundle;
pub mod device;
pub mod export;
pub mod generate;
pub mod inference;
pub mod networks;
pub mod ops;
pub mod strict;
pub mod templates;
pub mod weights;

pub use device::{ComputeDevice, DeviceError};
