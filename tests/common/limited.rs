//! Running `autoseg` as the hostile-input tests need it: under a time limit, with its exit
//! status, signal and peak memory read back from the kernel.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How a limited run ended.
#[derive(Debug)]
pub struct Limited {
    /// The exit code, if it exited.
    pub code: Option<i32>,
    /// The signal that ended it, if one did (6 is an abort, 9 our kill at the time limit).
    pub signal: Option<i32>,
    /// Whether the time limit ran out.
    pub timed_out: bool,
    /// Peak resident memory in megabytes.
    pub peak_mb: f64,
    /// Stdout then stderr.
    pub output: String,
}

impl Limited {
    /// Asserts a clean refusal: exit 1 or 2 (no panic's 101, no abort, no hang), under
    /// `max_mb` of memory, with `words` in the output.
    pub fn assert_refused(&self, what: &str, words: &str, max_mb: f64) {
        assert!(!self.timed_out, "{what}: hung\n{}", self.output);
        assert!(
            matches!(self.code, Some(1 | 2)),
            "{what}: exit {:?}, signal {:?}\n{}",
            self.code,
            self.signal,
            self.output
        );
        assert!(
            self.output.contains(words),
            "{what}: `{words}` not in\n{}",
            self.output
        );
        assert!(
            self.peak_mb < max_mb,
            "{what}: peak {:.0} MB, over {max_mb} MB",
            self.peak_mb
        );
        assert!(
            !self.output.contains("panicked"),
            "{what}:\n{}",
            self.output
        );
    }
}

/// Runs the built `autoseg` with `args`, killing it after `limit`.
pub fn run_limited(args: &[&str], limit: Duration) -> Limited {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    // Reaped below by wait4, which std's Child does not know of (it would read no rusage).
    #[allow(clippy::zombie_processes)]
    let child = Command::new(env!("CARGO_BIN_EXE_autoseg"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("run autoseg");
    let pid = child.id() as libc::pid_t;
    let started = Instant::now();
    let mut timed_out = false;
    let (status, usage) = loop {
        let mut status = 0;
        // SAFETY: a zeroed rusage is a valid value for wait4 to fill in.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: pid is our own child, not yet reaped (std's Child never waits on its own);
        // status and usage point to live locals.
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if reaped == pid {
            break (status, usage);
        }
        if started.elapsed() > limit && !timed_out {
            timed_out = true;
            // SAFETY: signalling our own unreaped child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned();
    Limited {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        timed_out,
        peak_mb: usage.ru_maxrss as f64 / 1024.0,
        output: format!("{}{}", read(&out), read(&err)),
    }
}
