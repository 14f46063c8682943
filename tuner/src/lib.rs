//! autoseg's training engine: losses (MONAI's definitions) and, next, optimisers, schedules
//! and the training loop (see the project's issues).

pub mod loss;
