//! What happens to a volume between file and network: preprocessing (shared by training,
//! validation and inference, with its inverse for predictions) and training augmentation.

pub mod augment;
pub mod preprocess;
pub mod restore;
