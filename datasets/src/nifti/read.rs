//! Reading a NIfTI file from disk, untrusted: the header is parsed from the first bytes, and
//! nothing larger than what it declares (and the file can hold) is ever read or allocated.
//!
//! A `.nii.gz` is inflated to exactly the header's size (vox_offset plus the voxels): a gzip
//! bomb behind a small header stops at that size, and a header declaring more than a deflate
//! stream of the file's length can hold is refused before anything is allocated.

use std::io::Read;
use std::path::Path;

use super::error::NiftiErrorKind;
use super::header::{self, NiftiHeader};
use super::{NiftiError, NiftiFile, RawNifti};

/// Deflate's largest compression ratio (a 258-byte match in about two bits): a stream of `n`
/// bytes never inflates past `n * 1032` bytes.
const DEFLATE_MAX_RATIO: u64 = 1032;

/// Reads a `.nii` or `.nii.gz` file (gzip is recognised by its magic bytes, not the name).
pub fn read(path: &Path) -> Result<NiftiFile, NiftiError> {
    read_raw(path)?.into_f32().map_err(|k| k.at(path))
}

/// Reads a file's header and voxel bytes (decompressing `.nii.gz`), checking that the voxels
/// the header promises are there and that no more follow in a gzip stream.
pub fn read_raw(path: &Path) -> Result<RawNifti, NiftiError> {
    let file = open_regular(path)?;
    let file_len = file.metadata().map_err(|e| io_error(e, path))?.len();
    raw_from(file, file_len).map_err(|k| k.at(path))
}

/// Decodes a NIfTI file's bytes (plain or gzip) as [`read`] does a file.
pub fn decode(bytes: &[u8]) -> Result<NiftiFile, NiftiErrorKind> {
    raw_from(bytes, bytes.len() as u64)?.into_f32()
}

/// A file's header and voxel bytes from a reader of `len` bytes (plain or gzip, sniffed).
pub fn raw_from(mut reader: impl Read, len: u64) -> Result<RawNifti, NiftiErrorKind> {
    let mut magic = [0u8; 2];
    let got = read_up_to(&mut reader, &mut magic).map_err(NiftiErrorKind::Io)?;
    let prefix = std::io::Cursor::new(magic[..got].to_vec()).chain(reader);
    let bytes = if magic == [0x1f, 0x8b] {
        read_gzip(prefix, len)?
    } else {
        read_plain(prefix, len)?
    };
    split(bytes)
}

/// Reads only the header (still decompressing what precedes it).
pub fn read_header(path: &Path) -> Result<NiftiHeader, NiftiError> {
    let file = open_regular(path)?;
    header_from(std::io::BufReader::new(file)).map_err(|k| k.at(path))
}

/// Opens `path` for reading if it is a regular file: a FIFO or a device would block or never
/// end.
fn open_regular(path: &Path) -> Result<std::fs::File, NiftiError> {
    let meta = std::fs::metadata(path).map_err(|e| io_error(e, path))?;
    if !meta.is_file() {
        return Err(NiftiErrorKind::NotAFile.at(path));
    }
    std::fs::File::open(path).map_err(|e| io_error(e, path))
}

fn io_error(e: std::io::Error, path: &Path) -> NiftiError {
    match e.kind() {
        std::io::ErrorKind::NotFound => NiftiErrorKind::NotFound.at(path),
        _ => NiftiErrorKind::Io(e).at(path),
    }
}

/// The header at the start of a (plain or gzip) stream, parsed from its first bytes.
pub fn header_from(reader: impl Read) -> Result<NiftiHeader, NiftiErrorKind> {
    let mut reader = reader;
    let mut magic = [0u8; 2];
    let got = read_up_to(&mut reader, &mut magic).map_err(NiftiErrorKind::Io)?;
    let chain = std::io::Cursor::new(magic[..got].to_vec()).chain(reader);
    let limit = (header::NIFTI2_SIZE + 4) as u64;
    let mut start = Vec::with_capacity(limit as usize);
    let result = if magic == [0x1f, 0x8b] {
        flate2::read::MultiGzDecoder::new(chain)
            .take(limit)
            .read_to_end(&mut start)
            .map_err(NiftiErrorKind::Gzip)
    } else {
        chain
            .take(limit)
            .read_to_end(&mut start)
            .map_err(NiftiErrorKind::Io)
    };
    result?;
    NiftiHeader::parse(&start)
}

