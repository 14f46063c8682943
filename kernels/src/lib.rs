//! Array compute for every stage: connected components, the exact Euclidean distance
//! transform, surfaces and surface distances (Hausdorff, ASD, surface Dice), and overlap
//! (confusion matrix, Dice, IoU), clean-ups on components, and sliding-window blending;
//! resampling and the CUDA paths as their issue goes on. It
//! knows nothing of burn or of files.

pub mod blend;
pub mod components;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod distance;
pub mod overlap;
pub mod postprocess;
pub mod resample;
pub mod surface;
#[cfg(test)]
mod testing;

pub use blend::{Window, WindowAccumulator, gaussian_importance_map};
pub use components::{Component, Components, Connectivity, label_components};
pub use distance::squared_distance_to;
pub use overlap::ConfusionMatrix;
pub use postprocess::{fill_holes, keep_largest, remove_small};
pub use surface::{SurfaceDistances, surface};
