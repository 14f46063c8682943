//! The NIfTI-1 (348-byte) and NIfTI-2 (540-byte) headers, parsed into one struct.

use super::datatype::DataType;
use super::error::NiftiErrorKind;
use super::layout::{Fields, parse_v1, parse_v2, write_v1, write_v2};
use crate::affine::Affine;

/// Which of the two NIfTI header layouts a file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NiftiVersion {
    /// 348-byte header, 16-bit dims, 32-bit floats.
    One,
    /// 540-byte header, 64-bit dims and floats.
    Two,
}

/// A NIfTI header with every field widened to the NIfTI-2 types, so one struct serves both.
///
/// Kept with each volume we read, so a volume written back (a prediction, a cropped image)
/// carries the source's codes, units, description and extensions.
#[derive(Debug, Clone, PartialEq)]
pub struct NiftiHeader {
    /// The layout the file used (and the one a writer prefers).
    pub version: NiftiVersion,
    /// `dim[0]` is the number of dimensions, `dim[1..=dim[0]]` their sizes.
    pub dim: [i64; 8],
    /// Raw datatype code (see [`DataType`]).
    pub datatype: i16,
    /// Bits per voxel.
    pub bitpix: i16,
    /// `pixdim[0]` is qfac, `pixdim[1..=3]` the voxel size, `pixdim[4]` the time step.
    pub pixdim: [f64; 8],
    /// Byte offset of the voxel data.
    pub vox_offset: i64,
    /// Data scaling: `value = raw * scl_slope + scl_inter` when the slope is finite and non-zero.
    pub scl_slope: f64,
    /// Data scaling intercept.
    pub scl_inter: f64,
    /// Display range maximum.
    pub cal_max: f64,
    /// Display range minimum.
    pub cal_min: f64,
    /// Intent parameters p1..p3.
    pub intent_p: [f64; 3],
    /// Intent code.
    pub intent_code: i32,
    /// Intent name (16 bytes, NUL-padded).
    pub intent_name: [u8; 16],
    /// Slice timing fields.
    pub slice_duration: f64,
    /// Time axis shift.
    pub toffset: f64,
    /// First slice index.
    pub slice_start: i64,
    /// Last slice index.
    pub slice_end: i64,
    /// Slice timing order code.
    pub slice_code: i32,
    /// Spatial and temporal units.
    pub xyzt_units: i32,
    /// MRI slice ordering (frequency, phase, slice axes).
    pub dim_info: u8,
    /// Description (80 bytes, NUL-padded).
    pub descrip: [u8; 80],
    /// Auxiliary file name (24 bytes, NUL-padded).
    pub aux_file: [u8; 24],
    /// How to read the qform (0: absent).
    pub qform_code: i32,
    /// How to read the sform (0: absent).
    pub sform_code: i32,
    /// quatern_b, quatern_c, quatern_d.
    pub quatern: [f64; 3],
    /// qoffset_x, qoffset_y, qoffset_z.
    pub qoffset: [f64; 3],
    /// srow_x, srow_y, srow_z.
    pub srow: [[f64; 4]; 3],
    /// Raw header extensions (each a size, a code and data), kept to be written back.
    pub extensions: Vec<u8>,
    /// The byte order of the file it came from; autoseg always writes little-endian.
    pub big_endian: bool,
}

pub(crate) const NIFTI1_SIZE: usize = 348;
pub(crate) const NIFTI2_SIZE: usize = 540;

impl NiftiHeader {
    /// A fresh header for `dims` voxels with `datatype` and `affine` (sform and qform both set,
    /// code 1 "scanner"), millimetre units.
    pub fn new(dims: &[usize], datatype: DataType, affine: &Affine) -> NiftiHeader {
        let mut header = NiftiHeader {
            version: NiftiVersion::One,
            dim: [1; 8],
            datatype: datatype.code(),
            bitpix: datatype.bitpix(),
            pixdim: [1.0; 8],
            vox_offset: 0,
            scl_slope: 1.0,
            scl_inter: 0.0,
            cal_max: 0.0,
            cal_min: 0.0,
            intent_p: [0.0; 3],
            intent_code: 0,
            intent_name: [0; 16],
            slice_duration: 0.0,
            toffset: 0.0,
            slice_start: 0,
            slice_end: 0,
            slice_code: 0,
            xyzt_units: 2 | 8, // millimetres, seconds
            dim_info: 0,
            descrip: [0; 80],
            aux_file: [0; 24],
            qform_code: 1,
            sform_code: 1,
            quatern: [0.0; 3],
            qoffset: [0.0; 3],
            srow: [[0.0; 4]; 3],
            extensions: Vec::new(),
            big_endian: false,
        };
        let text = concat!("autoseg ", env!("CARGO_PKG_VERSION"));
        header.descrip[..text.len()].copy_from_slice(text.as_bytes());
        header.set_dims(dims);
        header.set_affine(affine);
        header
    }

