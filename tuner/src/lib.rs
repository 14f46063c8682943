//! autoseg's training engine: losses (MONAI's definitions), optimisers and schedules
//! (PyTorch's and MONAI's update rules), the data pipeline, the training loop of one bundle
//! ([`train`]) and of every bundle of a work dir ([`trials`]).

pub mod data;
pub mod loss;
pub mod optim;
pub mod slurm;
pub mod train;
pub mod trials;
pub mod tune;
