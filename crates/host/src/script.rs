//! Running one hook script: spawn it, feed stdin while reading stdout and
//! stderr, wait for its exit, all in one `poll` loop.
//!
//! The loop watches up to four descriptors (stdin, stdout, stderr, the
//! pidfd) and a small set of deadlines, so every limit is a deadline or a
//! counter rather than a change of structure:
//!
//! * the script's timeout: SIGTERM to its process group, then SIGKILL after
//!   the grace period;
//! * the drain window: once the script has exited, how long its output pipes
//!   (held open by processes it left behind) are still read;
//! * the capture limits: bytes beyond them are read and dropped, and the
//!   capture is marked truncated;
//! * a cancellation: the same SIGTERM, grace, SIGKILL as a timeout.
//!
//! When the drain window ends with the pipes still open, the processes left
//! in the script's group are counted (a scan of `/proc`, only then) and,
//! under [`LeftoverPolicy::Kill`], killed.

use std::{
    ffi::{CStr, CString, OsStr},
    fs::{self, File},
    io::{self, Read, Write},
    os::{
        fd::{AsFd, AsRawFd, BorrowedFd},
        unix::{ffi::OsStrExt, fs::PermissionsExt},
    },
    path::Path,
    time::{Duration, Instant},
};

use crate::{
    config::LeftoverPolicy,
    message,
    outcome::{Leftovers, ScriptStatus},
    spawn::{self, SigPipeGuard, SpawnError, WaitStatus},
};

/// The limits one script runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Kill the process group after this long; `None` never.
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
    /// What happens to processes still holding the output after the drain
    /// window.
    pub(crate) leftovers: LeftoverPolicy,
    /// Block SIGPIPE while stdin is written ([`SigPipeGuard`]). Not needed
    /// when the host ignores SIGPIPE (Rust programs do by default).
    pub(crate) sigpipe_guard: bool,
    /// A filter: the script's stdout is expected to be about as long as its
    /// input, so that much is reserved for it up front.
    pub(crate) filter: bool,
}

/// A captured stream.
#[derive(Debug, Default)]
pub(crate) struct Capture {
    pub(crate) data: Vec<u8>,
    pub(crate) truncated: bool,
    limit: usize,
}

impl Capture {
    fn new(limit: usize) -> Capture {
        Capture { data: Vec::new(), truncated: false, limit }
    }

    /// A capture with room for `expected` bytes (at most the limit)
    /// allocated up front, so that output of that size is read straight into
    /// place, with no reallocation.
    fn with_expected(limit: usize, expected: usize) -> Capture {
        Capture { data: Vec::with_capacity(expected.min(limit)), truncated: false, limit }
    }

    fn push(&mut self, chunk: &[u8]) {
        let room = self.limit.saturating_sub(self.data.len());
        if chunk.len() > room {
            self.truncated = true;
        }
        self.data.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }

    /// One read from `f`. Straight into the spare capacity when there is
    /// some (and room under the limit); otherwise through a small probe
    /// buffer, so that end of file allocates nothing and data beyond the
    /// limit is dropped. Returns the bytes read and whether the read was
    /// short (the pipe is empty for now).
    fn read_from(&mut self, f: &File) -> io::Result<(usize, bool)> {
        let room = self.limit.saturating_sub(self.data.len());
        let spare = self.data.capacity() - self.data.len();
        if room > 0 && spare > 0 {
            let want = spare.min(room);
            let n = spawn::read_spare(f.as_fd(), &mut self.data, want)?;
            return Ok((n, n < want));
        }
        let mut probe = [0u8; PROBE];
        let n = spawn::read(f.as_fd(), &mut probe)?;
        // `push` grows the vector by doubling: the next reads have spare
        // capacity again.
        self.push(&probe[..n]);
        Ok((n, n < PROBE))
    }
}

/// The read size when there is no spare capacity to read into.
const PROBE: usize = 4096;