    /// Sets `dim` from the sizes of each dimension.
    pub fn set_dims(&mut self, dims: &[usize]) {
        assert!(
            (1..=7).contains(&dims.len()),
            "NIfTI holds 1 to 7 dimensions"
        );
        self.dim = [1; 8];
        self.dim[0] = dims.len() as i64;
        for (i, &d) in dims.iter().enumerate() {
            self.dim[i + 1] = d as i64;
        }
    }

    /// Writes `affine` into both the sform (exactly) and the qform (nearest rigid transform),
    /// and the voxel sizes into pixdim. Codes are kept if set, else become 1 (scanner).
    pub fn set_affine(&mut self, affine: &Affine) {
        for (row, srow) in self.srow.iter_mut().enumerate() {
            *srow = affine.0[row];
        }
        let q = affine.to_quaternion();
        self.quatern = q.bcd;
        self.qoffset = q.offset;
        self.pixdim[0] = q.qfac;
        self.pixdim[1..4].copy_from_slice(&q.pixdim);
        if self.sform_code <= 0 {
            self.sform_code = 1;
        }
        if self.qform_code <= 0 {
            self.qform_code = 1;
        }
    }

    /// The sizes of the `dim[0]` dimensions.
    pub fn dims(&self) -> Vec<usize> {
        let n = self.dim[0].clamp(0, 7) as usize;
        self.dim[1..=n].iter().map(|&d| d.max(0) as usize).collect()
    }

    /// The number of voxels the header describes.
    pub fn voxel_count(&self) -> usize {
        self.dims().iter().product()
    }

    /// The voxel-to-world affine, chosen as nibabel's `get_best_affine` does: the sform when
    /// `sform_code > 0`, else the qform when `qform_code > 0`, else the Analyze-style affine
    /// from pixdim (x flipped, centred on the volume).
    pub fn affine(&self) -> Affine {
        if self.sform_code > 0 {
            Affine::from_rows(self.srow)
        } else if self.qform_code > 0 {
            self.qform_affine()
        } else {
            self.base_affine()
        }
    }

    /// The affine the qform fields describe.
    ///
    ///
    /// `a = sqrt(1 - b² - c² - d²)` is snapped to 0 when `|1 - b² - c² - d²|` is under three
    /// epsilons of the header's float type, as nibabel's `fillpositive` does: a rotation by 180°
    /// has a = 0, but float32 storage of b, c, d leaves about 1e-7, which would become a
    /// spurious a of about 3e-4 and tilt the axes by as much.
    pub fn qform_affine(&self) -> Affine {
        let pixdim = [self.pixdim[1], self.pixdim[2], self.pixdim[3]];
        let [b, c, d] = self.quatern;
        let epsilon = match self.version {
            NiftiVersion::One => f32::EPSILON as f64,
            NiftiVersion::Two => f64::EPSILON,
        };
        let w2 = 1.0 - (b * b + c * c + d * d);
        let a = if w2.abs() < 3.0 * epsilon {
            0.0
        } else {
            w2.max(0.0).sqrt()
        };
        Affine::from_full_quaternion([a, b, c, d], self.qoffset, pixdim, self.pixdim[0])
    }

    fn base_affine(&self) -> Affine {
        let dims = self.dims();
        let mut affine = Affine::IDENTITY;
        for axis in 0..3 {
            let size = dims.get(axis).copied().unwrap_or(1) as f64;
            let mut zoom = if axis < dims.len() {
                self.pixdim[axis + 1]
            } else {
                1.0
            };
            if axis == 0 {
                zoom = -zoom;
            }
            affine.0[axis][axis] = zoom;
            affine.0[axis][3] = -(size - 1.0) / 2.0 * zoom;
        }
        affine
    }

    /// The datatype, if it is one we read.
    pub fn data_type(&self) -> Result<DataType, NiftiErrorKind> {
        DataType::from_code(self.datatype)
    }

    /// Whether the scaling fields change values (nibabel's rule: a finite, non-zero slope,
    /// other than slope 1 with intercept 0).
    pub fn scaling(&self) -> Option<(f64, f64)> {
        let slope = self.scl_slope;
        if !slope.is_finite() || slope == 0.0 {
            return None;
        }
        let inter = if self.scl_inter.is_finite() {
            self.scl_inter
        } else {
            0.0
        };
        if slope == 1.0 && inter == 0.0 {
            None
        } else {
            Some((slope, inter))
        }
    }

