//! Progress bars on stderr (hidden automatically when stderr is not a terminal).

use indicatif::{ProgressBar, ProgressStyle};

/// A bar counting `total` items with their rate, e.g. cases per second.
pub fn counter(total: usize, unit: &str) -> ProgressBar {
    let style = ProgressStyle::with_template(&format!(
        "{{bar:40}} {{pos}}/{{len}} {unit} ({{per_sec}}, eta {{eta}})"
    ))
    .expect("static template");
    ProgressBar::new(total as u64).with_style(style)
}
