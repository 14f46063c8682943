//! Each validation case's class probabilities, predicted once with the bundle's best weights
//! at the end of training (as nnU-Net's final validation exports them) and kept in
//! `B/validation/`, so cross-validation selection reads them instead of predicting again.
//!
//! A file holds one case on its RAS grid: a header (magic, classes, x, y, z as u32) and the
//! `[classes, x, y, z]` probabilities as one byte each (`round(p * 255)`, within 1/510 of
//! the probability), gzip-compressed. nnU-Net keeps float16 in its `.npz`; so did this
//! file's first version, 477 MB a case on the 40-class phantoms (192x192x160), whose
//! half-precision noise gzip could not shrink: 19 GB for two templates' cross-validation.
//! One byte a value halves that before compression, and a trained model's channels, zero
//! almost everywhere, then compress to little. A file is checked against the case before
//! use: a missing, stale (the f16 version included) or damaged one is predicted again.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use autoseg_datasets::{Bundle, Volume};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

use super::BundleError;
use super::runtime::BundlePredictor;

const MAGIC: &[u8; 8] = b"ASVPROB2";
const HEADER: usize = MAGIC.len() + 4 * 4;

/// The file of a case: its id when that is a plain file name, else a hash of it.
pub fn file(bundle: &Path, case_id: &str) -> PathBuf {
    let plain = !case_id.is_empty()
        && case_id != ".."
        && !case_id.starts_with('.')
        && !case_id.contains(['/', '\\']);
    let name = if plain {
        case_id.to_string()
    } else {
        autoseg_datasets::hash::fnv1a64_hex(case_id.as_bytes())
    };
    Bundle::new(bundle)
        .validation_dir()
        .join(format!("{name}.prob.gz"))
}

/// Writes one case's probabilities (`[classes, x, y, z]`), atomically, encoding as it
/// compresses (no second copy of the case is held).
pub fn write(
    path: &Path,
    classes: usize,
    dims: [usize; 3],
    probabilities: &[f32],
) -> Result<(), BundleError> {
    let mut header = MAGIC.to_vec();
    for n in [classes, dims[0], dims[1], dims[2]] {
        header.extend_from_slice(&(n as u32).to_le_bytes());
    }
    autoseg_datasets::fsutil::write_atomic(path, |w| {
        let mut gz = GzEncoder::new(w, Compression::fast());
        gz.write_all(&header)?;
        let mut bytes = Vec::with_capacity(CHUNK);
        for chunk in probabilities.chunks(CHUNK) {
            bytes.clear();
            bytes.extend(chunk.iter().map(|&p| encode(p)));
            gz.write_all(&bytes)?;
        }
        gz.finish().map(|_| ())
    })
    .map_err(|e| BundleError::io(path, e))
}

/// Values encoded, or decoded, at a time.
const CHUNK: usize = 1 << 16;

