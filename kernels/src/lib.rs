//! Array compute for every stage: connected components now; resampling, Gaussian window
//! blending, distance transforms and segmentation metrics as their issue lands. It knows
//! nothing of burn or of files.

pub mod components;

pub use components::{Component, Components, Connectivity, label_components};
