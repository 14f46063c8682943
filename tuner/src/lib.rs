//! autoseg's training engine: losses (MONAI's definitions), optimisers and schedules
//! (PyTorch's and MONAI's update rules); the training loop comes next (see the project's
//! issues).

pub mod data;
pub mod loss;
pub mod optim;
pub mod train;
