//! What comes out: [`Finished`] and its parts.

use std::{io, time::Duration};

use serde::Serialize;

use crate::{Capture, Process};

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

/// Processes a program left behind: every descendant still alive after it
/// exited (whatever process group or session it moved to, as far as
/// [`run`](crate::run) can follow it; see [`become_subreaper`](crate::become_subreaper)),
/// and, when the drain window ended with the output still open, that fact.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub struct Leftovers {
    /// The program's pid (also its process group id).
    pub pgid: u32,
    /// How many of its descendants were still alive.
    pub count: usize,
    /// The first 64 of them, by pid, with their command lines.
    pub processes: Vec<Process>,
    /// True if and only if its stdout or stderr was still held open when
    /// the drain window ended (by a descendant, or by a process the scan
    /// could not attribute: then `count` may be zero).
    pub held_output: bool,
    /// True if and only if they were killed (frozen with SIGSTOP, then
    /// SIGKILL), per [`Limits::kill_leftovers`](crate::Limits::kill_leftovers)
    /// or because the run was timed out or cancelled.
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
    /// True if and only if it ran out of time and was killed, with every
    /// descendant found.
    pub timed_out: bool,
    /// True if and only if a cancellation stopped it and it was killed, with
    /// every descendant found.
    pub cancelled: bool,
    /// Its descendants still alive after it exited, or its output still held
    /// open when the drain window ended; `None` on the normal path.
    pub leftovers: Option<Leftovers>,
    /// The pids of the processes signalled to stop it at a timeout or a
    /// cancellation (the program and every descendant found), all gone when
    /// the call returns; empty otherwise.
    pub killed: Vec<u32>,
}
