//! The training engine (losses, optimizers, loop, checkpoints, resume) and hyper-parameter
//! search over bundles and folds. Empty until its issue lands.
