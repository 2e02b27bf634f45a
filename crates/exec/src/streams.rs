//! The child's three standard streams as the pump sees them: the input still
//! to write to stdin, and stdout and stderr read into their captures. A
//! stream is `None` once it is done (all written, end of file, or an error
//! that ends it).

use std::{
    io,
    os::fd::{AsFd, BorrowedFd, OwnedFd},
};

use rustix::{event::PollFlags, io::Errno};

use crate::{capture::Capture, pipes::Stdio};

/// The parent's ends of the child's stdio while the pump runs.
#[derive(Debug)]
pub(crate) struct Streams<'a> {
    stdin: Option<Feed<'a>>,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    /// What was read from stdout.
    pub(crate) out: Capture,
    /// What was read from stderr.
    pub(crate) err: Capture,
}

/// The stdin pipe and the part of the input not written yet.
#[derive(Debug)]
struct Feed<'a> {
    pipe: OwnedFd,
    rest: &'a [u8],
}

/// Which stream a descriptor to poll belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdin,
    Stdout,
    Stderr,
}

impl<'a> Streams<'a> {
    /// The parent's ends of `stdio`; `input` is written to stdin (an empty
    /// input closes it at once, so the child reads end of file).
    pub(crate) fn new(stdio: Stdio, input: &'a [u8], out: Capture, err: Capture) -> Streams<'a> {
        let stdin =
            stdio.stdin.filter(|_| !input.is_empty()).map(|pipe| Feed { pipe, rest: input });
        Streams { stdin, stdout: Some(stdio.stdout), stderr: Some(stdio.stderr), out, err }
    }

    /// Returns true if and only if stdout or stderr has not reached end of
    /// file: something (the child, or what it left behind) holds it open.
    pub(crate) fn output_open(&self) -> bool {
        self.stdout.is_some() || self.stderr.is_some()
    }

    /// Stops writing stdin.
    pub(crate) fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The open streams' descriptors and the events to poll them for.
    pub(crate) fn to_poll(&self) -> impl Iterator<Item = (Stream, BorrowedFd<'_>, PollFlags)> {
        let stdin = self.stdin.as_ref().map(|f| (Stream::Stdin, f.pipe.as_fd(), PollFlags::OUT));
        let stdout = self.stdout.as_ref().map(|f| (Stream::Stdout, f.as_fd(), PollFlags::IN));
        let stderr = self.stderr.as_ref().map(|f| (Stream::Stderr, f.as_fd(), PollFlags::IN));
        [stdin, stdout, stderr].into_iter().flatten()
    }

    /// Serves a stream that poll reported ready.
    pub(crate) fn serve(&mut self, stream: Stream) {
        match stream {
            Stream::Stdin => {
                if self.stdin.as_mut().is_some_and(Feed::write) {
                    self.stdin = None;
                }
            }
            Stream::Stdout => drain(&mut self.stdout, &mut self.out),
            Stream::Stderr => drain(&mut self.stderr, &mut self.err),
        }
    }
}

impl Feed<'_> {
    /// Writes what the pipe takes. Returns true when stdin is done: all
    /// written, or the reader is gone (EPIPE, ignored as libvirt does).
    fn write(&mut self) -> bool {
        while !self.rest.is_empty() {
            match rustix::io::write(&self.pipe, self.rest) {
                Ok(n) => self.rest = &self.rest[n..],
                Err(Errno::AGAIN) => return false,
                Err(Errno::INTR) => {}
                Err(err) => {
                    log::debug!("child closed stdin early: {}", io::Error::from(err));
                    return true;
                }
            }
        }
        true
    }
}

/// Reads what is there into `capture`; closes the stream at end of file (or
/// on an error).
fn drain(stream: &mut Option<OwnedFd>, capture: &mut Capture) {
    let Some(fd) = stream.as_ref() else { return };
    loop {
        match capture.read_from(fd.as_fd()) {
            Ok((0, _)) => break,
            Ok((_, true)) => return,
            Ok((_, false)) => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => {
                log::debug!("reading a child's output: {err}");
                break;
            }
        }
    }
    *stream = None;
}
