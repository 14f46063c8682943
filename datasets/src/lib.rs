//! autoseg's data layer: everything between files on disk and arrays in memory.
//!
//! - [`datalist`] and [`task`]: the MSD-style datalist JSON and MONAI-style `input.yaml`,
//!   resolved against a data root into a [`Dataset`] of cases.
//! - [`folds`]: cross-validation folds from the datalist or a seeded (grouped) K-fold split.
//! - [`nifti`]: NIfTI-1/2 reading and writing; [`Volume`] and [`LabelVolume`] on a
//!   [`Geometry`]; [`orientation`] codes and reorientation.
//! - [`check`]: the dataset integrity check behind `autoseg check`.
//! - [`memory`]: how the allocator and the kernel hold whole-volume buffers.
//! - [`regions`]: region-based targets (overlapping unions of labels) and how channels
//!   decode into classes.
//! - [`phantom`]: deterministic synthetic datasets for the demo and the tests.
//! - [`transforms`]: preprocessing and its inverse, augmentation; [`training`]: the
//!   preprocessed-case cache, patch sampling and the batch loader.
//! - [`workdir`]: the work dir's and the bundle's paths, the contract between stages.

pub mod affine;
pub mod check;
pub mod datalist;
mod error;
pub mod folds;
pub mod fsutil;
mod geometry;
pub mod hash;
mod label_scan;
pub mod lock;
pub mod memory;
pub mod nifti;
pub mod orientation;
pub mod phantom;
pub mod regions;
pub mod rng;
pub mod task;
pub mod textfile;
pub mod training;
pub mod transforms;
mod volume;
pub mod workdir;

pub use affine::Affine;
pub use datalist::{Case, Datalist, Dataset};
pub use error::{DatasetError, GeometryMismatch, LabelError};
pub use geometry::{Geometry, GeometryTolerance};
pub use label_scan::{LabelScan, id_ranges};
pub use orientation::Orientation;
pub use task::{Modality, TaskConfig};
pub use volume::{Image, LabelVolume, NonzeroBox, Volume};
pub use workdir::{Bundle, WorkDir};
