//! The whole prediction on the network's device, for devices that keep the sliding window's
//! sums themselves (a CUDA GPU: [`super::Accumulation::Device`]). The host crops the image
//! to its non-zero box and uploads it; resampling to the network's spacing and
//! normalisation ([`prepare_on_device`]), the windows, mirroring and blending
//! ([`super::SlidingWindow::blend_on_device`]), bringing the probabilities back to the
//! image's grid and decoding them ([`classes_on_device`]) stay on the device; only class
//! indices come back, or the probabilities when asked for. nnU-Net's predictor does the
//! same with `perform_everything_on_device`, and likewise falls back to the host when the
//! device runs out of memory ([`super::on_device_or_host`]).
//!
//! Every step is a burn tensor operation, so the CPU backends run the same path in tests.

mod prepare;
mod resample;
mod restore;

pub use prepare::prepare_on_device;
pub use resample::{ConvexResampler, resample_host_channel};
pub use restore::{GridProbabilities, classes_on_device, probabilities_on_device};

#[cfg(test)]
mod tests;
