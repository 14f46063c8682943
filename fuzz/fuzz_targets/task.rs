//! Task config YAML: parsing never panics.

use std::path::Path;

use autoseg_datasets::TaskConfig;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Ok(text) = std::str::from_utf8(data) {
            let _ = TaskConfig::parse(text, Path::new("task.yaml"));
        }
    });
}
