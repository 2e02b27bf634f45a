//! One hook script, run through `virt-hooks-exec` and read in libvirt's
//! terms: the runner's limits for it, and its end as a [`ScriptStatus`]
//! with libvirt's texts (exit status 127 or 126 and `cannot execute binary`
//! on stderr when exec fails, as libvirt's child reports it).

use std::{
    ffi::CString,
    io,
    os::unix::ffi::OsStrExt,
    path::Path,
    time::{Duration, Instant},
};

use virt_hooks_exec::{self as exec, Cancel, Capture, Command, SpawnError, WaitStatus};

use super::outcome::{Leftovers, ScriptStatus};
use crate::{config::LeftoverPolicy, hooks::message};

/// The limits one script runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Kill the script and its descendants after this long; `None` never.
    pub(crate) timeout: Option<Duration>,
    /// Between SIGTERM and SIGKILL.
    pub(crate) grace: Duration,
    /// How long output is still read after the script exited; `None` until
    /// end of file, as libvirt does.
    pub(crate) drain: Option<Duration>,
    /// The most stdout kept.
    pub(crate) stdout: usize,
    /// The most stderr kept.
    pub(crate) stderr: usize,
    /// What happens to descendants still alive after the script exited.
    pub(crate) leftovers: LeftoverPolicy,
    /// A filter: the script's stdout is expected to be about as long as its
    /// input, so that much is reserved for it up front.
    pub(crate) filter: bool,
}

impl Limits {
    /// The process limits for a script given `input`.
    fn for_process(&self, input: Option<&[u8]>) -> exec::Limits {
        let mut limits = exec::Limits::default();
        limits.timeout = self.timeout;
        limits.grace = self.grace;
        limits.drain = self.drain;
        limits.stdout = self.stdout;
        limits.stderr = self.stderr;
        limits.stdout_reserve = input.filter(|_| self.filter).map_or(0, <[u8]>::len);
        limits.kill_leftovers = self.leftovers == LeftoverPolicy::Kill;
        limits
    }
}

/// What happened to one script.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) status: ScriptStatus,
    pub(crate) stdout: Capture,
    pub(crate) stderr: Capture,
    pub(crate) duration: Duration,
    /// It ran out of time and was killed.
    pub(crate) timed_out: bool,
    /// A cancellation stopped it.
    pub(crate) cancelled: bool,
    /// The pids killed to stop it (timeout or cancellation).
    pub(crate) killed: Vec<u32>,
    /// Its pid, once spawned.
    pub(crate) pid: Option<u32>,
    /// Its descendants still alive after it exited.
    pub(crate) leftovers: Option<Leftovers>,
    /// It could not be started, or its status was lost: the message.
    pub(crate) error: Option<String>,
}

impl Finished {
    /// A script the security rules refused.
    pub(crate) fn refused(error: String) -> Finished {
        Finished { status: ScriptStatus::Refused, ..Finished::not_started(error) }
    }

    /// A script that could not even be prepared.
    pub(crate) fn not_started(error: String) -> Finished {
        Finished {
            status: ScriptStatus::NotStarted,
            stdout: Capture::default(),
            stderr: Capture::default(),
            duration: Duration::ZERO,
            timed_out: false,
            cancelled: false,
            killed: Vec::new(),
            pid: None,
            leftovers: None,
            error: Some(error),
        }
    }
}

/// Runs `path` (`argv[0]` is the same path) with `envp` and `input`,
/// stopped by `cancel` when it is triggered.
pub(crate) fn run(
    path: &Path,
    argv: &[CString],
    envp: &[CString],
    input: Option<&[u8]>,
    limits: &Limits,
    cancel: Option<&Cancel>,
) -> Finished {
    let start = Instant::now();
    let Some(program) = argv.first() else {
        return Finished::not_started(message::not_started(path, &io::Error::other("empty argv")));
    };
    let command = Command::new(program, argv, envp);
    let command = match input {
        Some(input) => command.with_stdin(input),
        None => command,
    };
    match exec::run(&command, &limits.for_process(input), cancel) {
        Ok(done) => {
            let (status, error) = match done.status {
                Ok(status) => (script_status(status), None),
                Err(err) => (
                    ScriptStatus::NotStarted,
                    Some(format!(
                        "Hook script execution failed: cannot wait for process {}: {}",
                        err.pid,
                        message::strerror(&err.source)
                    )),
                ),
            };
            Finished {
                status,
                stdout: done.stdout,
                stderr: done.stderr,
                duration: done.duration,
                timed_out: done.timed_out,
                cancelled: done.cancelled,
                killed: done.killed,
                pid: Some(done.pid),
                leftovers: done.leftovers,
                error,
            }
        }
        Err(SpawnError::Exec { interpreter, source, .. }) => {
            // What libvirt's child does when exec fails.
            let code = if source.kind() == io::ErrorKind::NotFound { 127 } else { 126 };
            let interpreter = interpreter.as_deref().map(|i| i.as_os_str().as_bytes());
            let mut stderr = Capture::new(limits.stderr);
            stderr.push(&message::exec_failure_stderr(path, &source, interpreter));
            Finished {
                status: ScriptStatus::Exited { code },
                stdout: Capture::default(),
                stderr,
                duration: start.elapsed(),
                timed_out: false,
                cancelled: false,
                killed: Vec::new(),
                pid: None,
                leftovers: None,
                error: None,
            }
        }
        Err(SpawnError::Setup { source, .. }) => Finished {
            duration: start.elapsed(),
            ..Finished::not_started(message::not_started(path, &source))
        },
        Err(err) => Finished {
            duration: start.elapsed(),
            ..Finished::not_started(message::not_started(path, &io::Error::other(err)))
        },
    }
}

/// The hook's view of a wait status.
fn script_status(status: WaitStatus) -> ScriptStatus {
    match status {
        WaitStatus::Exited { code } => ScriptStatus::Exited { code },
        WaitStatus::Signaled { signal } => ScriptStatus::Signaled { signal },
        WaitStatus::Other { raw } => ScriptStatus::Invalid { raw },
    }
}
