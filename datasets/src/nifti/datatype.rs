//! NIfTI voxel datatypes and their decoding into f32.

use super::error::NiftiErrorKind;

/// The voxel datatypes autoseg reads (every integer and real type NIfTI defines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    /// DT_UINT8 (2)
    U8,
    /// DT_INT8 (256)
    I8,
    /// DT_INT16 (4)
    I16,
    /// DT_UINT16 (512)
    U16,
    /// DT_INT32 (8)
    I32,
    /// DT_UINT32 (768)
    U32,
    /// DT_INT64 (1024)
    I64,
    /// DT_UINT64 (1280)
    U64,
    /// DT_FLOAT32 (16)
    F32,
    /// DT_FLOAT64 (64)
    F64,
}

impl DataType {
    /// The type of a NIfTI datatype code; complex, RGB and 128-bit types are refused by name.
    pub fn from_code(code: i16) -> Result<DataType, NiftiErrorKind> {
        Ok(match code {
            2 => DataType::U8,
            256 => DataType::I8,
            4 => DataType::I16,
            512 => DataType::U16,
            8 => DataType::I32,
            768 => DataType::U32,
            1024 => DataType::I64,
            1280 => DataType::U64,
            16 => DataType::F32,
            64 => DataType::F64,
            other => {
                let name = match other {
                    0 => "unknown (0)",
                    1 => "binary (1 bit)",
                    32 => "complex64",
                    128 => "rgb24",
                    1536 => "float128",
                    1792 => "complex128",
                    2048 => "complex256",
                    2304 => "rgba32",
                    _ => "not a NIfTI datatype",
                };
                return Err(NiftiErrorKind::UnsupportedDatatype { code: other, name });
            }
        })
    }

    /// The NIfTI code.
    pub fn code(self) -> i16 {
        match self {
            DataType::U8 => 2,
            DataType::I8 => 256,
            DataType::I16 => 4,
            DataType::U16 => 512,
            DataType::I32 => 8,
            DataType::U32 => 768,
            DataType::I64 => 1024,
            DataType::U64 => 1280,
            DataType::F32 => 16,
            DataType::F64 => 64,
        }
    }

    /// Bytes per voxel.
    pub fn size(self) -> usize {
        match self {
            DataType::U8 | DataType::I8 => 1,
            DataType::I16 | DataType::U16 => 2,
            DataType::I32 | DataType::U32 | DataType::F32 => 4,
            DataType::I64 | DataType::U64 | DataType::F64 => 8,
        }
    }

    /// Bits per voxel.
    pub fn bitpix(self) -> i16 {
        8 * self.size() as i16
    }

    /// Decodes unsigned 8/16-bit or non-negative signed 8/16-bit integers straight into `out`
    /// as class ids; false for other datatypes or any negative value.
    pub(crate) fn decode_class_ids(self, raw: &[u8], big_endian: bool, out: &mut [u16]) -> bool {
        let from = |c: &[u8]| {
            let b = [c[0], c[1]];
            if big_endian {
                u16::from_be_bytes(b)
            } else {
                u16::from_le_bytes(b)
            }
        };
        // The sign bits met, or-ed together (without a branch per voxel).
        let mut signs = 0u16;
        match self {
            DataType::U8 | DataType::I8 => {
                for (o, &v) in out.iter_mut().zip(raw) {
                    *o = v as u16;
                    signs |= (v & 0x80) as u16;
                }
            }
            DataType::U16 | DataType::I16 => {
                for (o, c) in out.iter_mut().zip(raw.chunks_exact(2)) {
                    *o = from(c);
                    signs |= *o & 0x8000;
                }
            }
            _ => return false,
        }
        let signed = matches!(self, DataType::I8 | DataType::I16);
        !signed || signs == 0
    }

    /// Decodes `raw` voxels into `out` as f32, applying `value * slope + inter` in f64 when
    /// scaling is given (as nibabel's `get_fdata` does before any rounding to f32).
    pub(crate) fn decode(
        self,
        raw: &[u8],
        big_endian: bool,
        scaling: Option<(f64, f64)>,
        out: &mut [f32],
    ) {
        macro_rules! decode_as {
            ($t:ty, $n:expr) => {{
                let chunks = raw.chunks_exact($n);
                let read = |c: &[u8]| {
                    let bytes: [u8; $n] = c.try_into().unwrap();
                    if big_endian {
                        <$t>::from_be_bytes(bytes)
                    } else {
                        <$t>::from_le_bytes(bytes)
                    }
                };
                match scaling {
                    None => out
                        .iter_mut()
                        .zip(chunks)
                        .for_each(|(o, c)| *o = read(c) as f32),
                    Some((slope, inter)) => out
                        .iter_mut()
                        .zip(chunks)
                        .for_each(|(o, c)| *o = (read(c) as f64 * slope + inter) as f32),
                }
            }};
        }
        match self {
            DataType::U8 => decode_as!(u8, 1),
            DataType::I8 => decode_as!(i8, 1),
            DataType::I16 => decode_as!(i16, 2),
            DataType::U16 => decode_as!(u16, 2),
            DataType::I32 => decode_as!(i32, 4),
            DataType::U32 => decode_as!(u32, 4),
            DataType::I64 => decode_as!(i64, 8),
            DataType::U64 => decode_as!(u64, 8),
            DataType::F32 => decode_as!(f32, 4),
            DataType::F64 => decode_as!(f64, 8),
        }
    }
}

/// Voxel types a volume can be written as.
pub trait NiftiElement: Copy {
    /// The NIfTI datatype of this element type.
    const DATATYPE: DataType;
    /// Appends the little-endian bytes of `values`.
    fn extend_le(values: &[Self], out: &mut Vec<u8>);
}

macro_rules! element {
    ($t:ty, $dt:expr) => {
        impl NiftiElement for $t {
            const DATATYPE: DataType = $dt;
            fn extend_le(values: &[Self], out: &mut Vec<u8>) {
                out.reserve(values.len() * std::mem::size_of::<$t>());
                for v in values {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
    };
}

element!(u8, DataType::U8);
element!(u16, DataType::U16);
element!(i16, DataType::I16);
element!(f32, DataType::F32);
