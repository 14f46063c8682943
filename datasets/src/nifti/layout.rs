//! Where each header field sits in the 348-byte NIfTI-1 and 540-byte NIfTI-2 layouts:
//! reading either into a [`NiftiHeader`] and writing one back.

use super::error::NiftiErrorKind;
use super::header::{NIFTI1_SIZE, NIFTI2_SIZE, NiftiHeader, NiftiVersion};

const NIFTI1_MAGIC: &[u8; 4] = b"n+1\0";
const NIFTI1_PAIR_MAGIC: &[u8; 4] = b"ni1\0";
const NIFTI2_MAGIC: &[u8; 8] = b"n+2\0\r\n\x1a\n";
const NIFTI2_PAIR_MAGIC: &[u8; 8] = b"ni2\0\r\n\x1a\n";

/// Reads fixed-offset fields in either byte order.
pub(super) struct Fields<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) big_endian: bool,
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

pub(super) fn parse_v1(f: &Fields) -> Result<NiftiHeader, NiftiErrorKind> {
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
        vox_offset: v1_offset(f.f32(108))?,
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

/// NIfTI-1 stores vox_offset as a float: only a whole, finite, non-negative one is an offset
/// (a NaN would otherwise read as byte 0).
fn v1_offset(raw: f32) -> Result<i64, NiftiErrorKind> {
    if raw.is_finite() && raw >= 0.0 && raw.fract() == 0.0 {
        Ok(raw as i64)
    } else {
        Err(NiftiErrorKind::InvalidHeader(format!(
            "vox_offset is {raw}, not a byte offset"
        )))
    }
}

pub(super) fn parse_v2(f: &Fields) -> Result<NiftiHeader, NiftiErrorKind> {
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

pub(super) fn write_v1(h: &NiftiHeader, out: &mut [u8]) {
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

pub(super) fn write_v2(h: &NiftiHeader, out: &mut [u8]) {
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
