//! Writing files so that a crash never leaves a half-written result behind.

use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

/// Writes `path` atomically: the bytes go to a temporary file in the same folder, which is
/// synced and then renamed over `path`. Readers see the old file or the new one, never a part.
/// Parent folders are created as needed.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let mut tmp = temp_beside(path)?;
    {
        let mut buffered = io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
        write(&mut buffered)?;
        buffered.flush()?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// [`write_atomic`] for a ready buffer.
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic(path, |w| w.write_all(bytes))
}

/// Replaces `path` with `bytes` through a temporary file and a rename, without syncing: readers
/// never see a partial file, but a crash may leave an empty or stale one. For caches, whose
/// readers check what they read and recompute a bad entry; one fsync per entry would cost more
/// than the entry saves.
pub fn replace_bytes(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = temp_beside(path)?;
    tmp.write_all(bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// How the temporary files of this module's writers begin: a run that was killed may leave
/// some behind, and whoever resumes it can recognise and remove them.
pub const TEMP_PREFIX: &str = ".autoseg-tmp-";

/// Whether a file or folder name is one a writer of autoseg's leaves only when killed
/// mid-write: this module's temporary files, a `.partial` weights file or checkpoint, or the
/// `.tmp*` files of the `tempfile` crate that libraries (burn's safetensors store) write through.
pub fn is_stray_temp(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX) || name.contains(".partial") || name.starts_with(".tmp")
}

/// Removes every [`is_stray_temp`] file and folder under `root`, except under `skip`;
/// returns how many. Call it holding the lock of what `root` is, so no live writer's file
/// is taken.
pub fn remove_stray_temps(root: &Path, skip: &[PathBuf]) -> io::Result<usize> {
    let mut removed = 0;
    let Ok(entries) = std::fs::read_dir(root) else {
        return Ok(0);
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        if skip.contains(&path) {
            continue;
        }
        let is_dir = entry.file_type()?.is_dir();
        if is_stray_temp(&entry.file_name().to_string_lossy()) {
            if is_dir {
                std::fs::remove_dir_all(&path)?;
            } else {
                std::fs::remove_file(&path)?;
            }
            removed += 1;
        } else if is_dir {
            removed += remove_stray_temps(&path, skip)?;
        }
    }
    Ok(removed)
}

/// A temporary file in `path`'s folder (created as needed), so the final rename stays on one
/// file system.
fn temp_beside(path: &Path) -> io::Result<tempfile::NamedTempFile> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(parent)?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(TEMP_PREFIX);
    // Created as any file is (0666 less the umask), not tempfile's private 0600: the result
    // is renamed into place and must be as readable as a file written directly.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    builder.tempfile_in(parent)
}

/// `to` relative to the folder `from` (both absolute and normalised, as `canonicalize`
/// gives them), so that files can refer to each other by paths that survive moving both.
pub fn relative_path(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for c in &to[common..] {
        out.push(c);
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_write_keeps_the_old_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/result.txt");
        write_bytes_atomic(&path, b"first").unwrap();
        let err = write_atomic(&path, |w| {
            w.write_all(b"partial")?;
            Err(io::Error::other("disk full"))
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temporary file left behind");
    }

    #[cfg(unix)]
    #[test]
    fn written_files_take_the_umask_not_a_private_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.yaml");
        write_bytes_atomic(&path, b"x").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        // SAFETY: umask only swaps the process's creation mask; it is set straight back.
        let umask = unsafe {
            let old = libc::umask(0o022);
            libc::umask(old);
            old
        } as u32;
        assert_eq!(mode, 0o666 & !umask, "{mode:o}");
    }

    #[test]
    fn relative_paths_climb_to_the_common_folder() {
        let p = relative_path(
            Path::new("/w/bundles/dynunet_0"),
            Path::new("/data/t/list.json"),
        );
        assert_eq!(p, PathBuf::from("../../../data/t/list.json"));
        let p = relative_path(Path::new("/a/w/bundles/x"), Path::new("/a/dataset.json"));
        assert_eq!(p, PathBuf::from("../../../dataset.json"));
        assert_eq!(
            relative_path(Path::new("/a"), Path::new("/a")),
            PathBuf::from(".")
        );
    }
}
