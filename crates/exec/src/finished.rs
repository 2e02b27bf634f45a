//! What comes out: [`Finished`] and its parts.

use std::{io, time::Duration};

use serde::Serialize;

use crate::Capture;

/// How a process ended, as `waitpid` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WaitStatus {
    /// It exited with this status.
    Exited {
        /// The exit status.
        code: i32,
    },
    /// A signal killed it.
    Signaled {
        /// The signal number.
        signal: i32,
    },
    /// Neither (not expected for a reaped process).
    Other {
        /// The raw wait status.
        raw: i32,
    },
}

impl WaitStatus {
    /// Returns true if and only if it exited with status 0.
    pub fn success(&self) -> bool {
        matches!(self, WaitStatus::Exited { code: 0 })
    }
}

/// The process ran, but its exit status could not be collected.
#[derive(Debug, thiserror::Error)]
#[error("cannot wait for process {pid}: {source}")]
pub struct WaitError {
    /// The process.
    pub pid: u32,
    /// What `waitpid` reported (`ECHILD` when the caller ignores SIGCHLD,
    /// or something else reaped it).
    #[source]
    pub source: io::Error,
}

/// Processes a program left behind holding its stdout or stderr open after
/// it exited, found when the drain window ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub struct Leftovers {
    /// The program's process group (its pid).
    pub pgid: u32,
    /// How many processes were still in that group. Zero means whatever
    /// holds the output escaped the group (`setsid`, another process
    /// group).
    pub count: usize,
    /// True if and only if the group was killed (SIGKILL), per
    /// [`Limits::kill_leftovers`](crate::Limits::kill_leftovers) or because
    /// the run was timed out or cancelled.
    pub killed: bool,
}

/// What happened to a program that was started.
#[derive(Debug)]
#[non_exhaustive]
pub struct Finished {
    /// Its pid, also its process group id.
    pub pid: u32,
    /// How it ended; an error if its status was lost.
    pub status: Result<WaitStatus, WaitError>,
    /// What it wrote to stdout, up to the limit.
    pub stdout: Capture,
    /// What it wrote to stderr, up to the limit.
    pub stderr: Capture,
    /// From the spawn to the end of its output.
    pub duration: Duration,
    /// True if and only if it ran out of time and its group was killed.
    pub timed_out: bool,
    /// True if and only if a cancellation stopped it and its group was
    /// killed.
    pub cancelled: bool,
    /// Processes still holding its output open when the drain window ended;
    /// `None` on the normal path.
    pub leftovers: Option<Leftovers>,
}
