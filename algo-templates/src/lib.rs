//! Networks, algorithm templates, and the bundle format and runtime.
//!
//! So far: [`device`], the choice of burn backend every network runs on. The networks
//! (SegResNetDS, a nnU-Net-style U-Net), the `Template` rules and bundles come next (see the
//! project's issues).

pub mod device;

pub use device::{ComputeDevice, DeviceError};
