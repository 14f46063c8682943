//! Array compute for every stage, on CPU (rayon): connected components and their clean-ups,
//! the exact Euclidean distance transform, surfaces and surface distances (Hausdorff, ASD,
//! surface Dice), overlap (confusion matrix, Dice, IoU), sliding-window blending, resampling
//! as nnU-Net does it, the bilateral filter and a dense CRF,
//! and runs of equal voxels (what the analyzer and the labelling count by); CUDA paths behind
//! the `cuda` feature, which a stage reaches through [`KernelDevice`]. It knows nothing of burn or of files.

pub mod bilateral;
pub mod blend;
pub mod components;
pub mod crf;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod device;
pub mod distance;
mod grid;
pub mod order;
pub mod overlap;
pub mod postprocess;
pub mod resample;
pub mod runs;
pub mod surface;
#[cfg(test)]
mod testing;

pub use bilateral::{BilateralSigmas, bilateral_exact, bilateral_grid, cross_bilateral_grid};
pub use blend::{Window, WindowAccumulator, gaussian_importance_map};
pub use components::{Component, Components, Connectivity, label_components};
pub use crf::{CrfParams, dense_crf};
pub use device::{KernelDevice, KernelDeviceError};
pub use distance::squared_distance_to;
pub use order::linear_percentile;
pub use overlap::ConfusionMatrix;
pub use postprocess::{
    fill_holes, fill_holes_in, keep_largest, keep_largest_in, remove_small, remove_small_in,
    remove_small_of_class,
};
pub use surface::{SurfaceDistances, surface};
