//! NIfTI-1 and NIfTI-2 reading and writing (single-file `.nii` and `.nii.gz`).
//!
//! Written here rather than taken from the `nifti` crate: that crate (0.18) reads NIfTI-1 only
//! (16-bit dims), always writes scl_slope 1, and returns Fortran-order arrays that need a copy.
//! This codec decodes every integer and real datatype straight into f32 in file order, which
//! is exactly the channels-first, x-fastest layout of [`crate::Volume`]: no transpose.

mod datatype;
mod error;
mod header;
mod layout;
mod read;

pub use datatype::{DataType, NiftiElement};
pub use error::{NiftiError, NiftiErrorKind};
pub use header::{NiftiHeader, NiftiVersion};
pub use read::{decode, header_from, raw_from, read, read_header, read_raw};

use std::io::Write;
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

/// A NIfTI file's header and its voxel bytes as stored (decompressed, not yet decoded), for
/// readers that decode to something other than f32.
#[derive(Debug, Clone)]
pub struct RawNifti {
    /// The header as read.
    pub header: NiftiHeader,
    /// The decompressed file, held in f32-sized words (the last one padded with zeros) so that
    /// float32 voxels in the machine's byte order become the data without a copy.
    words: Vec<f32>,
    /// Where the voxels start in the file's bytes, and how many bytes they take.
    voxels: std::ops::Range<usize>,
}

impl RawNifti {
    /// The voxel bytes, in the file's datatype and byte order.
    pub fn voxel_bytes(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.words)[self.voxels.clone()]
    }

    /// Every voxel as f32, scaled by scl_slope/scl_inter.
    pub fn into_f32(self) -> Result<NiftiFile, NiftiErrorKind> {
        let datatype = self.header.data_type()?;
        let native = self.header.big_endian == cfg!(target_endian = "big");
        let start = self.voxels.start;
        if datatype == DataType::F32 && native && self.header.scaling().is_none() && start % 4 == 0
        {
            // The voxels are the data already: move them to the front of their own buffer.
            let (first, n) = (start / 4, self.header.voxel_count());
            let mut data = self.words;
            data.copy_within(first..first + n, 0);
            data.truncate(n);
            return Ok(NiftiFile {
                header: self.header,
                data,
            });
        }
        let mut data = vec![0f32; self.header.voxel_count()];
        datatype.decode(
            self.voxel_bytes(),
            self.header.big_endian,
            self.header.scaling(),
            &mut data,
        );
        Ok(NiftiFile {
            header: self.header,
            data,
        })
    }

    /// Every voxel as a class id, when the file stores unscaled integers that all fit in u16
    /// (what label maps are); `None` otherwise, for the caller to decode as f32 and say why.
    pub fn class_ids(&self) -> Option<Vec<u16>> {
        if self.header.scaling().is_some() {
            return None;
        }
        let datatype = self.header.data_type().ok()?;
        let mut ids = vec![0u16; self.header.voxel_count()];
        crate::memory::advise_huge_pages(&ids);
        datatype
            .decode_class_ids(self.voxel_bytes(), self.header.big_endian, &mut ids)
            .then_some(ids)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Affine;

    /// A little-endian float32 file's bytes under `header` (its scaling as set there).
    fn float32_file(header: &NiftiHeader, values: &[f32]) -> Vec<u8> {
        let mut bytes = header.to_bytes();
        bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        bytes
    }

    #[test]
    fn float32_voxels_read_the_same_whether_moved_or_decoded() {
        let values: Vec<f32> = (0..24).map(|i| i as f32 * 0.75 - 4.0).collect();
        let mut header = NiftiHeader::new(&[2, 3, 4], DataType::F32, &Affine::IDENTITY);
        // Unscaled (in the machine's byte order): the file's buffer becomes the data.
        assert_eq!(
            decode(&float32_file(&header, &values)).unwrap().data,
            values
        );
        // Scaled: decoded value by value (int32_big_endian in the nibabel fixture covers the
        // other byte order).
        (header.scl_slope, header.scl_inter) = (2.0, 1.0);
        let scaled: Vec<f32> = values.iter().map(|v| v * 2.0 + 1.0).collect();
        assert_eq!(
            decode(&float32_file(&header, &values)).unwrap().data,
            scaled
        );
        // Through gzip, as .nii.gz files are read.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.nii.gz");
        (header.scl_slope, header.scl_inter) = (1.0, 0.0);
        write(&path, &header, &values).unwrap();
        assert_eq!(read(&path).unwrap().data, values);
    }
}
