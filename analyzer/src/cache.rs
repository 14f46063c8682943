//! The per-case result cache: a rerun after adding cases analyzes only the new ones.
//!
//! An entry is keyed by every file of the case (absolute path, size, modification time) and the
//! analyzer's format version, so a changed, moved or replaced file is analyzed again. Entries
//! are replaced through a rename (never seen half-written) but not synced; one that does not
//! read back (cut short by a crash, older format) is ignored and analyzed again.

use std::path::Path;
use std::time::UNIX_EPOCH;

use autoseg_datasets::Case;
use autoseg_datasets::fsutil::replace_bytes;
use serde::{Deserialize, Serialize};

use crate::case::{CaseDistributions, CaseStats};
use crate::sketch::{Distribution, Moments, QuantileSketch};

/// Bumped whenever what an entry holds or how it is computed changes.
const FORMAT: &str = "autoseg-analyzer-case v1";

/// The key of a case: its files' identities; `None` if a file cannot be examined (the case is
/// then analyzed, and fails with the reason).
pub fn key(case: &Case) -> Option<String> {
    let mut key = String::from(FORMAT);
    for path in case.files() {
        let meta = std::fs::metadata(path).ok()?;
        let modified = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
        key.push_str(&format!(
            "\n{}\t{}\t{}",
            path.display(),
            meta.len(),
            modified.as_nanos()
        ));
    }
    Some(key)
}

/// FNV-1a, 64 bits: a stable file name for a key (the key itself is stored and compared).
fn file_name(key: &str) -> String {
    format!(
        "{}.case",
        autoseg_datasets::hash::fnv1a64_hex(key.as_bytes())
    )
}

#[derive(Serialize, Deserialize)]
struct Entry {
    key: String,
    stats: CaseStats,
    image_moments: Vec<Moments>,
    foreground_moments: Vec<Moments>,
}

/// Reads the entry for `key`, if there is a valid one.
pub fn load(dir: &Path, key: &str) -> Option<(CaseStats, CaseDistributions)> {
    let bytes = std::fs::read(dir.join(file_name(key))).ok()?;
    let mut rest = bytes.as_slice();
    let (len, tail) = rest.split_first_chunk::<8>()?;
    let len = u64::from_le_bytes(*len) as usize;
    let json = tail.get(..len)?;
    rest = &tail[len..];
    let entry: Entry = serde_json::from_slice(json).ok()?;
    if entry.key != key {
        return None;
    }
    let mut sketches = |moments: Vec<Moments>| -> Option<Vec<Distribution>> {
        moments
            .into_iter()
            .map(|moments| {
                Some(Distribution {
                    moments,
                    sketch: QuantileSketch::from_bytes(&mut rest)?,
                })
            })
            .collect()
    };
    let image = sketches(entry.image_moments)?;
    let foreground = sketches(entry.foreground_moments)?;
    Some((entry.stats, CaseDistributions { image, foreground }))
}

/// Stores the entry for `key`.
pub fn store(
    dir: &Path,
    key: &str,
    stats: &CaseStats,
    dists: &CaseDistributions,
) -> std::io::Result<()> {
    let entry = Entry {
        key: key.to_string(),
        stats: stats.clone(),
        image_moments: dists.image.iter().map(|d| d.moments).collect(),
        foreground_moments: dists.foreground.iter().map(|d| d.moments).collect(),
    };
    let json = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
    let mut bytes = Vec::with_capacity(json.len() + 8);
    bytes.extend_from_slice(&(json.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&json);
    for d in dists.image.iter().chain(&dists.foreground) {
        d.sketch.to_bytes(&mut bytes);
    }
    replace_bytes(&dir.join(file_name(key)), &bytes)
}
