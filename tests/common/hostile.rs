//! The regression corpus of hostile and broken files (issue 22): each one a file a crafted or
//! damaged dataset could hold, built here from a healthy phantom image, with the words of the
//! named error autoseg must give for it. The fuzz targets' seeds are written from it too.

use std::io::Write;
use std::path::Path;

/// One hostile file: its name, its bytes, and words the error must contain.
pub struct Hostile {
    /// What it is, for messages.
    pub name: &'static str,
    /// The file name to write it under (the extension decides nothing: gzip is sniffed).
    pub file: &'static str,
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// Words the error names it by.
    pub expect: &'static str,
    /// Whether reading it fails (check and analyze name it); the others read, and fail
    /// where they are prepared for a network (predict names them).
    pub read_fault: bool,
}

/// Offsets of NIfTI-1 header fields used below.
const DIM: usize = 40;
const PIXDIM: usize = 76;
const VOX_OFFSET: usize = 108;
const SROW: usize = 280;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn put_f32(bytes: &mut [u8], at: usize, value: f32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

/// A NIfTI-2 float32 file with `dims`, 1 mm voxels and `payload` bytes of voxels.
fn nifti2(dims: &[i64], payload: usize) -> Vec<u8> {
    let mut h = vec![0u8; 544];
    h[0..4].copy_from_slice(&540i32.to_le_bytes());
    h[4..12].copy_from_slice(b"n+2\0\r\n\x1a\n");
    h[12..14].copy_from_slice(&16i16.to_le_bytes()); // float32
    h[14..16].copy_from_slice(&32i16.to_le_bytes());
    h[16..24].copy_from_slice(&(dims.len() as i64).to_le_bytes());
    for i in 0..7 {
        let d = dims.get(i).copied().unwrap_or(1);
        h[24 + 8 * i..32 + 8 * i].copy_from_slice(&d.to_le_bytes());
    }
    for i in 0..8 {
        h[104 + 8 * i..112 + 8 * i].copy_from_slice(&1f64.to_le_bytes());
    }
    h[168..176].copy_from_slice(&544i64.to_le_bytes());
    h[176..184].copy_from_slice(&1f64.to_le_bytes());
    h.resize(544 + payload, 0);
    h
}

/// The corpus, built from `healthy`: an uncompressed float32 NIfTI-1 image (`.nii` bytes).
pub fn corpus(healthy: &[u8]) -> Vec<Hostile> {
    let edit = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = healthy.to_vec();
        f(&mut b);
        b
    };
    // 8^3 float32 voxels declared, then 600 MB of zeros in 600 further gzip members (each a
    // kilobyte): what a reader that inflates to the end holds at once.
    let mut bomb = gzip(&edit(&|b| {
        for (i, d) in [3i16, 8, 8, 8].iter().enumerate() {
            b[DIM + 2 * i..DIM + 2 * i + 2].copy_from_slice(&d.to_le_bytes());
        }
        b.truncate(352 + 8 * 8 * 8 * 4);
    }));
    let megabyte = gzip(&vec![0u8; 1 << 20]);
    for _ in 0..600 {
        bomb.extend_from_slice(&megabyte);
    }
    // A tiny gzip whose trailer claims 4 GiB.
    let mut forged = gzip(&healthy[..400.min(healthy.len())]);
    let at = forged.len() - 4;
    forged[at..].copy_from_slice(&u32::MAX.to_le_bytes());
    // A header declaring 2000^3 float32 voxels (32 GB) in a file of a few hundred bytes.
    let huge = gzip(&edit(&|b| {
        for (i, d) in [3i16, 2000, 2000, 2000].iter().enumerate() {
            b[DIM + 2 * i..DIM + 2 * i + 2].copy_from_slice(&d.to_le_bytes());
        }
        b.truncate(352);
    }));
    vec![
        Hostile {
            name: "gzip padding bomb",
            file: "bomb.nii.gz",
            bytes: bomb,
            expect: "inflates past the 2400 bytes the header declares",
            read_fault: true,
        },
        Hostile {
            name: "forged gzip size",
            file: "forged.nii.gz",
            bytes: forged,
            expect: "truncated",
            read_fault: true,
        },
        Hostile {
            name: "header larger than its gzip can hold",
            file: "huge.nii.gz",
            bytes: huge,
            expect: "gzip file can hold",
            read_fault: true,
        },
        Hostile {
            name: "NIfTI-2 dims whose product wraps",
            file: "wrap.nii",
            bytes: nifti2(&[(1i64 << 62) + 2, 4, 1], 32),
            expect: "more bytes than a file can hold",
            read_fault: true,
        },
        Hostile {
            name: "vox_offset 0",
            file: "offset0.nii",
            bytes: edit(&|b| put_f32(b, VOX_OFFSET, 0.0)),
            expect: "vox_offset is 0, inside the header",
            read_fault: true,
        },
        Hostile {
            name: "vox_offset NaN",
            file: "offsetnan.nii",
            bytes: edit(&|b| put_f32(b, VOX_OFFSET, f32::NAN)),
            expect: "vox_offset is NaN",
            read_fault: true,
        },
        Hostile {
            name: "pixdim 1e4",
            file: "pixdim.nii",
            bytes: edit(&|b| {
                b[252..256].fill(0); // no qform or sform: pixdim decides the spacing
                for axis in 1..4 {
                    put_f32(b, PIXDIM + 4 * axis, 1e4);
                }
            }),
            expect: "allowed",
            read_fault: false,
        },
        Hostile {
            name: "sform of 1e38",
            file: "sform.nii",
            bytes: edit(&|b| {
                for row in 0..3 {
                    put_f32(b, SROW + 16 * row + 4 * row, 1e38);
                }
            }),
            expect: "allowed",
            read_fault: false,
        },
    ]
}

/// Writes every file of the corpus into `dir`; returns their paths with the entries.
pub fn write_corpus(dir: &Path, healthy: &[u8]) -> Vec<(std::path::PathBuf, Hostile)> {
    std::fs::create_dir_all(dir).unwrap();
    corpus(healthy)
        .into_iter()
        .map(|h| {
            let path = dir.join(h.file);
            std::fs::write(&path, &h.bytes).unwrap();
            (path, h)
        })
        .collect()
}