/// What happened to one script.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) status: ScriptStatus,
    pub(crate) stdout: Capture,
    pub(crate) stderr: Capture,
    pub(crate) duration: Duration,
    /// It ran out of time and its group was killed.
    pub(crate) timed_out: bool,
    /// A cancellation stopped it and its group was killed.
    pub(crate) cancelled: bool,
    /// Its pid, once spawned.
    pub(crate) pid: Option<u32>,
    /// Processes still holding its output open when the drain window ended.
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
            pid: None,
            leftovers: None,
            error: Some(error),
        }
    }
}

/// Runs `path` (`argv[0]` is the same path) with `envp` and `input`.
/// `cancel` becomes readable when the run is cancelled.
pub(crate) fn run(
    path: &Path,
    argv: &[CString],
    envp: &[CString],
    input: Option<&[u8]>,
    limits: &Limits,
    cancel: Option<BorrowedFd<'_>>,
) -> Finished {
    let start = Instant::now();
    let stdout = match input {
        Some(input) if limits.filter => Capture::with_expected(limits.stdout, input.len()),
        _ => Capture::new(limits.stdout),
    };
    let mut fin = Finished {
        status: ScriptStatus::NotStarted,
        stdout,
        stderr: Capture::new(limits.stderr),
        duration: Duration::ZERO,
        timed_out: false,
        cancelled: false,
        pid: None,
        leftovers: None,
        error: None,
    };
    let c_path: &CStr = &argv[0];
    match spawn::spawn(c_path, argv, envp, input.map(<[u8]>::len)) {
        Ok(child) => {
            fin.pid = u32::try_from(child.pid).ok();
            io_loop(child, input, limits, cancel, start, &mut fin);
        }
        Err(SpawnError::Exec(err)) => {
            // What libvirt's child does when exec fails.
            let code = if err.raw_os_error() == Some(libc::ENOENT) { 127 } else { 126 };
            let interpreter = bad_interpreter(path, &err);
            fin.status = ScriptStatus::Exited { code };
            fin.stderr.push(&message::exec_failure_stderr(path, &err, interpreter.as_deref()));
        }
        Err(SpawnError::Setup(err)) => fin.error = Some(message::not_started(path, &err)),
    }
    fin.duration = start.elapsed();
    fin
}

