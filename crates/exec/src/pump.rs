//! The pump: one `poll` loop that feeds stdin, reads stdout and stderr,
//! learns of the child's exit and enforces the limits, until the child is
//! reaped and its output is done.
//!
//! It watches up to five descriptors (stdin, stdout, stderr, the pidfd, the
//! cancel pipe) and three kinds of deadline, so every limit is a deadline
//! or a counter rather than a change of structure. The parts:
//!
//! * [`Streams`]: the three pipes, and the captures with their caps;
//! * [`Child`]: the pidfd and the reaping;
//! * [`Deadlines`] and [`Stop`]: the timeout (SIGTERM to the group, SIGKILL
//!   after the grace period), the drain window after the exit;
//! * [`Tree`]: every descendant, signalled by pid, frozen and killed, and
//!   reported when it outlives the child.
//!
//! A cancellation stops the child as a timeout does. Once the child is
//! reaped, its descendants still alive are listed (one scan of `/proc`)
//! and, if the limits say so, killed; after a timeout or a cancellation
//! they are always killed.

use std::{
    io,
    os::fd::BorrowedFd,
    path::Path,
    time::{Duration, Instant},
};

use rustix::{
    event::{PollFd, PollFlags, Timespec},
    process::Signal,
};

use crate::{
    Limits,
    child::Child,
    deadlines::{Deadlines, Stop, Tick},
    finished::Leftovers,
    streams::{Stream, Streams},
    tree::Tree,
};

/// The longest single poll: a deadline further away is reached in several.
const MAX_POLL: Duration = Duration::from_secs(3600);
/// The most descriptors polled: stdin, stdout, stderr, the pidfd, the
/// cancel pipe.
const WATCHES: usize = 5;

/// What the pump hands back.
#[derive(Debug)]
pub(crate) struct Pumped<'a> {
    pub(crate) child: Child,
    pub(crate) streams: Streams<'a>,
    pub(crate) timed_out: bool,
    pub(crate) cancelled: bool,
    pub(crate) leftovers: Option<Leftovers>,
    pub(crate) killed: Vec<u32>,
}

/// How the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The child was reaped and its output is done.
    Done,
    /// The child was reaped, but its output was still held open when the
    /// drain window closed (or a cancellation cut the drain short).
    LeftBehind,
}

/// A descriptor the loop polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Watch {
    Stream(Stream),
    Exit,
    Cancel,
}

/// The pump's state: the parts, and how far stopping the child has gone.
#[derive(Debug)]
struct Pump<'a> {
    program: &'a Path,
    limits: &'a Limits,
    child: Child,
    tree: Tree,
    streams: Streams<'a>,
    /// The cancel pipe, until it fired once (it stays readable).
    cancel: Option<BorrowedFd<'a>>,
    deadlines: Deadlines,
    stop: Stop,
    timed_out: bool,
    cancelled: bool,
    /// Every pid signalled to stop the child.
    killed: Vec<u32>,
}

/// Runs `child` to its end.
pub(crate) fn pump<'a>(
    program: &'a Path,
    child: Child,
    tree: Tree,
    streams: Streams<'a>,
    limits: &'a Limits,
    cancel: Option<BorrowedFd<'a>>,
    start: Instant,
) -> Pumped<'a> {
    let deadlines = Deadlines::new(start, limits);
    let pump = Pump {
        program,
        limits,
        child,
        tree,
        streams,
        cancel,
        deadlines,
        stop: Stop::Running,
        timed_out: false,
        cancelled: false,
        killed: Vec::new(),
    };
    pump.run()
}

