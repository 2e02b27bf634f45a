//! The started child itself: the pidfd that tells the pump it exited, and
//! reaping it.

use std::{
    io,
    os::fd::{AsFd, BorrowedFd, OwnedFd},
    time::Instant,
};

use rustix::{
    io::Errno,
    process::{Pid, PidfdFlags, WaitOptions},
};

use crate::finished::{WaitError, WaitStatus};

/// The child, running or reaped.
#[derive(Debug)]
pub(crate) struct Child {
    pid: Pid,
    /// Readable once the child has exited; `None` on kernels without
    /// `pidfd_open` (before 5.3), and once it is reaped.
    pidfd: Option<OwnedFd>,
    /// When it was reaped, and how it ended; `None` while it runs.
    reaped: Option<(Instant, Result<WaitStatus, WaitError>)>,
}

impl Child {
    /// The child `pid`, just spawned.
    pub(crate) fn new(pid: Pid) -> Child {
        let pidfd = rustix::process::pidfd_open(pid, PidfdFlags::empty())
            .inspect_err(|err| log::debug!("pidfd_open({pid:?}): {}", io::Error::from(*err)))
            .ok();
        Child { pid, pidfd, reaped: None }
    }

    /// Its pid, which is also its process group id.
    pub(crate) fn pid(&self) -> Pid {
        self.pid
    }

    /// The pidfd to poll while it runs; `None` without one or once reaped.
    pub(crate) fn exit_fd(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(AsFd::as_fd)
    }

    /// When it was reaped; `None` while it runs.
    pub(crate) fn exited_at(&self) -> Option<Instant> {
        self.reaped.as_ref().map(|(at, _)| *at)
    }

    /// Returns true if and only if it has a pidfd or was reaped: then the
    /// pump learns of its exit without blocking.
    pub(crate) fn observable(&self) -> bool {
        self.pidfd.is_some() || self.reaped.is_some()
    }

    /// Waits for it (at once when its pidfd is readable; blocking without a
    /// pidfd) and records how it ended. Does nothing once reaped.
    pub(crate) fn reap(&mut self) {
        if self.reaped.is_some() {
            return;
        }
        self.pidfd = None;
        let status = wait(self.pid);
        self.reaped = Some((Instant::now(), status));
    }

    /// How it ended, reaping it first if the pump has not.
    pub(crate) fn into_status(self) -> Result<WaitStatus, WaitError> {
        match self.reaped {
            Some((_, status)) => status,
            None => wait(self.pid),
        }
    }
}

/// Reaps `pid`, retrying on EINTR. `waitpid` and not `waitid(P_PIDFD)`:
/// the pid of an unreaped child cannot be reused, and `P_PIDFD` needs Linux
/// 5.4 where `pidfd_open` needs only 5.3.
fn wait(pid: Pid) -> Result<WaitStatus, WaitError> {
    loop {
        match rustix::process::waitpid(Some(pid), WaitOptions::empty()) {
            Ok(Some((_, status))) => return Ok(decode(status)),
            Ok(None) => {}
            Err(Errno::INTR) => {}
            Err(err) => {
                let pid = pid.as_raw_nonzero().get().unsigned_abs();
                return Err(WaitError { pid, source: err.into() });
            }
        }
    }
}

fn decode(status: rustix::process::WaitStatus) -> WaitStatus {
    if let Some(code) = status.exit_status() {
        WaitStatus::Exited { code }
    } else if let Some(signal) = status.terminating_signal() {
        WaitStatus::Signaled { signal }
    } else {
        WaitStatus::Other { raw: status.as_raw() }
    }
}