fn io_loop(
    child: spawn::Child,
    input: Option<&[u8]>,
    limits: &Limits,
    mut cancel: Option<BorrowedFd<'_>>,
    start: Instant,
    fin: &mut Finished,
) {
    let pgid = child.pid;
    let _sigpipe = input.filter(|_| limits.sigpipe_guard).map(|_| SigPipeGuard::new());
    let input = input.unwrap_or_default();
    let mut written = 0;
    let mut stdin = child.stdin.filter(|_| !input.is_empty());
    let mut stdout = Some(child.stdout);
    let mut stderr = Some(child.stderr);
    let mut pidfd = child.pidfd;
    let mut exited = false;
    let mut exited_at: Option<Instant> = None;
    let mut term_at: Option<Instant> = None;
    let mut killed = false;
    let kill_at = limits.timeout.map(|t| start + t);
    let mut left_behind = false;

    loop {
        if !exited && pidfd.is_none() && stdout.is_none() && stderr.is_none() {
            // No pidfd (old kernel): wait for the exit after end of file.
            reap(pgid, fin);
            exited = true;
        }
        if exited && stdout.is_none() && stderr.is_none() && stdin.is_none() {
            break;
        }

        // Deadlines.
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        let mut soonest = |at: Instant| next = Some(next.map_or(at, |n| n.min(at)));
        if let Some(at) = kill_at.filter(|_| term_at.is_none()) {
            if now >= at {
                log::warn!("hook script {} timed out; sending SIGTERM to its process group", pgid);
                fin.timed_out = true;
                spawn::kill_group(pgid, libc::SIGTERM);
                term_at = Some(now);
            } else {
                soonest(at);
            }
        }
        if let Some(term) = term_at.filter(|_| !killed) {
            if now >= term + limits.grace {
                spawn::kill_group(pgid, libc::SIGKILL);
                killed = true;
            } else {
                soonest(term + limits.grace);
            }
        }
        // After the exit, output is read for the drain window only. Once the
        // group was killed, use the window even in libvirt's wait-for-EOF
        // mode: whatever still holds the pipes escaped the group.
        let drain = limits.drain.or(killed.then_some(Duration::from_millis(500)));
        if let (Some(at), Some(window)) = (exited_at, drain) {
            if now >= at + window {
                left_behind = true;
                break;
            }
            soonest(at + window);
        }

        let mut fds = [NO_FD; 5];
        let slots = [
            stdin.as_ref().map(|f| (f.as_raw_fd(), libc::POLLOUT)),
            stdout.as_ref().map(|f| (f.as_raw_fd(), libc::POLLIN)),
            stderr.as_ref().map(|f| (f.as_raw_fd(), libc::POLLIN)),
            pidfd.as_ref().map(|f| (f.as_raw_fd(), libc::POLLIN)),
            cancel.map(|f| (f.as_raw_fd(), libc::POLLIN)),
        ];
        for (pfd, slot) in fds.iter_mut().zip(slots) {
            if let Some((fd, events)) = slot {
                *pfd = libc::pollfd { fd, events, revents: 0 };
            }
        }
        let timeout = next.map(|at| at.saturating_duration_since(Instant::now()));
        if let Err(err) = spawn::poll(&mut fds, timeout) {
            // Only EFAULT/EINVAL/ENOMEM: nothing sensible is left to do
            // but to stop the script.
            log::error!("poll failed while running a hook script: {err}");
            spawn::kill_group(pgid, libc::SIGKILL);
            if !exited {
                reap(pgid, fin);
            }
            break;
        }

        if fds[0].revents != 0
            && stdin.as_mut().is_some_and(|w| feed(w, &input[written..], &mut written))
        {
            stdin = None;
        }
        if fds[1].revents != 0 && drain_into(&mut stdout, &mut fin.stdout) {
            stdout = None;
        }
        if fds[2].revents != 0 && drain_into(&mut stderr, &mut fin.stderr) {
            stderr = None;
        }
        if fds[3].revents != 0 {
            pidfd = None;
            reap(pgid, fin);
            exited = true;
            exited_at = Some(Instant::now());
        }
        if fds[4].revents != 0 {
            // The cancel pipe stays readable: watch it once.
            cancel = None;
            if exited {
                // Only the drain is left: stop it now.
                left_behind = stdout.is_some() || stderr.is_some();
                break;
            }
            log::info!(
                "hook script (process group {pgid}) cancelled; sending SIGTERM to its group"
            );
            fin.cancelled = true;
            if term_at.is_none() {
                spawn::kill_group(pgid, libc::SIGTERM);
                term_at = Some(Instant::now());
            }
        }
        if exited && stdin.is_some() && stdout.is_none() && stderr.is_none() {
            // The script is gone and nothing reads its output: what is left
            // of the input has no reader worth waiting for.
            stdin = None;
        }
    }
    // Timed out or cancelled: the whole group goes, whatever the leftover
    // policy (the script may have exited on SIGTERM before the grace ended,
    // leaving processes that ignore it).
    let doomed = term_at.is_some();
    if left_behind {
        let policy = if doomed { LeftoverPolicy::Kill } else { limits.leftovers };
        fin.leftovers = Some(leftovers(pgid, policy));
    }
    if doomed {
        if !killed {
            spawn::kill_group(pgid, libc::SIGKILL);
        }
        wait_group_gone(pgid);
    }
}

