//! Prediction writing with a progress bar and a closing line.

use std::path::Path;
use std::time::Instant;

use autoseg_ensembler::predict::{Input, predict_all};
use autoseg_templates::bundle::runtime::Segmenter;

use crate::progress;

/// Predicts every input into `out` with a progress bar, each failure said on stderr; returns
/// the cases that failed.
pub fn predict_with_bar(
    segmenter: &dyn Segmenter,
    inputs: &[Input],
    out: &Path,
    probabilities: bool,
) -> Vec<String> {
    let started = Instant::now();
    let bar = progress::counter(inputs.len(), "cases");
    let failed = predict_all(segmenter, inputs, out, probabilities, &|input, result| {
        if let Err(e) = result {
            bar.suspend(|| eprintln!("  FAILED {}: {e}", input.id));
        }
        bar.inc(1);
    });
    bar.finish_and_clear();
    println!(
        "wrote {} label map(s) to {} in {:.1} s; {} failed",
        inputs.len() - failed.len(),
        out.display(),
        started.elapsed().as_secs_f64(),
        failed.len()
    );
    failed
}
