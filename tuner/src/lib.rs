//! autoseg's training engine: losses (MONAI's definitions), optimisers and schedules
//! (PyTorch's and MONAI's update rules), the training loop of one bundle ([`train`]) and of
//! every bundle of a work dir ([`trials`]); the data it trains on comes from
//! `autoseg_datasets::training`.

pub mod loss;
pub mod optim;
pub mod slurm;
pub mod train;
pub mod trials;
pub mod tune;
