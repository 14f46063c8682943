//! Tensor operations burn 0.22 lacks for volumes, written once for every network and loss:
//! 3D max pooling and 3D resizing (trilinear, and nearest-exact for label maps); instance
//! norm fused with its activation, which burn has but composes from many small operations;
//! a 3D convolution whose gradients burn-flex computes faster; and mixed precision for
//! the convolutions (bf16 operands, f32 outputs) inside an autocast scope.
//!
//! All work on `[batch, channels, x, y, z]` tensors, on any backend, with gradients where
//! the operation has them: they are built from reshapes, reductions and matrix products.

mod autocast;
mod conv;
mod flex_slices;
mod norm_act;
mod pool;
pub(crate) mod resize;
#[cfg(test)]
pub(crate) mod test_support;

pub use autocast::{AutocastScope, MixedPrecision};
pub use conv::{apply_conv_transpose3d, apply_conv3d};
pub use norm_act::{Activation, composed_instance_norm_act, instance_norm_act};
pub use pool::max_pool3d;
pub use resize::{resize_linear, resize_nearest_exact};
