//! Datalist JSON: parsing and resolving under a root never panics.

use std::path::Path;

use autoseg_datasets::{Datalist, Dataset};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        if let Ok(list) = Datalist::parse(text, Path::new("fuzz.json")) {
            let _ = list.channel_names();
            let _ = list.label_names();
            if let Ok(dataset) = Dataset::new(list, Path::new("/data/root"), false) {
                for case in dataset.all_cases() {
                    let _ = dataset.check_inside_root(&case.images[0]);
                    assert!(
                        !case.id.contains('/') && !case.id.starts_with('.'),
                        "{}",
                        case.id
                    );
                }
            }
        }
    });
}