/// An uncompressed file: the header's size is checked against the file's before reading.
fn read_plain(mut reader: impl Read, file_len: u64) -> Result<FileWords, NiftiErrorKind> {
    let mut start = vec![0u8; (header::NIFTI2_SIZE + 4).min(file_len as usize)];
    reader.read_exact(&mut start).map_err(NiftiErrorKind::Io)?;
    let header = NiftiHeader::parse(&start)?;
    let needed = header.file_size()?;
    if needed > file_len {
        return Err(truncated(&header, file_len));
    }
    let mut out = FileWords::zeroed(needed as usize)?;
    out.bytes_mut()[..start.len().min(needed as usize)]
        .copy_from_slice(&start[..start.len().min(needed as usize)]);
    if (start.len() as u64) < needed {
        reader
            .read_exact(&mut out.bytes_mut()[start.len()..])
            .map_err(NiftiErrorKind::Io)?;
    }
    Ok(out)
}

/// A gzip file, inflated to exactly the size its header declares.
fn read_gzip(reader: impl Read, file_len: u64) -> Result<FileWords, NiftiErrorKind> {
    let mut raw = Vec::new();
    let mut reader = reader;
    reader.read_to_end(&mut raw).map_err(NiftiErrorKind::Io)?;
    let header = header_from(raw.as_slice())?;
    let needed = header.file_size()?;
    if needed > file_len.saturating_mul(DEFLATE_MAX_RATIO) {
        return Err(NiftiErrorKind::GzipTooSmall {
            declared: needed,
            compressed: file_len,
        });
    }
    let mut out = FileWords::zeroed(needed as usize)?;
    // One member whose trailer gives the declared size (what NIfTI writers produce): libdeflate
    // in one call. Anything else (several members, a wrong trailer, a stream too long or
    // short) goes through flate2, which stops at the declared size and gives the precise error.
    let trailer = raw
        .len()
        .checked_sub(4)
        .map(|at| u32::from_le_bytes(raw[at..].try_into().unwrap()));
    if trailer == Some(needed as u32)
        && libdeflater::Decompressor::new()
            .gzip_decompress(&raw, out.bytes_mut())
            .is_ok_and(|n| n as u64 == needed)
    {
        return Ok(out);
    }
    let mut decoder = flate2::read::MultiGzDecoder::new(raw.as_slice());
    let filled = read_up_to(&mut decoder, out.bytes_mut()).map_err(NiftiErrorKind::Gzip)?;
    if (filled as u64) < needed {
        return Err(truncated(&header, filled as u64));
    }
    let mut more = [0u8; 1];
    if read_up_to(&mut decoder, &mut more).map_err(NiftiErrorKind::Gzip)? > 0 {
        return Err(NiftiErrorKind::GzipOverlong { declared: needed });
    }
    Ok(out)
}

fn truncated(header: &NiftiHeader, have: u64) -> NiftiErrorKind {
    let offset = header.vox_offset as usize;
    let needed = (header.file_size().unwrap_or(u64::MAX) as usize).saturating_sub(offset);
    NiftiErrorKind::TruncatedData {
        needed,
        offset,
        available: (have as usize).saturating_sub(offset),
    }
}

/// Reads until `buf` is full or the stream ends; returns how many bytes it read.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Parses the header of a file's bytes (exactly as long as the header declares: the readers
/// above see to that) and locates its voxels.
fn split(file: FileWords) -> Result<RawNifti, NiftiErrorKind> {
    let header = NiftiHeader::parse(file.bytes())?;
    let offset = header.vox_offset as usize;
    Ok(RawNifti {
        header,
        words: file.words,
        voxels: offset..file.len,
    })
}

/// A file's bytes in f32-sized words, and how many bytes it has.
struct FileWords {
    words: Vec<f32>,
    len: usize,
}

impl FileWords {
    /// Zeroed words for `len` bytes, in huge pages where the kernel gives them (a volume's
    /// buffer is tens of megabytes: 512 times fewer page faults). An allocation the system
    /// refuses is an error, not an abort.
    fn zeroed(len: usize) -> Result<FileWords, NiftiErrorKind> {
        let words = crate::memory::try_zeroed::<f32>(len.div_ceil(4))
            .ok_or(NiftiErrorKind::OutOfMemory { bytes: len })?;
        crate::memory::advise_huge_pages(&words);
        Ok(FileWords { words, len })
    }

    fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.words)[..self.len]
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut(&mut self.words)[..self.len]
    }
}