impl<'a> Pump<'a> {
    fn run(mut self) -> Pumped<'a> {
        let end = loop {
            if let Some(end) = self.settled() {
                break end;
            }
            let next = match self.clock() {
                Ok(next) => next,
                Err(end) => break end,
            };
            let ready = match self.poll(next) {
                Ok(ready) => ready,
                Err(err) => break self.poll_failed(&err),
            };
            if let Some(end) = self.serve(&ready) {
                break end;
            }
        };
        self.finish(end)
    }

    /// The loop's exit test: the child reaped and its output done.
    fn settled(&mut self) -> Option<End> {
        if !self.child.observable() && !self.streams.output_open() {
            // No pidfd (old kernel): wait for the exit after end of file.
            self.child.reap();
        }
        if self.child.exited_at().is_some() && !self.streams.output_open() {
            // Nothing reads what is left of the input: stop writing it.
            self.streams.close_stdin();
            return Some(End::Done);
        }
        None
    }

    /// Acts on every deadline that is due; returns the next one.
    fn clock(&mut self) -> Result<Option<Instant>, End> {
        loop {
            match self.deadlines.tick(Instant::now(), self.stop, self.child.exited_at()) {
                Tick::Wait(next) => return Ok(next),
                Tick::TimedOut => {
                    log::warn!(
                        "{} (pid {}) timed out; sending SIGTERM to it and its descendants",
                        self.program.display(),
                        self.child.pid().as_raw_nonzero()
                    );
                    self.timed_out = true;
                    self.terminate();
                }
                Tick::GraceOver => self.kill(),
                Tick::DrainOver => return Err(End::LeftBehind),
            }
        }
    }

    /// One `poll` until `next` (forever if `None`); what is ready, in the
    /// order of the watches. EINTR is nothing ready.
    fn poll(&self, next: Option<Instant>) -> io::Result<[Option<Watch>; WATCHES]> {
        let streams = self.streams.to_poll().map(|(s, fd, ev)| (Watch::Stream(s), fd, ev));
        let exit = self.child.exit_fd().map(|fd| (Watch::Exit, fd, PollFlags::IN));
        let cancel = self.cancel.map(|fd| (Watch::Cancel, fd, PollFlags::IN));
        let mut watches = [None; WATCHES];
        let mut fds = Vec::with_capacity(WATCHES);
        for (slot, (watch, fd, events)) in watches.iter_mut().zip(streams.chain(exit).chain(cancel))
        {
            *slot = Some(watch);
            fds.push(PollFd::from_borrowed_fd(fd, events));
        }
        let timeout = next.map(|at| timespec(at.saturating_duration_since(Instant::now())));
        match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => return Ok([None; WATCHES]),
            Err(err) => return Err(err.into()),
        }
        let mut ready = [None; WATCHES];
        for (slot, (fd, watch)) in ready.iter_mut().zip(fds.iter().zip(watches)) {
            if !fd.revents().is_empty() {
                *slot = watch;
            }
        }
        Ok(ready)
    }

    /// Serves what poll reported ready, in order: the streams, the exit,
    /// the cancellation.
    fn serve(&mut self, ready: &[Option<Watch>]) -> Option<End> {
        for &watch in ready.iter().flatten() {
            match watch {
                Watch::Stream(stream) => self.streams.serve(stream),
                Watch::Exit => self.child.reap(),
                Watch::Cancel => {
                    // The cancel pipe stays readable: watch it once.
                    self.cancel = None;
                    if self.child.exited_at().is_some() {
                        // Only the drain is left: stop it now.
                        let open = self.streams.output_open();
                        return Some(if open { End::LeftBehind } else { End::Done });
                    }
                    log::info!(
                        "{} (pid {}) cancelled; sending SIGTERM to it and its descendants",
                        self.program.display(),
                        self.child.pid().as_raw_nonzero()
                    );
                    self.cancelled = true;
                    if self.stop == Stop::Running {
                        self.terminate();
                    }
                }
            }
        }
        None
    }

    /// Only EFAULT, EINVAL or ENOMEM: nothing sensible is left to do but to
    /// stop the child.
    fn poll_failed(&mut self, err: &io::Error) -> End {
        log::error!("poll failed while running {}: {err}", self.program.display());
        self.kill();
        self.child.reap();
        End::Done
    }

    /// Returns true if and only if the child is not reaped yet (its pid is
    /// still its own).
    fn child_alive(&self) -> bool {
        self.child.exited_at().is_none()
    }

    fn terminate(&mut self) {
        let signalled = self.tree.signal_all(Signal::TERM, self.child_alive());
        self.note_killed(signalled);
        self.stop = Stop::Terminating(Instant::now());
    }

    fn kill(&mut self) {
        let killed = self.tree.kill_all(self.child_alive());
        self.note_killed(killed);
        self.stop = Stop::Killed;
    }

    fn note_killed(&mut self, pids: Vec<u32>) {
        for pid in pids {
            if !self.killed.contains(&pid) {
                self.killed.push(pid);
            }
        }
    }

    /// After the loop: every descendant still alive is a leftover, reported
    /// and, if the limits say so, killed. Once the child was timed out or
    /// cancelled, the whole tree is killed (the child may have exited on
    /// SIGTERM before the grace ended, leaving processes that ignore it)
    /// and gone before the run returns.
    fn finish(mut self, end: End) -> Pumped<'a> {
        let doomed = self.stop != Stop::Running;
        let (count, processes) = self.tree.survivors();
        let held_output = end == End::LeftBehind;
        let mut leftovers = (held_output || count > 0).then(|| Leftovers {
            pgid: self.child.pid().as_raw_nonzero().get().unsigned_abs(),
            count,
            processes,
            held_output,
            killed: false,
        });
        if doomed {
            self.kill();
        }
        if let Some(left) = &mut leftovers {
            if !doomed && self.limits.kill_leftovers && left.count > 0 {
                self.tree.kill_all(false);
            }
            left.killed = left.count > 0 && (doomed || self.limits.kill_leftovers);
            self.report(left);
        }
        Pumped {
            child: self.child,
            streams: self.streams,
            timed_out: self.timed_out,
            cancelled: self.cancelled,
            leftovers,
            killed: self.killed,
        }
    }

    fn report(&self, left: &Leftovers) {
        let list: Vec<String> =
            left.processes.iter().map(|p| format!("{} ({})", p.pid, p.cmdline)).collect();
        let more = left.count.saturating_sub(left.processes.len());
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        let what = if left.count > 0 {
            format!(
                "{} process(es) it started are still running: {}{more}",
                left.count,
                list.join(", ")
            )
        } else {
            "its output is held open by a process outside its tree".to_owned()
        };
        let fate = match (left.killed, left.count) {
            (false, _) => String::new(),
            (true, 1) => "; killed it".to_owned(),
            (true, n) => format!("; killed all {n}"),
        };
        log::warn!("{} (pid {}) exited but {what}{fate}", self.program.display(), left.pgid);
    }
}

/// `wait` as a poll timeout, at most [`MAX_POLL`].
fn timespec(wait: Duration) -> Timespec {
    let wait = wait.min(MAX_POLL);
    let secs = i64::try_from(wait.as_secs()).unwrap_or(i64::MAX);
    Timespec { tv_sec: secs, tv_nsec: wait.subsec_nanos().into() }
}
