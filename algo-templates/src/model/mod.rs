//! The model half of the crate: compute devices (burn backends), volume operations burn lacks,
//! the networks, the sliding window and weights files. It knows nothing of bundles or
//! templates (the other half: `bundle`, `templates`, `generate`, `export`), so it can be read,
//! and used, alone.

pub mod device;
pub mod inference;
pub mod networks;
pub mod ops;
pub mod weights;
