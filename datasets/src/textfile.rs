//! Reading the YAML and JSON files autoseg is given or left (datalists, task configs, bundle
//! configs, ledgers), as untrusted input: only regular files, at most [`MAX_TEXT_BYTES`], and
//! nesting at most [`MAX_NESTING`] deep before a parser sees them. serde_yaml's time grows
//! faster than linearly with the depth of flow collections (`[[[[...`: a 200 KB file took 56 s
//! to reach its recursion limit), and a datalist of `/dev/zero` would read until memory ran
//! out.

use std::io::Read;
use std::path::Path;

use serde::de::DeserializeOwned;

/// The largest text file read (a 10,000-case datalist is about 2 MB).
pub const MAX_TEXT_BYTES: u64 = 64 << 20;

/// The deepest nesting of `[` and `{` a YAML or JSON text may have (autoseg's own files
/// nest four deep; serde_json stops at 128).
pub const MAX_NESTING: usize = 64;

/// Why a text could not be parsed.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    /// Nested deeper than [`MAX_NESTING`].
    #[error("nested {depth} deep at line {line}, more than the {MAX_NESTING} allowed")]
    TooDeep {
        /// How deep it got.
        depth: usize,
        /// Where (1-based).
        line: usize,
    },
    /// Malformed or mistyped YAML.
    #[error(transparent)]
    Yaml(#[from] serde_yaml::Error),
    /// Malformed or mistyped JSON.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// Reads a text file whole, if it is a regular file of at most [`MAX_TEXT_BYTES`].
pub fn read_text(path: &Path) -> std::io::Result<String> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::other(
            "not a regular file (a FIFO, device or folder)",
        ));
    }
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_TEXT_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_TEXT_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than the {} MB a text file may have",
            MAX_TEXT_BYTES >> 20
        )));
    }
    Ok(text)
}

/// Parses YAML after checking its nesting.
pub fn from_yaml<T: DeserializeOwned>(text: &str) -> Result<T, TextError> {
    check_nesting(text)?;
    Ok(serde_yaml::from_str(text)?)
}

/// Parses JSON after checking its nesting.
pub fn from_json<T: DeserializeOwned>(text: &str) -> Result<T, TextError> {
    check_nesting(text)?;
    Ok(serde_json::from_str(text)?)
}

/// Refuses flow nesting (`[` and `{` outside quotes and comments) past [`MAX_NESTING`]. Block
/// nesting needs a line and an indent per level, so the size cap bounds it.
pub fn check_nesting(text: &str) -> Result<(), TextError> {
    let (mut depth, mut line) = (0usize, 1usize);
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut comment = false;
    let mut previous = '\n';
    for c in text.chars() {
        if c == '\n' {
            line += 1;
            comment = false;
        }
        if comment {
            previous = c;
            continue;
        }
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' => quote = Some(c),
                '#' if previous.is_whitespace() => comment = true,
                '[' | '{' => {
                    depth += 1;
                    if depth > MAX_NESTING {
                        return Err(TextError::TooDeep { depth, line });
                    }
                }
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
        previous = c;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_flow_nesting_is_refused_at_once_and_ordinary_text_passes() {
        let deep = "[".repeat(100_000);
        let started = std::time::Instant::now();
        let err = from_yaml::<serde_yaml::Value>(&deep).unwrap_err();
        assert!(started.elapsed().as_secs() < 1);
        assert!(
            err.to_string().contains("nested 65 deep at line 1"),
            "{err}"
        );
        assert!(from_json::<serde_json::Value>(&"{\"a\":".repeat(1000)).is_err());
        let fine = "a: [1, {b: '[[[['}, \"]]\"]  # [[[[\nc: {d: [e]}\n";
        let value: serde_yaml::Value = from_yaml(fine).unwrap();
        assert_eq!(value["c"]["d"][0], "e");
    }

    #[test]
    fn only_regular_files_are_read() {
        let err = read_text(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        assert!(read_text(dir.path()).is_err());
    }
}
