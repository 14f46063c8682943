//! Networks, algorithm templates, and the bundle format and runtime.
//!
//! Two halves. [`model`], which knows nothing of the other: [`device`] (the burn backend
//! every network runs on), [`ops`] (volume operations burn lacks), [`networks`]
//! (SegResNetDS, DynUNet and the benchmark U-Net), [`inference`] (the sliding window) and
//! [`weights`] (safetensors and PyTorch files with PyTorch parameter names). And the bundle
//! half: [`templates`] (the rules that turn dataset statistics into bundles), [`generate`]
//! (writing them), [`bundle`] (the bundle format and the predictor) and [`export`] (ONNX and
//! MONAI bundles).

pub mod bundle;
pub mod export;
pub mod generate;
pub mod model;
pub mod planner;
pub mod strict;
pub mod templates;

pub use model::{device, inference, networks, ops, weights};

pub use device::{ComputeDevice, DeviceError};
