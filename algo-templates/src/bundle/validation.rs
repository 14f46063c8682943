//! Each validation case's class probabilities, predicted once with the bundle's best weights
//! at the end of training (as nnU-Net's final validation exports them) and kept in
//! `B/validation/`, so cross-validation selection reads them instead of predicting again.
//!
//! A file holds one case on its RAS grid: a header (magic, classes, x, y, z as u32) and the
//! `[classes, x, y, z]` probabilities as little-endian f16, gzip-compressed (nnU-Net keeps
//! float16 in its `.npz` too). A file is checked against the case before use: a missing,
//! stale or damaged one is predicted again.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use autoseg_datasets::{Bundle, Volume};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use half::f16;

use super::BundleError;
use super::runtime::BundlePredictor;

const MAGIC: &[u8; 8] = b"ASVPROB1";
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

/// Writes one case's probabilities (`[classes, x, y, z]`), atomically.
pub fn write(
    path: &Path,
    classes: usize,
    dims: [usize; 3],
    probabilities: &[f32],
) -> Result<(), BundleError> {
    let mut bytes = Vec::with_capacity(HEADER + probabilities.len() * 2);
    bytes.extend_from_slice(MAGIC);
    for n in [classes, dims[0], dims[1], dims[2]] {
        bytes.extend_from_slice(&(n as u32).to_le_bytes());
    }
    for &p in probabilities {
        bytes.extend_from_slice(&f16::from_f32(p).to_le_bytes());
    }
    autoseg_datasets::fsutil::write_atomic(path, |w| {
        let mut gz = GzEncoder::new(w, Compression::fast());
        gz.write_all(&bytes)?;
        gz.finish().map(|_| ())
    })
    .map_err(|e| BundleError::io(path, e))
}

/// Reads one case's probabilities if the file is there and holds `classes` x `dims`; a
/// file of another size or a damaged one reads as absent (it is predicted again).
pub fn read(path: &Path, classes: usize, dims: [usize; 3]) -> Option<Vec<f32>> {
    let expected = classes * dims.iter().product::<usize>();
    let file = std::fs::File::open(path).ok()?;
    // Never inflate more than the case's own size: the file is not trusted.
    let limit = (HEADER + expected * 2) as u64;
    let mut bytes = Vec::new();
    GzDecoder::new(file)
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    if bytes.len() as u64 != limit || &bytes[..MAGIC.len()] != MAGIC {
        return None;
    }
    let header: Vec<usize> = bytes[MAGIC.len()..HEADER]
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    if header != [classes, dims[0], dims[1], dims[2]] {
        return None;
    }
    Some(
        bytes[HEADER..]
            .chunks_exact(2)
            .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
    )
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
    /// A validation case's probabilities on the RAS grid of `ras`: the kept ones, else
    /// predicted and kept.
    pub fn validation_probabilities(
        &self,
        case_id: &str,
        ras: &Volume,
        path: &Path,
    ) -> Result<Vec<f32>, BundleError> {
        let file = file(&self.bundle, case_id);
        if let Some(kept) = read(&file, self.classes(), ras.dims()) {
            return Ok(kept);
        }
        let probabilities = self.bundle_probabilities(ras, path)?;
        write(&file, self.classes(), ras.dims(), &probabilities)?;
        Ok(probabilities)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_read_back_at_half_precision_and_a_wrong_file_reads_as_absent() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(dir.path(), "case_1");
        assert!(path.ends_with("validation/case_1.prob.gz"));
        let p: Vec<f32> = (0..2 * 24).map(|i| (i % 7) as f32 / 7.0).collect();
        write(&path, 2, [2, 3, 4], &p).unwrap();
        let back = read(&path, 2, [2, 3, 4]).unwrap();
        assert!(p.iter().zip(&back).all(|(a, b)| (a - b).abs() < 1e-3));
        assert!(read(&path, 3, [2, 3, 4]).is_none(), "other classes");
        assert!(read(&path, 2, [4, 3, 2]).is_none(), "another grid");
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
