//! The pipes between the caller and the child: close-on-exec, at fd 3 or
//! above, the parent's ends non-blocking, enlarged for big inputs. All
//! through rustix's safe wrappers.

use std::{
    io,
    os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd},
};

use rustix::{
    event::{PollFd, PollFlags, Timespec},
    fs::OFlags,
    pipe::PipeFlags,
};

/// From this size of input on, the stdin and stdout pipes are enlarged.
pub(crate) const BIG_INPUT: usize = 1 << 20;
/// The size big inputs' pipes get: the default `pipe-max-size`.
const BIG_PIPE: usize = 1 << 20;

/// The parent's ends of the child's stdio.
#[derive(Debug)]
pub(crate) struct Stdio {
    /// The write end of its stdin pipe; `None` when stdin is `/dev/null`.
    pub(crate) stdin: Option<OwnedFd>,
    /// The read end of its stdout pipe (non-blocking).
    pub(crate) stdout: OwnedFd,
    /// The read end of its stderr pipe (non-blocking).
    pub(crate) stderr: OwnedFd,
}

impl Stdio {
    /// The parent's ends, and what the child gets as fds 0, 1 and 2 (to be
    /// closed once it is spawned). stdin is a pipe when `stdin_len` is given (the input's size),
    /// otherwise `/dev/null`; stdout and stderr are pipes. For an input of
    /// [`BIG_INPUT`] or more, the stdin and stdout pipes are enlarged to
    /// [`BIG_PIPE`] (best effort), so the data moves in fewer, larger
    /// chunks.
    pub(crate) fn new(stdin_len: Option<usize>) -> io::Result<(Stdio, [OwnedFd; 3])> {
        let big = stdin_len.is_some_and(|n| n >= BIG_INPUT);
        let (stdin_child, stdin) = if stdin_len.is_some() {
            let (r, w) = pipe()?;
            if big {
                enlarge(w.as_fd());
            }
            (r, Some(w))
        } else {
            let null = std::fs::File::open("/dev/null")?;
            (above_stdio(OwnedFd::from(null))?, None)
        };
        let (stdout, stdout_child) = pipe()?;
        if big {
            enlarge(stdout.as_fd());
        }
        let (stderr, stderr_child) = pipe()?;
        for fd in [Some(&stdout), Some(&stderr), stdin.as_ref()].into_iter().flatten() {
            set_nonblocking(fd.as_fd())?;
        }
        Ok((Stdio { stdin, stdout, stderr }, [stdin_child, stdout_child, stderr_child]))
    }
}

/// A close-on-exec pipe, both ends at fd 3 or above: `(read, write)`.
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC)?;
    Ok((above_stdio(r)?, above_stdio(w)?))
}

/// A close-on-exec pipe with both ends non-blocking: `(read, write)`. For
/// the cancellation self-pipe, whose write end a signal handler may write to.
pub(crate) fn nonblocking_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = pipe()?;
    set_nonblocking(r.as_fd())?;
    set_nonblocking(w.as_fd())?;
    Ok((r, w))
}

/// Moves `fd` to 3 or above, so that the `dup2` file actions onto 0, 1 and 2
/// can never overwrite one another (a caller that closed its own stdio would
/// otherwise get pipes at 0..2).
fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    Ok(rustix::io::fcntl_dupfd_cloexec(&fd, 3)?)
}

/// `F_SETPIPE_SZ` to [`BIG_PIPE`], best effort: a user over its pipe
/// quota (`pipe-user-pages-soft`) keeps the default 64 KiB.
fn enlarge(fd: BorrowedFd<'_>) {
    if let Err(err) = rustix::pipe::fcntl_setpipe_size(fd, BIG_PIPE) {
        log::debug!("cannot enlarge a pipe: {}", io::Error::from(err));
    }
}

/// Makes the parent's end of a pipe non-blocking with one `F_SETFL`: the
/// pipe was just created with no status flag (`O_CLOEXEC` is a descriptor
/// flag, and `F_SETFL` ignores the access mode), so there is nothing to
/// read first. Each end of a pipe is its own open file description, so the
/// child's end stays blocking.
fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::fs::fcntl_setfl(fd, OFlags::NONBLOCK)?)
}

/// Returns true if and only if `fd` is readable now (a zero-timeout poll).
pub(crate) fn readable(fd: BorrowedFd<'_>) -> bool {
    let mut fds = [PollFd::from_borrowed_fd(fd, PollFlags::IN)];
    let now = Timespec { tv_sec: 0, tv_nsec: 0 };
    matches!(rustix::event::poll(&mut fds, Some(&now)), Ok(n) if n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nonblocking(fd: &OwnedFd) -> bool {
        rustix::fs::fcntl_getfl(fd).expect("getfl").contains(OFlags::NONBLOCK)
    }

    #[test]
    fn the_parent_ends_are_non_blocking_and_the_childs_are_not() {
        let (stdio, child) = Stdio::new(Some(10)).expect("stdio");
        let parent = [stdio.stdin.as_ref().expect("stdin"), &stdio.stdout, &stdio.stderr];
        assert!(parent.iter().all(|fd| nonblocking(fd)));
        assert!(child.iter().all(|fd| !nonblocking(fd)));
        for fd in parent.into_iter().chain(&child) {
            assert!(fd.as_raw_fd() > 2);
            let flags = rustix::io::fcntl_getfd(fd).expect("getfd");
            assert!(flags.contains(rustix::io::FdFlags::CLOEXEC));
        }
    }

    #[test]
    fn big_inputs_get_big_pipes_and_small_ones_the_default() {
        let size = |fd: &OwnedFd| rustix::pipe::fcntl_getpipe_size(fd).expect("size");
        let (small, _) = Stdio::new(Some(BIG_INPUT - 1)).expect("stdio");
        assert_eq!(size(small.stdin.as_ref().expect("stdin")), 64 << 10);
        let (big, _) = Stdio::new(Some(BIG_INPUT)).expect("stdio");
        // Best effort: a user over its pipe quota keeps 64 KiB. Test
        // machines are not.
        assert_eq!(size(big.stdin.as_ref().expect("stdin")), BIG_PIPE);
        assert_eq!(size(&big.stdout), BIG_PIPE);
        assert_eq!(size(&big.stderr), 64 << 10, "stderr is not part of the data path");
    }

    #[test]
    fn without_input_stdin_is_dev_null() {
        let (stdio, child) = Stdio::new(None).expect("stdio");
        assert!(stdio.stdin.is_none());
        let link = std::fs::read_link(format!("/proc/self/fd/{}", child[0].as_raw_fd()));
        assert_eq!(link.expect("readlink"), std::path::Path::new("/dev/null"));
    }

    #[test]
    fn readable_once_written() {
        let (r, w) = nonblocking_pipe().expect("pipe");
        assert!(!readable(r.as_fd()));
        rustix::io::write(&w, b"x").expect("write");
        assert!(readable(r.as_fd()));
    }
}
