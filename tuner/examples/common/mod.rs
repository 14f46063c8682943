//! What the benchmark examples share: their command lines are `--flag value` pairs.

use anyhow::Context;

/// The `--flag value` pairs of the command line, in order; a flag without a value is an
/// error that names it.
pub fn flag_pairs() -> anyhow::Result<Vec<(String, String)>> {
    let mut args = std::env::args().skip(1);
    let mut pairs = Vec::new();
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        pairs.push((flag, value));
    }
    Ok(pairs)
}
