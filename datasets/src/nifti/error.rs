//! What can go wrong reading or writing a NIfTI file.

use std::path::PathBuf;

/// A NIfTI read or write failure, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {kind}", path.display())]
pub struct NiftiError {
    /// The file.
    pub path: PathBuf,
    /// What was wrong with it.
    pub kind: NiftiErrorKind,
}

/// The ways a NIfTI file can be unreadable, each with the figures that say why.
#[derive(Debug, thiserror::Error)]
pub enum NiftiErrorKind {
    /// The file is not there.
    #[error("file not found")]
    NotFound,
    /// A FIFO, a device or a folder: only regular files are read (the others may never end).
    #[error("not a regular file")]
    NotAFile,
    /// The system refused the memory for the file's voxels.
    #[error("cannot allocate {bytes} bytes for its voxels")]
    OutOfMemory {
        /// The bytes asked for.
        bytes: usize,
    },
    /// The operating system refused (permissions, a folder, ...).
    #[error("cannot read: {0}")]
    Io(std::io::Error),
    /// The gzip stream ends early or is corrupt.
    #[error("corrupt or truncated gzip data ({0})")]
    Gzip(std::io::Error),
    /// A gzip stream that inflates past what the header declares (a padding bomb, or a
    /// header that lies): the rest is refused, not read.
    #[error("the gzip data inflates past the {declared} bytes the header declares")]
    GzipOverlong {
        /// vox_offset plus the voxels' bytes.
        declared: u64,
    },
    /// A header declaring more than its compressed file could hold.
    #[error(
        "the header declares {declared} bytes, more than a {compressed}-byte gzip file can hold"
    )]
    GzipTooSmall {
        /// vox_offset plus the voxels' bytes.
        declared: u64,
        /// The file's size.
        compressed: u64,
    },
    /// Fewer bytes than a header.
    #[error("file is too short to hold a NIfTI header ({len} bytes)")]
    TooShort {
        /// Bytes available.
        len: usize,
    },
    /// The first four bytes are not 348 or 540 in either byte order.
    #[error(
        "not a NIfTI file: sizeof_hdr is {sizeof_hdr}, expected 348 (NIfTI-1) or 540 (NIfTI-2)"
    )]
    NotNifti {
        /// The value read (little-endian).
        sizeof_hdr: i32,
    },
    /// The magic string is not `n+1`/`ni1`/`n+2`/`ni2`.
    #[error("bad NIfTI magic {magic:?}")]
    BadMagic {
        /// The bytes found.
        magic: Vec<u8>,
    },
    /// A header field holds an impossible value.
    #[error("invalid header: {0}")]
    InvalidHeader(String),
    /// A datatype we do not read.
    #[error("unsupported datatype {code} ({name})")]
    UnsupportedDatatype {
        /// The code in the header.
        code: i16,
        /// Its name, if NIfTI defines one.
        name: &'static str,
    },
    /// A two-file (`.hdr`/`.img`) pair, which autoseg does not read.
    #[error("two-file NIfTI (.hdr/.img) is not supported; convert it to .nii.gz")]
    PairFile,
    /// The voxel data ends before the header says it should.
    #[error(
        "voxel data truncated: header needs {needed} bytes after offset {offset}, file holds {available}"
    )]
    TruncatedData {
        /// Bytes the dims and datatype call for.
        needed: usize,
        /// Where data starts.
        offset: usize,
        /// Bytes present after the offset.
        available: usize,
    },
    /// A shape the data layer cannot hold (more than 4 dims with several volumes, say).
    #[error("unsupported shape {dims:?}: {why}")]
    UnsupportedShape {
        /// The dims.
        dims: Vec<usize>,
        /// Why.
        why: &'static str,
    },
    /// Writing failed.
    #[error("cannot write: {0}")]
    Write(std::io::Error),
}

impl NiftiErrorKind {
    /// Attaches the file this happened to.
    pub fn at(self, path: impl Into<PathBuf>) -> NiftiError {
        NiftiError {
            path: path.into(),
            kind: self,
        }
    }
}
