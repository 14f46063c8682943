//! Exclusive locks on a bundle (while it trains) and on a work dir (while a stage rewrites its
//! shared files), so that two runs never write one folder at once. A second run is refused
//! with the holder's pid, command and age.
//!
//! The lock is the operating system's (`flock`, through `File::try_lock`): it is released
//! when the holder exits, however it exits, so a killed run leaves nothing to clean up. The
//! lock file keeps the last holder's description, which is only read to word the refusal.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// A held lock, released when dropped.
#[derive(Debug)]
pub struct Lock {
    _file: std::fs::File,
}

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another run holds it.
    #[error("{} is in use by {holder}; wait for it to end (or stop it) and run again", what.display())]
    Held {
        /// The bundle or work dir.
        what: PathBuf,
        /// Who holds it, as the holder wrote it.
        holder: String,
    },
    /// The lock file could not be opened.
    #[error("{}: cannot take the lock: {source}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Takes the exclusive lock on the folder `what` (through its file `lock_file`), without
/// waiting.
pub fn acquire(what: &Path, lock_file: &Path) -> Result<Lock, LockError> {
    let io = |source| LockError::Io {
        path: lock_file.to_path_buf(),
        source,
    };
    if let Some(parent) = lock_file.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(lock_file)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut said = String::new();
            let _ = file.read_to_string(&mut said);
            return Err(LockError::Held {
                what: what.to_path_buf(),
                holder: describe_holder(&said),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    let holder = format!(
        "{} {}\n{}\n",
        std::process::id(),
        now_seconds(),
        std::env::args().collect::<Vec<_>>().join(" ")
    );
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    file.write_all(holder.as_bytes()).map_err(io)?;
    Ok(Lock { _file: file })
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// "pid 1234 (`autoseg train ...`), for 37 s" from what the holder wrote.
fn describe_holder(said: &str) -> String {
    let mut lines = said.lines();
    let mut first = lines.next().unwrap_or_default().split_whitespace();
    let pid = first.next().unwrap_or("?");
    let since = first.next().and_then(|s| s.parse::<u64>().ok());
    let command = lines.next().unwrap_or("another run");
    let age = since.map_or(String::new(), |s| {
        format!(", for {} s", now_seconds().saturating_sub(s))
    });
    format!("pid {pid} (`{command}`{age})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_by_name_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(".lock");
        let first = acquire(dir.path(), &file).unwrap();
        let err = acquire(dir.path(), &file).unwrap_err().to_string();
        let pid = std::process::id().to_string();
        assert!(
            err.contains("is in use by pid") && err.contains(&pid),
            "{err}"
        );
        drop(first);
        assert!(acquire(dir.path(), &file).is_ok());
    }
}
