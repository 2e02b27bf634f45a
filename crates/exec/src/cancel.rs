//! Cancelling a run from another thread or from a signal handler: a
//! self-pipe whose read end the pump watches.

use std::{
    io,
    os::fd::{AsFd, BorrowedFd, OwnedFd},
    sync::Arc,
};

use rustix::io::Errno;

use crate::pipes;

/// A cancellation switch for [`run`](crate::run).
///
/// Cheap to clone; every clone is the same switch. Once cancelled it stays
/// cancelled: a run started with it afterwards is stopped as soon as it
/// starts.
///
/// Triggering it is one non-blocking `write(2)` of one byte to a pipe, which
/// is async-signal-safe: [`Cancel::signal_fd`] hands out a descriptor for
/// that write end, for `signal_hook::low_level::pipe::register` (or any
/// signal handler that writes a byte to it).
///
/// ```
/// let cancel = virt_hooks_exec::Cancel::new()?;
/// assert!(!cancel.is_cancelled());
/// cancel.clone().cancel();
/// assert!(cancel.is_cancelled());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Cancel {
    inner: Arc<Pipe>,
}

#[derive(Debug)]
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl Cancel {
    /// A switch that is not cancelled.
    ///
    /// # Errors
    ///
    /// The OS error if no pipe can be created (out of descriptors).
    pub fn new() -> io::Result<Cancel> {
        let (read, write) = pipes::nonblocking_pipe()?;
        Ok(Cancel { inner: Arc::new(Pipe { read, write }) })
    }

    /// Cancels: a running program and its descendants get SIGTERM (SIGKILL
    /// after the grace period), and it is reaped before its run returns.
    pub fn cancel(&self) {
        // A full pipe (EAGAIN) means it is cancelled already.
        if let Err(err) = rustix::io::write(&self.inner.write, &[1]) {
            if err != Errno::AGAIN {
                log::error!("cannot trigger a cancellation: {}", io::Error::from(err));
            }
        }
    }

    /// Returns true if and only if the switch was triggered, by
    /// [`cancel`](Cancel::cancel) or through [`signal_fd`](Cancel::signal_fd).
    pub fn is_cancelled(&self) -> bool {
        pipes::readable(self.inner.read.as_fd())
    }

    /// A new descriptor (close-on-exec, non-blocking) for the write end of
    /// the switch: writing any byte to it cancels. Meant for a signal
    /// handler, e.g. `signal_hook::low_level::pipe::register(SIGTERM, fd)`,
    /// which takes ownership of it.
    ///
    /// # Errors
    ///
    /// The OS error if the descriptor cannot be duplicated.
    pub fn signal_fd(&self) -> io::Result<OwnedFd> {
        self.inner.write.try_clone()
    }

    /// The read end, readable once cancelled; for the pump.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.inner.read.as_fd()
    }
}
