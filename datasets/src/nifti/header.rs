//! The NIfTI-1 (348-byte) and NIfTI-2 (540-byte) headers, parsed into one struct.

use super::datatype::DataType;
use super::error::NiftiErrorKind;
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
const NIFTI1_MAGIC: &[u8; 4] = b"n+1\0";
const NIFTI1_PAIR_MAGIC: &[u8; 4] = b"ni1\0";
const NIFTI2_MAGIC: &[u8; 8] = b"n+2\0\r\n\x1a\n";
const NIFTI2_PAIR_MAGIC: &[u8; 8] = b"ni2\0\r\n\x1a\n";

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
        if self.vox_offset < 0 {
            return Err(NiftiErrorKind::InvalidHeader(format!(
                "vox_offset is {}",
                self.vox_offset
            )));
        }
        // Many writers leave bitpix wrong, so the datatype alone decides, as in nibabel.
        self.data_type()?;
        Ok(())
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

/// Reads fixed-offset fields in either byte order.
struct Fields<'a> {
    bytes: &'a [u8],
    big_endian: bool,
}

macro_rules! field_reader {
    ($name:ident, $t:ty, $n:expr) => {
        fn $name(&self, offset: usize) -> $t {
            let raw: [u8; $n] = self.bytes[offset..offset + $n].try_into().unwrap();
            if self.big_endian {
                <$t>::from_be_bytes(raw)
            } else {
                <$t>::from_le_bytes(raw)
            }
        }
    };
}

impl Fields<'_> {
    field_reader!(i16, i16, 2);
    field_reader!(i32, i32, 4);
    field_reader!(i64, i64, 8);
    field_reader!(f32, f32, 4);
    field_reader!(f64, f64, 8);

    fn bytes<const N: usize>(&self, offset: usize) -> [u8; N] {
        self.bytes[offset..offset + N].try_into().unwrap()
    }
}

fn parse_v1(f: &Fields) -> Result<NiftiHeader, NiftiErrorKind> {
    let magic = f.bytes::<4>(344);
    if &magic == NIFTI1_PAIR_MAGIC {
        return Err(NiftiErrorKind::PairFile);
    }
    if &magic != NIFTI1_MAGIC {
        return Err(NiftiErrorKind::BadMagic {
            magic: magic.to_vec(),
        });
    }
    let mut dim = [0i64; 8];
    for (i, d) in dim.iter_mut().enumerate() {
        *d = f.i16(40 + 2 * i) as i64;
    }
    let mut pixdim = [0.0; 8];
    for (i, p) in pixdim.iter_mut().enumerate() {
        *p = f.f32(76 + 4 * i) as f64;
    }
    let mut srow = [[0.0; 4]; 3];
    for (r, row) in srow.iter_mut().enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            *v = f.f32(280 + 16 * r + 4 * c) as f64;
        }
    }
    Ok(NiftiHeader {
        version: NiftiVersion::One,
        dim,
        datatype: f.i16(70),
        bitpix: f.i16(72),
        pixdim,
        vox_offset: f.f32(108) as i64,
        scl_slope: f.f32(112) as f64,
        scl_inter: f.f32(116) as f64,
        cal_max: f.f32(124) as f64,
        cal_min: f.f32(128) as f64,
        intent_p: [f.f32(56) as f64, f.f32(60) as f64, f.f32(64) as f64],
        intent_code: f.i16(68) as i32,
        intent_name: f.bytes(328),
        slice_duration: f.f32(132) as f64,
        toffset: f.f32(136) as f64,
        slice_start: f.i16(74) as i64,
        slice_end: f.i16(120) as i64,
        slice_code: f.bytes::<1>(122)[0] as i32,
        xyzt_units: f.bytes::<1>(123)[0] as i32,
        dim_info: f.bytes::<1>(39)[0],
        descrip: f.bytes(148),
        aux_file: f.bytes(228),
        qform_code: f.i16(252) as i32,
        sform_code: f.i16(254) as i32,
        quatern: [f.f32(256) as f64, f.f32(260) as f64, f.f32(264) as f64],
        qoffset: [f.f32(268) as f64, f.f32(272) as f64, f.f32(276) as f64],
        srow,
        extensions: Vec::new(),
        big_endian: f.big_endian,
    })
}

fn parse_v2(f: &Fields) -> Result<NiftiHeader, NiftiErrorKind> {
    let magic = f.bytes::<8>(4);
    if &magic == NIFTI2_PAIR_MAGIC {
        return Err(NiftiErrorKind::PairFile);
    }
    if &magic != NIFTI2_MAGIC {
        return Err(NiftiErrorKind::BadMagic {
            magic: magic.to_vec(),
        });
    }
    let mut dim = [0i64; 8];
    for (i, d) in dim.iter_mut().enumerate() {
        *d = f.i64(16 + 8 * i);
    }
    let mut pixdim = [0.0; 8];
    for (i, p) in pixdim.iter_mut().enumerate() {
        *p = f.f64(104 + 8 * i);
    }
    let mut srow = [[0.0; 4]; 3];
    for (r, row) in srow.iter_mut().enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            *v = f.f64(400 + 32 * r + 8 * c);
        }
    }
    Ok(NiftiHeader {
        version: NiftiVersion::Two,
        dim,
        datatype: f.i16(12),
        bitpix: f.i16(14),
        pixdim,
        vox_offset: f.i64(168),
        scl_slope: f.f64(176),
        scl_inter: f.f64(184),
        cal_max: f.f64(192),
        cal_min: f.f64(200),
        intent_p: [f.f64(80), f.f64(88), f.f64(96)],
        intent_code: f.i32(504),
        intent_name: f.bytes(508),
        slice_duration: f.f64(208),
        toffset: f.f64(216),
        slice_start: f.i64(224),
        slice_end: f.i64(232),
        slice_code: f.i32(496),
        xyzt_units: f.i32(500),
        dim_info: f.bytes::<1>(524)[0],
        descrip: f.bytes(240),
        aux_file: f.bytes(320),
        qform_code: f.i32(344),
        sform_code: f.i32(348),
        quatern: [f.f64(352), f.f64(360), f.f64(368)],
        qoffset: [f.f64(376), f.f64(384), f.f64(392)],
        srow,
        extensions: Vec::new(),
        big_endian: f.big_endian,
    })
}

