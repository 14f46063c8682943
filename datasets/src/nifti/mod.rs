//! NIfTI-1 and NIfTI-2 reading and writing (single-file `.nii` and `.nii.gz`).
//!
//! Written here rather than taken from the `nifti` crate: that crate (0.18) reads NIfTI-1 only
//! (16-bit dims), always writes scl_slope 1, and returns Fortran-order arrays that need a copy.
//! This codec decodes every integer and real datatype straight into f32 in file order, which
//! is exactly the channels-first, x-fastest layout of [`crate::Volume`]: no transpose.

mod datatype;
mod error;
mod header;

pub use datatype::{DataType, NiftiElement};
pub use error::{NiftiError, NiftiErrorKind};
pub use header::{NiftiHeader, NiftiVersion};

use std::io::{Read, Write};
use std::path::Path;

use crate::fsutil::write_atomic;

/// A decoded NIfTI file: its header and every voxel as f32, in file order (x fastest).
#[derive(Debug, Clone)]
pub struct NiftiFile {
    /// The header as read.
    pub header: NiftiHeader,
    /// All voxels of all dimensions, scaled by scl_slope/scl_inter.
    pub data: Vec<f32>,
}

/// Reads a `.nii` or `.nii.gz` file (gzip is recognised by its magic bytes, not the name).
pub fn read(path: &Path) -> Result<NiftiFile, NiftiError> {
    let raw = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => NiftiErrorKind::NotFound.at(path),
        _ => NiftiErrorKind::Io(e).at(path),
    })?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        gunzip(&raw).map_err(|k| k.at(path))?
    } else {
        raw
    };
    decode(&bytes).map_err(|k| k.at(path))
}

/// Reads only the header (still decompressing what precedes it).
pub fn read_header(path: &Path) -> Result<NiftiHeader, NiftiError> {
    let file = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => NiftiErrorKind::NotFound.at(path),
        _ => NiftiErrorKind::Io(e).at(path),
    })?;
    let mut reader = std::io::BufReader::new(file);
    let mut start = Vec::with_capacity(header::NIFTI2_SIZE + 4);
    let mut magic = [0u8; 2];
    reader
        .read_exact(&mut magic)
        .map_err(|_| NiftiErrorKind::TooShort { len: 0 }.at(path))?;
    let chain = std::io::Cursor::new(magic).chain(reader);
    let limit = (header::NIFTI2_SIZE + 4) as u64;
    let result = if magic == [0x1f, 0x8b] {
        flate2::read::MultiGzDecoder::new(chain)
            .take(limit)
            .read_to_end(&mut start)
    } else {
        chain.take(limit).read_to_end(&mut start)
    };
    result.map_err(|e| NiftiErrorKind::Gzip(e).at(path))?;
    NiftiHeader::parse(&start).map_err(|k| k.at(path))
}

fn gunzip(raw: &[u8]) -> Result<Vec<u8>, NiftiErrorKind> {
    // The gzip trailer holds the uncompressed size mod 2^32: a good capacity hint.
    let hint = raw
        .len()
        .checked_sub(4)
        .map_or(0, |at| u32::from_le_bytes(raw[at..].try_into().unwrap()));
    let mut out = Vec::with_capacity((hint as usize).max(raw.len()));
    flate2::read::MultiGzDecoder::new(raw)
        .read_to_end(&mut out)
        .map_err(NiftiErrorKind::Gzip)?;
    Ok(out)
}

/// Decodes an uncompressed NIfTI byte image.
pub fn decode(bytes: &[u8]) -> Result<NiftiFile, NiftiErrorKind> {
    let header = NiftiHeader::parse(bytes)?;
    let datatype = header.data_type()?;
    let count = header.voxel_count();
    let offset = header.vox_offset as usize;
    let needed = count
        .checked_mul(datatype.size())
        .ok_or_else(|| NiftiErrorKind::InvalidHeader("dims overflow".into()))?;
    let available = bytes.len().saturating_sub(offset);
    if available < needed {
        return Err(NiftiErrorKind::TruncatedData {
            needed,
            offset,
            available,
        });
    }
    let mut data = vec![0f32; count];
    datatype.decode(
        &bytes[offset..offset + needed],
        header.big_endian,
        header.scaling(),
        &mut data,
    );
    Ok(NiftiFile { header, data })
}

/// Writes `data` (file order, x fastest) under `header` to `path`, atomically; gzip when the
/// name ends in `.gz`. The header's datatype, bitpix and scaling are set from `T`; dims,
/// affine, codes, units, description and extensions are written as given.
pub fn write<T: NiftiElement>(
    path: &Path,
    header: &NiftiHeader,
    data: &[T],
) -> Result<(), NiftiError> {
    let mut header = header.clone();
    if header.voxel_count() != data.len() {
        let why = "voxel count differs from the data's length";
        return Err(NiftiErrorKind::UnsupportedShape {
            dims: header.dims(),
            why,
        }
        .at(path));
    }
    header.datatype = T::DATATYPE.code();
    header.bitpix = T::DATATYPE.bitpix();
    header.scl_slope = 1.0;
    header.scl_inter = 0.0;
    let mut bytes = header.to_bytes();
    T::extend_le(data, &mut bytes);
    let gzip = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    write_atomic(path, |w| {
        if gzip {
            let mut encoder = flate2::write::GzEncoder::new(w, flate2::Compression::new(1));
            encoder.write_all(&bytes)?;
            encoder.finish()?;
            Ok(())
        } else {
            w.write_all(&bytes)
        }
    })
    .map_err(|e| NiftiErrorKind::Write(e).at(path))
}