/// SIGKILL is delivered asynchronously: waits, briefly and bounded, until no
/// live member of `pgid` is left, so that nothing the settings say to kill
/// is still running when the call returns. Only on the (rare) killed path:
/// it scans `/proc`.
fn wait_group_gone(pgid: libc::pid_t) {
    let until = Instant::now() + Duration::from_millis(500);
    while group_members(pgid) > 0 {
        if Instant::now() >= until {
            log::warn!("process group {pgid} still has members 500 ms after SIGKILL");
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Counts (and under the kill policy kills) the processes left in `pgid`.
fn leftovers(pgid: libc::pid_t, policy: LeftoverPolicy) -> Leftovers {
    let count = group_members(pgid);
    let killed =
        policy == LeftoverPolicy::Kill && count > 0 && spawn::kill_group(pgid, libc::SIGKILL);
    if killed {
        wait_group_gone(pgid);
    }
    let held_by = if count > 0 {
        format!("{count} process(es) it left behind in process group {pgid}")
    } else {
        format!("a process outside its process group {pgid}")
    };
    log::warn!(
        "hook script (pid {pgid}) exited but its output was still held open by {held_by}; \
         stopped reading{}",
        if killed { ", and killed the group" } else { "" }
    );
    Leftovers { pgid: u32::try_from(pgid).unwrap_or_default(), count, killed }
}

/// How many live (not zombie) processes are in process group `pgid`: a scan
/// of `/proc/<pid>/stat`, whose fifth field is the process group.
pub(crate) fn group_members(pgid: libc::pid_t) -> usize {
    let Ok(entries) = fs::read_dir("/proc") else { return 0 };
    let want = pgid.to_string();
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().as_bytes().iter().all(u8::is_ascii_digit))
        .filter_map(|e| fs::read(e.path().join("stat")).ok())
        .filter(|stat| {
            // "pid (comm) state ppid pgrp ...": comm may hold anything, so
            // split after its last ')'.
            let Some(close) = stat.iter().rposition(|&b| b == b')') else { return false };
            let mut fields = stat[close + 1..].split(|&b| b == b' ').filter(|f| !f.is_empty());
            let state = fields.next();
            let pgrp = fields.nth(1);
            state != Some(b"Z") && pgrp == Some(want.as_bytes())
        })
        .count()
}

const NO_FD: libc::pollfd = libc::pollfd { fd: -1, events: 0, revents: 0 };

/// Writes what the pipe takes. Returns true when stdin is done: all
/// written, or the reader is gone (EPIPE, ignored as libvirt does).
fn feed(w: &mut File, rest: &[u8], written: &mut usize) -> bool {
    let mut rest = rest;
    while !rest.is_empty() {
        match w.write(rest) {
            Ok(n) => {
                *written += n;
                rest = &rest[n..];
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return false,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => {
                log::debug!("child closed stdin early: {err}");
                return true;
            }
        }
    }
    true
}

/// Reads what is there. Returns true at end of file (or on an error).
fn drain_into(r: &mut Option<File>, cap: &mut Capture) -> bool {
    let Some(f) = r.as_ref() else { return true };
    loop {
        match cap.read_from(f) {
            Ok((0, _)) => return true,
            Ok((_, short)) => {
                if short {
                    return false;
                }
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return false,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => {
                log::debug!("reading a hook script's output: {err}");
                return true;
            }
        }
    }
}

fn reap(pid: libc::pid_t, fin: &mut Finished) {
    match spawn::wait(pid) {
        Ok(WaitStatus::Exited(code)) => fin.status = ScriptStatus::Exited { code },
        Ok(WaitStatus::Signaled(signal)) => fin.status = ScriptStatus::Signaled { signal },
        Ok(WaitStatus::Other(raw)) => fin.status = ScriptStatus::Invalid { raw },
        Err(err) => {
            fin.status = ScriptStatus::NotStarted;
            fin.error = Some(format!(
                "Hook script execution failed: cannot wait for process {pid}: {}",
                message::strerror(&err)
            ));
        }
    }
}

/// For an exec failure of a script that exists: the `#!` interpreter, if it
/// is what is missing or unusable.
fn bad_interpreter(path: &Path, err: &io::Error) -> Option<Vec<u8>> {
    if !matches!(err.raw_os_error(), Some(libc::ENOENT | libc::EACCES)) {
        return None;
    }
    let mut head = [0u8; 256];
    let n = File::open(path).and_then(|mut f| f.read(&mut head)).ok()?;
    let line = head[..n].strip_prefix(b"#!")?;
    let line = &line[line.iter().position(|b| !matches!(b, b' ' | b'\t'))?..];
    let end = line.iter().position(|b| matches!(b, b' ' | b'\t' | b'\n')).unwrap_or(line.len());
    let interp = &line[..end];
    let usable = fs::metadata(OsStr::from_bytes(interp))
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    (!usable).then(|| interp.to_vec())
}
