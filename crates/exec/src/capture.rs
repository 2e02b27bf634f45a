//! [`Capture`]: one output stream, kept up to a limit.

use std::{io, os::fd::BorrowedFd};

use rustix::buffer::spare_capacity;

/// A captured output stream: at most its limit is kept; what comes beyond
/// it is still read (so the child never blocks on a full pipe) and dropped,
/// and [`truncated`](Capture::truncated) says so.
///
/// ```
/// let mut capture = virt_hooks_exec::Capture::new(4);
/// capture.push(b"abc");
/// capture.push(b"def");
/// assert_eq!((capture.data.as_slice(), capture.truncated), (&b"abcd"[..], true));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capture {
    /// The bytes kept, at most the limit.
    pub data: Vec<u8>,
    /// True if and only if the stream was longer than the limit and was
    /// cut.
    pub truncated: bool,
    limit: usize,
}

/// The read size when there is no spare capacity to read into.
const PROBE: usize = 4096;

impl Capture {
    /// An empty capture that keeps at most `limit` bytes.
    pub fn new(limit: usize) -> Capture {
        Capture { data: Vec::new(), truncated: false, limit }
    }

    /// A capture with room for `expected` bytes (at most the limit)
    /// allocated up front, so that output of that size is read straight into
    /// place, with no reallocation.
    pub(crate) fn with_expected(limit: usize, expected: usize) -> Capture {
        Capture { data: Vec::with_capacity(expected.min(limit)), truncated: false, limit }
    }

    /// The most bytes kept.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Appends what of `chunk` fits under the limit; the rest is dropped and
    /// the capture marked truncated.
    pub fn push(&mut self, chunk: &[u8]) {
        let room = self.limit.saturating_sub(self.data.len());
        let keep = chunk.len().min(room);
        if chunk.len() > room {
            self.truncated = true;
        }
        self.grow_for(keep);
        self.data.extend_from_slice(&chunk[..keep]);
    }

    /// Makes room for `more` bytes, doubling as a `Vec` does but never past
    /// the limit: the spare capacity is then always room under the limit,
    /// and [`read_from`](Capture::read_from) can read straight into it.
    fn grow_for(&mut self, more: usize) {
        let len = self.data.len();
        if self.data.capacity() - len >= more {
            return;
        }
        let target = (self.data.capacity() * 2).max(len + more).min(self.limit);
        self.data.reserve_exact(target - len);
    }

    /// One read from `fd`. Straight into the spare capacity when there is
    /// some (and it is all room under the limit); otherwise through a small
    /// probe buffer, so that end of file allocates nothing and data beyond
    /// the limit is dropped. Returns the bytes read and whether the read
    /// was short (the pipe is empty for now).
    pub(crate) fn read_from(&mut self, fd: BorrowedFd<'_>) -> io::Result<(usize, bool)> {
        let room = self.limit.saturating_sub(self.data.len());
        let spare = self.data.capacity() - self.data.len();
        if spare > 0 && spare <= room {
            let n = rustix::io::read(fd, spare_capacity(&mut self.data))?;
            return Ok((n, n < spare));
        }
        let mut probe = [0u8; PROBE];
        let n = rustix::io::read(fd, &mut probe)?;
        // `push` grows the vector by doubling (up to the limit): the next
        // reads have spare capacity again.
        self.push(&probe[..n]);
        Ok((n, n < PROBE))
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn push_keeps_the_limit_and_marks_the_cut() {
        let mut c = Capture::new(5);
        c.push(b"ab");
        assert!(!c.truncated);
        c.push(b"cde");
        assert_eq!((c.data.as_slice(), c.truncated), (&b"abcde"[..], false), "exactly full");
        c.push(b"");
        assert!(!c.truncated, "an empty chunk is not a cut");
        c.push(b"f");
        assert_eq!((c.data.as_slice(), c.truncated), (&b"abcde"[..], true));
    }

    #[test]
    fn a_zero_limit_keeps_nothing() {
        let mut c = Capture::new(0);
        c.push(b"x");
        assert!(c.data.is_empty() && c.truncated);
    }

    #[test]
    fn growth_never_passes_the_limit() {
        let mut c = Capture::new(10_000);
        for _ in 0..100 {
            c.push(&[7; 999]);
            assert!(c.data.capacity() <= 10_000, "{}", c.data.capacity());
        }
        assert_eq!(c.data.len(), 10_000);
    }

    #[test]
    fn reads_stop_at_the_limit_even_with_a_reserve_beyond_it() {
        let (r, w) = crate::pipes::nonblocking_pipe().expect("pipe");
        rustix::io::write(&w, &[1; 3000]).expect("write");
        drop(w);
        let mut c = Capture::with_expected(1000, 5000);
        assert_eq!(c.data.capacity(), 1000, "the reserve is capped by the limit");
        let mut total = 0;
        loop {
            let (n, _) = c.read_from(r.as_fd()).expect("read");
            if n == 0 {
                break;
            }
            total += n;
        }
        assert_eq!((total, c.data.len(), c.truncated), (3000, 1000, true));
    }
}