    /// Parses a header from the start of a file's (decompressed) bytes.
    pub fn parse(bytes: &[u8]) -> Result<NiftiHeader, NiftiErrorKind> {
        if bytes.len() < 4 {
            return Err(NiftiErrorKind::TooShort { len: bytes.len() });
        }
        let le = i32::from_le_bytes(bytes[0..4].try_into().unwrap());
        let be = i32::from_be_bytes(bytes[0..4].try_into().unwrap());
        let (size, big_endian) = match (le, be) {
            (348, _) => (NIFTI1_SIZE, false),
            (_, 348) => (NIFTI1_SIZE, true),
            (540, _) => (NIFTI2_SIZE, false),
            (_, 540) => (NIFTI2_SIZE, true),
            _ => return Err(NiftiErrorKind::NotNifti { sizeof_hdr: le }),
        };
        if bytes.len() < size {
            return Err(NiftiErrorKind::TooShort { len: bytes.len() });
        }
        let f = Fields { bytes, big_endian };
        let mut header = if size == NIFTI1_SIZE {
            parse_v1(&f)?
        } else {
            parse_v2(&f)?
        };
        header.read_extensions(bytes, size, big_endian);
        header.validate()?;
        Ok(header)
    }

    fn read_extensions(&mut self, bytes: &[u8], size: usize, big_endian: bool) {
        let start = size + 4;
        let end = usize::try_from(self.vox_offset).unwrap_or(0);
        let flagged = bytes.get(size).is_some_and(|&flag| flag != 0);
        if flagged && end > start && end <= bytes.len() {
            // Only little-endian extensions are copied: their size fields would need swapping.
            if !big_endian {
                self.extensions = bytes[start..end].to_vec();
            }
        }
    }

    fn validate(&self) -> Result<(), NiftiErrorKind> {
        let ndim = self.dim[0];
        if !(1..=7).contains(&ndim) {
            return Err(NiftiErrorKind::InvalidHeader(format!(
                "dim[0] is {ndim}, must be 1 to 7"
            )));
        }
        if let Some(bad) = self.dims().iter().position(|&d| d == 0) {
            let value = self.dim[bad + 1];
            return Err(NiftiErrorKind::InvalidHeader(format!(
                "dim[{}] is {value}, must be positive",
                bad + 1
            )));
        }
        // nibabel's rule for single files: the voxels start after the header and the
        // four-byte extension flag (352 or 544), never inside them.
        let first = self.header_size() as i64 + 4;
        if self.vox_offset < first {
            return Err(NiftiErrorKind::InvalidHeader(format!(
                "vox_offset is {}, inside the header: a single-file NIfTI's voxels start at byte {first} or later",
                self.vox_offset
            )));
        }
        // Many writers leave bitpix wrong, so the datatype alone decides, as in nibabel.
        self.data_type()?;
        self.file_size()?;
        Ok(())
    }

    fn header_size(&self) -> usize {
        match self.version {
            NiftiVersion::One => NIFTI1_SIZE,
            NiftiVersion::Two => NIFTI2_SIZE,
        }
    }

    /// The bytes a single file under this header holds: vox_offset, then every voxel. Checked:
    /// dims whose product overflows (NIfTI-2 allows 2^63 per axis) are an error, not a wrap.
    pub fn file_size(&self) -> Result<u64, NiftiErrorKind> {
        let overflow = || {
            NiftiErrorKind::InvalidHeader(format!(
                "dims {:?} and datatype {} need more bytes than a file can hold",
                self.dims(),
                self.datatype
            ))
        };
        let voxels = self
            .dims()
            .iter()
            .try_fold(1u64, |n, &d| n.checked_mul(d as u64))
            .ok_or_else(overflow)?;
        let size = self.data_type()?.size() as u64;
        voxels
            .checked_mul(size)
            .and_then(|b| b.checked_add(self.vox_offset as u64))
            .filter(|&b| b <= isize::MAX as u64)
            .ok_or_else(overflow)
    }

    /// The layout to write: NIfTI-1 unless a dimension does not fit in 16 bits.
    pub(crate) fn output_version(&self) -> NiftiVersion {
        if self.dim.iter().all(|&d| d <= i16::MAX as i64) {
            NiftiVersion::One
        } else {
            NiftiVersion::Two
        }
    }

    /// Serialises the header, the extension flag and extensions as a single-file (`n+1`/`n+2`)
    /// little-endian header, and sets `vox_offset` to where the data will start.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut header = self.clone();
        header.version = self.output_version();
        header.big_endian = false;
        let size = match header.version {
            NiftiVersion::One => NIFTI1_SIZE,
            NiftiVersion::Two => NIFTI2_SIZE,
        };
        let extensions_ok =
            !header.extensions.is_empty() && header.extensions.len().is_multiple_of(16);
        let ext_len = if extensions_ok {
            header.extensions.len()
        } else {
            0
        };
        // Data starts on a 16-byte boundary after the header and the 4-byte extension flag.
        header.vox_offset = (size + 4 + ext_len).next_multiple_of(16) as i64;
        let mut out = vec![0u8; header.vox_offset as usize];
        match header.version {
            NiftiVersion::One => write_v1(&header, &mut out),
            NiftiVersion::Two => write_v2(&header, &mut out),
        }
        if ext_len > 0 {
            out[size] = 1;
            out[size + 4..size + 4 + ext_len].copy_from_slice(&header.extensions);
        }
        out
    }
}
