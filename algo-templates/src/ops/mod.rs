//! Tensor operations burn 0.22 lacks for volumes, written once for every network and loss:
//! 3D max pooling and 3D resizing (trilinear, and nearest-exact for label maps).
//!
//! All work on `[batch, channels, x, y, z]` tensors, on any backend, with gradients where
//! the operation has them: they are built from reshapes, reductions and matrix products.

mod pool;
mod resize;

pub use pool::max_pool3d;
pub use resize::{resize_linear, resize_nearest_exact};
