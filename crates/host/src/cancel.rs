//! Cancelling a run from another thread or from a signal handler: a
//! self-pipe whose read end the runner's poll loop watches.

use std::{
    fs::File,
    io::{self, Write},
    os::fd::{AsFd, BorrowedFd, OwnedFd},
    sync::Arc,
};

use crate::spawn;

/// A cancellation switch for [`Runner::run_with`](crate::Runner::run_with).
///
/// Cheap to clone; every clone is the same switch. Once cancelled it stays
/// cancelled: a run started with it afterwards runs no script and returns
/// [`RunError::Cancelled`](crate::RunError::Cancelled) at once.
///
/// Triggering it is one non-blocking `write(2)` of one byte to a pipe, which
/// is async-signal-safe: [`Cancel::signal_fd`] hands out a descriptor for
/// that write end, for `signal_hook::low_level::pipe::register` (or any
/// signal handler that writes a byte to it).
///
/// ```
/// let cancel = virt_hooks::Cancel::new()?;
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
    write: File,
}

impl Cancel {
    /// A switch that is not cancelled.
    ///
    /// # Errors
    ///
    /// The OS error if no pipe can be created (out of descriptors).
    pub fn new() -> io::Result<Cancel> {
        let (read, write) = spawn::nonblocking_pipe()?;
        Ok(Cancel { inner: Arc::new(Pipe { read, write: File::from(write) }) })
    }

    /// Cancels: a running hook's process group gets SIGTERM (SIGKILL after
    /// the grace period), and no further script of the event runs.
    pub fn cancel(&self) {
        // A full pipe (EAGAIN) means it is cancelled already.
        if let Err(err) = (&self.inner.write).write(&[1]) {
            if err.kind() != io::ErrorKind::WouldBlock {
                log::error!("cannot trigger a cancellation: {err}");
            }
        }
    }

    /// Returns true if and only if the switch was triggered, by
    /// [`cancel`](Cancel::cancel) or through [`signal_fd`](Cancel::signal_fd).
    pub fn is_cancelled(&self) -> bool {
        spawn::readable(self.inner.read.as_fd())
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
        self.inner.write.as_fd().try_clone_to_owned()
    }

    /// The read end, readable once cancelled; for the poll loop.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.inner.read.as_fd()
    }
}