/// A probability as its byte: the nearest of 0, 1/255, ..., 1 (NaN as 0).
fn encode(p: f32) -> u8 {
    (p.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// The probability a byte stands for.
fn decode(b: u8) -> f32 {
    b as f32 / 255.0
}

/// Reads one case's probabilities if the file is there and holds `classes` x `dims`; a
/// file of another size or a damaged one reads as absent (it is predicted again).
pub fn read(path: &Path, classes: usize, dims: [usize; 3]) -> Option<Vec<f32>> {
    let mut values = vec![0f32; classes * dims.iter().product::<usize>()];
    add_into(path, classes, dims, 1.0, &mut values).then_some(values)
}

/// Adds `weight` times one case's kept probabilities into `sum` (`classes` x `dims`),
/// decoding as it reads, so no copy of the file is held; false (with `sum` then partly
/// added to) when the file is missing, damaged or of another size.
pub fn add_into(
    path: &Path,
    classes: usize,
    dims: [usize; 3],
    weight: f32,
    sum: &mut [f32],
) -> bool {
    let Some(mut kept) = KeptChannels::open(path, classes, dims) else {
        return false;
    };
    sum.len() == classes * kept.voxels
        && sum
            .chunks_exact_mut(kept.voxels)
            .all(|channel| kept.add_next(weight, channel))
        && kept.ends()
}

/// A kept file read a channel at a time, in order: selection decodes a case's classes
/// channel by channel, holding one channel of each member instead of every channel.
pub struct KeptChannels {
    reader: GzDecoder<BufReader<File>>,
    voxels: usize,
    chunk: Vec<u8>,
}

impl KeptChannels {
    /// The file's channels, if its header says `classes` x `dims`.
    pub fn open(path: &Path, classes: usize, dims: [usize; 3]) -> Option<KeptChannels> {
        Some(KeptChannels {
            reader: open_checked(path, classes, dims)?,
            voxels: dims.iter().product(),
            chunk: vec![0u8; CHUNK],
        })
    }

    /// Adds `weight` times the next channel into `sum` (one channel's voxels); false when
    /// the file ends early or is damaged. Never reads past the channel: the file is not
    /// trusted.
    pub fn add_next(&mut self, weight: f32, sum: &mut [f32]) -> bool {
        if sum.len() != self.voxels {
            return false;
        }
        let mut at = 0;
        while at < self.voxels {
            let want = self.chunk.len().min(self.voxels - at);
            if self.reader.read_exact(&mut self.chunk[..want]).is_err() {
                return false;
            }
            for (s, &b) in sum[at..at + want].iter_mut().zip(&self.chunk[..want]) {
                *s += weight * decode(b);
            }
            at += want;
        }
        true
    }

    /// Whether the file ends here (after its last channel), as a whole one does.
    pub fn ends(mut self) -> bool {
        self.reader.read(&mut [0u8; 1]).is_ok_and(|n| n == 0)
    }
}

/// Whether the file is there, whole, with `classes` x `dims` values: a kept case is not
/// predicted again. Read through without holding it.
pub fn is_kept(path: &Path, classes: usize, dims: [usize; 3]) -> bool {
    let expected = classes * dims.iter().product::<usize>();
    open_checked(path, classes, dims).is_some_and(|reader| {
        // One byte past the values tells a longer file from a whole one.
        std::io::copy(&mut reader.take(expected as u64 + 1), &mut std::io::sink())
            .is_ok_and(|n| n == expected as u64)
    })
}

/// The file's decoder past a header that matches `classes` x `dims`.
fn open_checked(
    path: &Path,
    classes: usize,
    dims: [usize; 3],
) -> Option<GzDecoder<BufReader<File>>> {
    let file = File::open(path).ok()?;
    let mut reader = GzDecoder::new(BufReader::new(file));
    let mut header = [0u8; HEADER];
    reader.read_exact(&mut header).ok()?;
    let sizes: Vec<usize> = header[MAGIC.len()..]
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    (&header[..MAGIC.len()] == MAGIC && sizes == [classes, dims[0], dims[1], dims[2]])
        .then_some(reader)
}

/// Removes a bundle's kept probabilities: its weights are about to change.
pub fn clear(bundle: &Path) -> Result<(), BundleError> {
    let dir = Bundle::new(bundle).validation_dir();
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(BundleError::io(&dir, e)),
        _ => Ok(()),
    }
}

impl BundlePredictor {
    /// The file of a validation case's probabilities on the RAS grid of `ras`: the kept
    /// one, else predicted and kept first. Cross-validation reads it case by case.
    pub fn kept_validation_probabilities(
        &self,
        case_id: &str,
        ras: &Volume,
        path: &Path,
    ) -> Result<PathBuf, BundleError> {
        let file = file(&self.bundle, case_id);
        if !is_kept(&file, self.classes(), ras.dims()) {
            let probabilities = self.bundle_probabilities(ras, path)?;
            write(&file, self.classes(), ras.dims(), &probabilities)?;
        }
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_read_back_within_a_byte_step_and_a_wrong_file_reads_as_absent() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(dir.path(), "case_1");
        assert!(path.ends_with("validation/case_1.prob.gz"));
        let p: Vec<f32> = (0..2 * 24).map(|i| (i % 7) as f32 / 7.0).collect();
        write(&path, 2, [2, 3, 4], &p).unwrap();
        let back = read(&path, 2, [2, 3, 4]).unwrap();
        let step = 0.5 / 255.0 + 1e-6;
        assert!(p.iter().zip(&back).all(|(a, b)| (a - b).abs() <= step));
        assert!(read(&path, 3, [2, 3, 4]).is_none(), "other classes");
        let mut sum = vec![1f32; 2 * 24];
        assert!(add_into(&path, 2, [2, 3, 4], 0.5, &mut sum));
        assert!(
            sum.iter()
                .zip(&p)
                .all(|(s, p)| (s - (1.0 + 0.5 * p)).abs() <= 0.5 * step)
        );
        assert!(is_kept(&path, 2, [2, 3, 4]) && !is_kept(&path, 2, [2, 3, 5]));
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 12]).unwrap();
        assert!(!is_kept(&path, 2, [2, 3, 4]), "truncated");
        assert!(read(&path, 2, [2, 3, 4]).is_none(), "truncated");
        write(&path, 2, [2, 3, 4], &p).unwrap();
        assert!(read(&path, 2, [4, 3, 2]).is_none(), "another grid");
        let mut old = GzEncoder::new(Vec::new(), Compression::fast());
        old.write_all(b"ASVPROB1").unwrap();
        for n in [2u32, 2, 3, 4] {
            old.write_all(&n.to_le_bytes()).unwrap();
        }
        old.write_all(&[0u8; 2 * 2 * 24]).unwrap();
        std::fs::write(&path, old.finish().unwrap()).unwrap();
        assert!(
            !is_kept(&path, 2, [2, 3, 4]),
            "the f16 version is predicted again"
        );
        std::fs::write(&path, b"not gzip").unwrap();
        assert!(read(&path, 2, [2, 3, 4]).is_none());
        // A path for an id: never a folder outside validation/.
        let odd = file(dir.path(), "../../x");
        assert_eq!(odd.parent(), path.parent());
        clear(dir.path()).unwrap();
        assert!(!path.exists());
        clear(dir.path()).unwrap();
    }
}
