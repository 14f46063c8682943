//! NIfTI-1 and -2, plain and gzip: reading never panics, and never holds more than a small
//! multiple of what the header declares (or, for a refused file, of the file itself).

use autoseg_datasets::nifti;
use autoseg_fuzz::{Counting, peak_since, reset_peak};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let start = reset_peak();
        let result = nifti::raw_from(data, data.len() as u64);
        // What the header declares, whether or not the file then proves to hold it.
        let declared = nifti::header_from(data)
            .ok()
            .and_then(|h| h.file_size().ok())
            .unwrap_or(0) as usize;
        if let Ok(raw) = result {
            let _ = raw.class_ids();
            let _ = raw.into_f32();
        }
        // f32 decoding of one-byte voxels is 4x the file; inflating takes the input once
        // more; 1 MB covers the decoders' own tables.
        let bound = declared
            .max(data.len())
            .saturating_mul(8)
            .saturating_add(1 << 20);
        let peak = peak_since(start);
        assert!(
            peak <= bound,
            "held {peak} bytes for a {}-byte input declaring {declared}",
            data.len()
        );
    });
}