/// Writes little-endian fields at fixed offsets.
struct Out<'a>(&'a mut [u8]);

impl Out<'_> {
    fn put(&mut self, offset: usize, bytes: &[u8]) {
        self.0[offset..offset + bytes.len()].copy_from_slice(bytes);
    }
}

fn write_v1(h: &NiftiHeader, out: &mut [u8]) {
    let mut o = Out(out);
    let f = |v: f64| (v as f32).to_le_bytes();
    let s = |v: i64| (v.clamp(i16::MIN as i64, i16::MAX as i64) as i16).to_le_bytes();
    o.put(0, &(NIFTI1_SIZE as i32).to_le_bytes());
    o.put(38, b"r");
    o.put(39, &[h.dim_info]);
    for (i, &d) in h.dim.iter().enumerate() {
        o.put(40 + 2 * i, &s(d));
    }
    for (i, &p) in h.intent_p.iter().enumerate() {
        o.put(56 + 4 * i, &f(p));
    }
    o.put(68, &s(h.intent_code as i64));
    o.put(70, &h.datatype.to_le_bytes());
    o.put(72, &h.bitpix.to_le_bytes());
    o.put(74, &s(h.slice_start));
    for (i, &p) in h.pixdim.iter().enumerate() {
        o.put(76 + 4 * i, &f(p));
    }
    o.put(108, &f(h.vox_offset as f64));
    o.put(112, &f(h.scl_slope));
    o.put(116, &f(h.scl_inter));
    o.put(120, &s(h.slice_end));
    o.put(122, &[h.slice_code as u8]);
    o.put(123, &[h.xyzt_units as u8]);
    o.put(124, &f(h.cal_max));
    o.put(128, &f(h.cal_min));
    o.put(132, &f(h.slice_duration));
    o.put(136, &f(h.toffset));
    o.put(148, &h.descrip);
    o.put(228, &h.aux_file);
    o.put(252, &s(h.qform_code as i64));
    o.put(254, &s(h.sform_code as i64));
    for i in 0..3 {
        o.put(256 + 4 * i, &f(h.quatern[i]));
        o.put(268 + 4 * i, &f(h.qoffset[i]));
    }
    for (r, row) in h.srow.iter().enumerate() {
        for (c, &v) in row.iter().enumerate() {
            o.put(280 + 16 * r + 4 * c, &f(v));
        }
    }
    o.put(328, &h.intent_name);
    o.put(344, NIFTI1_MAGIC);
}

fn write_v2(h: &NiftiHeader, out: &mut [u8]) {
    let mut o = Out(out);
    o.put(0, &(NIFTI2_SIZE as i32).to_le_bytes());
    o.put(4, NIFTI2_MAGIC);
    o.put(12, &h.datatype.to_le_bytes());
    o.put(14, &h.bitpix.to_le_bytes());
    for (i, &d) in h.dim.iter().enumerate() {
        o.put(16 + 8 * i, &d.to_le_bytes());
    }
    for (i, &p) in h.intent_p.iter().enumerate() {
        o.put(80 + 8 * i, &p.to_le_bytes());
    }
    for (i, &p) in h.pixdim.iter().enumerate() {
        o.put(104 + 8 * i, &p.to_le_bytes());
    }
    o.put(168, &h.vox_offset.to_le_bytes());
    o.put(176, &h.scl_slope.to_le_bytes());
    o.put(184, &h.scl_inter.to_le_bytes());
    o.put(192, &h.cal_max.to_le_bytes());
    o.put(200, &h.cal_min.to_le_bytes());
    o.put(208, &h.slice_duration.to_le_bytes());
    o.put(216, &h.toffset.to_le_bytes());
    o.put(224, &h.slice_start.to_le_bytes());
    o.put(232, &h.slice_end.to_le_bytes());
    o.put(240, &h.descrip);
    o.put(320, &h.aux_file);
    o.put(344, &h.qform_code.to_le_bytes());
    o.put(348, &h.sform_code.to_le_bytes());
    for i in 0..3 {
        o.put(352 + 8 * i, &h.quatern[i].to_le_bytes());
        o.put(376 + 8 * i, &h.qoffset[i].to_le_bytes());
    }
    for (r, row) in h.srow.iter().enumerate() {
        for (c, &v) in row.iter().enumerate() {
            o.put(400 + 32 * r + 8 * c, &v.to_le_bytes());
        }
    }
    o.put(496, &h.slice_code.to_le_bytes());
    o.put(500, &h.xyzt_units.to_le_bytes());
    o.put(504, &h.intent_code.to_le_bytes());
    o.put(508, &h.intent_name);
    o.put(524, &[h.dim_info]);
}
