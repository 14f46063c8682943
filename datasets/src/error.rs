//! The data layer's errors: each names the file and says what is wrong with it.

use std::path::PathBuf;

use crate::nifti::NiftiError;
use crate::orientation::Orientation;

/// Everything the data layer can refuse.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// A NIfTI file could not be read or written.
    #[error(transparent)]
    Nifti(#[from] NiftiError),
    /// A label map holds values that are not class ids.
    #[error("{}: {kind}", path.display())]
    Label {
        /// The label file.
        path: PathBuf,
        /// What it holds.
        kind: LabelError,
    },
    /// Two files that must share a grid do not.
    #[error("{}: {mismatch} (compared with {})", path.display(), against.display())]
    Geometry {
        /// The file that differs.
        path: PathBuf,
        /// The file it was compared with.
        against: PathBuf,
        /// How (boxed: the grids' figures would make every result of the crate large).
        mismatch: Box<GeometryMismatch>,
    },
    /// The datalist JSON is unreadable or malformed.
    #[error("{}: {message}", path.display())]
    Datalist {
        /// The datalist.
        path: PathBuf,
        /// What is wrong, with the item and key.
        message: String,
    },
    /// The task config YAML is unreadable or malformed.
    #[error("{}: {message}", path.display())]
    TaskConfig {
        /// The config file.
        path: PathBuf,
        /// What is wrong, with the key.
        message: String,
    },
    /// Folds cannot be made as asked.
    #[error("folds: {0}")]
    Folds(String),
    /// A path in the datalist leads outside the data root.
    #[error("{}: leaves the data root {} (pass --allow-outside-root to permit)", path.display(), root.display())]
    OutsideRoot {
        /// The resolved path.
        path: PathBuf,
        /// The data root.
        root: PathBuf,
    },
    /// Any other file-system failure.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Why raw values are not a label map. Voxels are (i, j, k) indices.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LabelError {
    /// More than one channel.
    #[error("a label map has one channel, this has {channels}")]
    Channels {
        /// Channels found.
        channels: usize,
    },
    /// NaN or infinity.
    #[error("{count} voxels are NaN or infinite, the first at {voxel:?}")]
    NonFinite {
        /// How many.
        count: u64,
        /// The first.
        voxel: [usize; 3],
    },
    /// Fractional values.
    #[error("{count} voxels are not integers, the first is {value} at {voxel:?}")]
    NonInteger {
        /// How many.
        count: u64,
        /// The first value.
        value: f32,
        /// Where.
        voxel: [usize; 3],
    },
    /// Negative ids.
    #[error("{count} voxels are negative, the first is {value} at {voxel:?}")]
    Negative {
        /// How many.
        count: u64,
        /// The first value.
        value: f32,
        /// Where.
        voxel: [usize; 3],
    },
    /// Ids past 65535.
    #[error("{count} voxels are above 65535, the first is {value} at {voxel:?}")]
    TooLarge {
        /// How many.
        count: u64,
        /// The first value.
        value: f32,
        /// Where.
        voxel: [usize; 3],
    },
}

/// How two grids differ.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GeometryMismatch {
    /// Different voxel counts.
    #[error("shape {left:?} differs from {right:?}")]
    Shape {
        /// This grid's dims.
        left: [usize; 3],
        /// The other's.
        right: [usize; 3],
    },
    /// Different voxel sizes.
    #[error("spacing {left:?} differs from {right:?}")]
    Spacing {
        /// This grid's spacing.
        left: [f64; 3],
        /// The other's.
        right: [f64; 3],
    },
    /// Different axis directions.
    #[error("axis directions differ ({left} vs {right})")]
    Direction {
        /// This grid's orientation code.
        left: Orientation,
        /// The other's.
        right: Orientation,
    },
    /// Different positions in space.
    #[error("origin {left:?} differs from {right:?} by {distance_mm:.4} mm")]
    Origin {
        /// This grid's origin.
        left: [f64; 3],
        /// The other's.
        right: [f64; 3],
        /// Distance between them.
        distance_mm: f64,
    },
}
