//! The only module with `unsafe` code: raw `posix_spawn`, `pidfd_open`,
//! `poll`, `waitpid`, `kill` and the SIGPIPE guard, each behind a small safe
//! function.
//!
//! Why `posix_spawn` and not `fork` or `std::process::Command` with
//! `pre_exec`: glibc implements it with `clone(CLONE_VM | CLONE_VFORK)`, so
//! the cost of a spawn does not grow with the host's memory, and the file
//! actions and attributes below give the hook exactly libvirt's process
//! state: only fds 0, 1 and 2 open (`addclosefrom_np(3)`, so fds the host
//! leaked without close-on-exec are closed too), an empty signal mask, every
//! signal at its default disposition. Each hook also gets its own process
//! group (`POSIX_SPAWN_SETPGROUP` with 0), so a timeout can kill the whole
//! tree it started.
#![allow(unsafe_code)]

use std::{
    ffi::{CStr, CString, c_char},
    fs::File,
    io,
    mem::MaybeUninit,
    os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd},
    ptr,
    time::Duration,
};

/// A started hook process and the parent's ends of its pipes.
#[derive(Debug)]
pub(crate) struct Child {
    /// Its pid, which is also its process group id.
    pub(crate) pid: libc::pid_t,
    /// A pidfd for it, readable once it has exited; `None` on kernels
    /// without `pidfd_open` (before 5.3).
    pub(crate) pidfd: Option<OwnedFd>,
    /// The write end of its stdin pipe; `None` when stdin is `/dev/null`.
    pub(crate) stdin: Option<File>,
    /// The read end of its stdout pipe (non-blocking).
    pub(crate) stdout: File,
    /// The read end of its stderr pipe (non-blocking).
    pub(crate) stderr: File,
}

/// Why no hook process is running.
#[derive(Debug)]
pub(crate) enum SpawnError {
    /// The child was created but could not execute the script (glibc
    /// reports the exec errno and has already reaped the child).
    Exec(io::Error),
    /// Nothing was started: a pipe, `/dev/null` or the spawn attributes
    /// could not be set up.
    Setup(io::Error),
}

/// Starts `path` with `argv` and exactly the environment `envp`.
///
/// stdin is a pipe when `stdin_len` is given (the document's size),
/// otherwise `/dev/null`; stdout and stderr are pipes. Every fd created here
/// is close-on-exec, and the parent's ends are non-blocking. For a document
/// of [`BIG_DOCUMENT`] or more, the stdin and stdout pipes are enlarged to
/// [`BIG_PIPE`] (best effort), so the document moves in fewer, larger
/// chunks.
pub(crate) fn spawn(
    path: &CStr,
    argv: &[CString],
    envp: &[CString],
    stdin_len: Option<usize>,
) -> Result<Child, SpawnError> {
    let big = stdin_len.is_some_and(|n| n >= BIG_DOCUMENT);
    let (stdin_child, stdin_parent) = if stdin_len.is_some() {
        let (r, w) = pipe().map_err(SpawnError::Setup)?;
        if big {
            enlarge(w.as_fd());
        }
        (r, Some(w))
    } else {
        let null = File::open("/dev/null").map_err(SpawnError::Setup)?;
        (above_stdio(OwnedFd::from(null)).map_err(SpawnError::Setup)?, None)
    };
    let (stdout_parent, stdout_child) = pipe().map_err(SpawnError::Setup)?;
    if big {
        enlarge(stdout_parent.as_fd());
    }
    let (stderr_parent, stderr_child) = pipe().map_err(SpawnError::Setup)?;
    for fd in
        [Some(&stdout_parent), Some(&stderr_parent), stdin_parent.as_ref()].into_iter().flatten()
    {
        set_nonblocking(fd.as_fd()).map_err(SpawnError::Setup)?;
    }

    let argv_ptrs = null_terminated(argv);
    let envp_ptrs = null_terminated(envp);
    let actions = FileActions::new(&[
        (stdin_child.as_raw_fd(), 0),
        (stdout_child.as_raw_fd(), 1),
        (stderr_child.as_raw_fd(), 2),
    ])
    .map_err(SpawnError::Setup)?;
    let attrs = SpawnAttrs::new().map_err(SpawnError::Setup)?;

    let mut pid: libc::pid_t = 0;
    // SAFETY: `path`, `argv_ptrs` and `envp_ptrs` are NUL-terminated strings
    // and NULL-terminated pointer arrays that outlive the call (the CStrings
    // they point into are borrowed for the whole function); `actions` and
    // `attrs` were initialised by their constructors and are destroyed only
    // when dropped, after this call. posix_spawn does not write through argv
    // or envp despite the `*mut` in its signature.
    let rc = unsafe {
        libc::posix_spawn(
            &mut pid,
            path.as_ptr(),
            &actions.raw,
            &attrs.raw,
            argv_ptrs.as_ptr().cast::<*mut c_char>(),
            envp_ptrs.as_ptr().cast::<*mut c_char>(),
        )
    };
    drop((stdin_child, stdout_child, stderr_child));
    if rc != 0 {
        return Err(SpawnError::Exec(io::Error::from_raw_os_error(rc)));
    }
    Ok(Child {
        pid,
        pidfd: pidfd_open(pid),
        stdin: stdin_parent.map(File::from),
        stdout: File::from(stdout_parent),
        stderr: File::from(stderr_parent),
    })
}

fn null_terminated(strings: &[CString]) -> Vec<*const c_char> {
    strings.iter().map(|s| s.as_ptr()).chain(std::iter::once(ptr::null())).collect()
}

/// A close-on-exec pipe, both ends at fd 3 or above: `(read, write)`.
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    // `pipe2` and not `std::io::pipe`: that needs Rust 1.87, and the
    // workspace builds with 1.85 (its `rust-version`).
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` is a writable array of two ints, as pipe2 requires.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both are new open descriptors that nobody
    // else owns.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((above_stdio(r)?, above_stdio(w)?))
}

/// Moves `fd` to 3 or above, so that the `dup2` file actions onto 0, 1 and 2
/// can never overwrite one another (a host that closed its own stdio would
/// otherwise get pipes at 0..2).
fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: `fd` is an open descriptor owned by us; F_DUPFD_CLOEXEC only
    // creates a new descriptor.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` was just returned by fcntl and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// From this size of input document on, the pipes are enlarged.
pub(crate) const BIG_DOCUMENT: usize = 1 << 20;
/// The size big documents' pipes get: the default `pipe-max-size`.
const BIG_PIPE: libc::c_int = 1 << 20;

/// `F_SETPIPE_SZ` to [`BIG_PIPE`], best effort: a user over its pipe
/// quota (`pipe-user-pages-soft`) keeps the default 64 KiB.
fn enlarge(fd: BorrowedFd<'_>) {
    // SAFETY: F_SETPIPE_SZ on a pipe descriptor we borrow for the call; it
    // takes an int and touches no memory of ours.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, BIG_PIPE) } < 0 {
        log::debug!("cannot enlarge a pipe: {}", io::Error::last_os_error());
    }
}

/// Makes the parent's end of a pipe non-blocking with one `F_SETFL`: the
/// pipe was just created with no status flag (`O_CLOEXEC` is a descriptor
/// flag, and `F_SETFL` ignores the access mode), so there is nothing to
/// read first. Each end of a pipe is its own open file description, so the
/// child's end stays blocking.
fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: F_SETFL on a descriptor we borrow for the call, setting
    // O_NONBLOCK only.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// One `read` from `fd` into the spare capacity of `buf`, at most `max`
/// bytes; the bytes read are appended to `buf`. No zeroed intermediate
/// buffer: the kernel writes straight into place.
pub(crate) fn read_spare(fd: BorrowedFd<'_>, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    let len = spare.len().min(max);
    // SAFETY: `spare` is writable memory owned by `buf`, at least `len`
    // bytes long, and borrowed exclusively for the call; read(2) writes at
    // most `len` bytes into it. Uninitialised memory is fine to write to.
    let n = unsafe { libc::read(fd.as_raw_fd(), spare.as_mut_ptr().cast(), len) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    // SAFETY: the kernel initialised the first `n` bytes of the spare
    // capacity (`n <= len <= spare capacity`), so they are now part of the
    // vector's initialised contents.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// One `read` from `fd` into `buf`.
pub(crate) fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a valid, exclusively borrowed slice of the length
    // passed.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
}

/// Returns true if and only if SIGPIPE is ignored in this process (then a
/// write to a pipe whose reader is gone only fails with EPIPE, and no
/// [`SigPipeGuard`] is needed). One `sigaction` query.
pub(crate) fn sigpipe_ignored() -> bool {
    let mut old = MaybeUninit::<libc::sigaction>::uninit();
    // SAFETY: a NULL new action only queries; `old` is valid memory for
    // the kernel to fill.
    let rc = unsafe { libc::sigaction(libc::SIGPIPE, ptr::null(), old.as_mut_ptr()) };
    if rc != 0 {
        return false;
    }
    // SAFETY: sigaction succeeded, so it filled `old`.
    let old = unsafe { old.assume_init() };
    old.sa_sigaction == libc::SIG_IGN
}

/// `posix_spawn_file_actions_t`: the `dup2`s onto 0, 1, 2, then
/// `closefrom(3)`.
struct FileActions {
    raw: libc::posix_spawn_file_actions_t,
}

impl FileActions {
    fn new(dups: &[(RawFd, RawFd)]) -> io::Result<FileActions> {
        let mut raw = MaybeUninit::<libc::posix_spawn_file_actions_t>::uninit();
        // SAFETY: init writes the whole object into valid memory.
        check(unsafe { libc::posix_spawn_file_actions_init(raw.as_mut_ptr()) })?;
        // SAFETY: init succeeded, so the object is initialised. It holds no
        // pointer to itself, so moving it is fine. From here `Drop`
        // destroys it, also on the error paths below.
        let mut actions = FileActions { raw: unsafe { raw.assume_init() } };
        for &(from, to) in dups {
            // SAFETY: `actions.raw` is initialised; the fds are plain
            // integers recorded for the child.
            check(unsafe { libc::posix_spawn_file_actions_adddup2(&mut actions.raw, from, to) })?;
        }
        // SAFETY: as above; glibc >= 2.34 provides this function.
        check(unsafe { libc::posix_spawn_file_actions_addclosefrom_np(&mut actions.raw, 3) })?;
        Ok(actions)
    }
}

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: `raw` was initialised by posix_spawn_file_actions_init
        // (a FileActions exists only after that succeeded).
        unsafe { libc::posix_spawn_file_actions_destroy(&mut self.raw) };
    }
}

/// `posix_spawnattr_t`: empty signal mask, every signal to its default, a
/// new process group.
struct SpawnAttrs {
    raw: libc::posix_spawnattr_t,
}

impl SpawnAttrs {
    fn new() -> io::Result<SpawnAttrs> {
        let mut raw = MaybeUninit::<libc::posix_spawnattr_t>::uninit();
        // SAFETY: init writes the whole object into valid memory.
        check(unsafe { libc::posix_spawnattr_init(raw.as_mut_ptr()) })?;
        // SAFETY: init succeeded, so the object is initialised; it holds no
        // pointer to itself, so moving it is fine.
        let mut attrs = SpawnAttrs { raw: unsafe { raw.assume_init() } };
        let empty = sigset(false);
        let full = every_signal();
        let flags = libc::POSIX_SPAWN_SETSIGMASK
            | libc::POSIX_SPAWN_SETSIGDEF
            | libc::POSIX_SPAWN_SETPGROUP;
        // SAFETY: `attrs.raw` is initialised; the sigsets are initialised
        // values that the calls copy.
        unsafe {
            check(libc::posix_spawnattr_setsigmask(&mut attrs.raw, &empty))?;
            check(libc::posix_spawnattr_setsigdefault(&mut attrs.raw, &full))?;
            check(libc::posix_spawnattr_setpgroup(&mut attrs.raw, 0))?;
            check(libc::posix_spawnattr_setflags(&mut attrs.raw, flags as libc::c_short))?;
        }
        Ok(attrs)
    }
}

impl Drop for SpawnAttrs {
    fn drop(&mut self) {
        // SAFETY: `raw` was initialised by posix_spawnattr_init.
        unsafe { libc::posix_spawnattr_destroy(&mut self.raw) };
    }
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(rc)) }
}

/// An empty or a full signal set.
fn sigset(full: bool) -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset/sigfillset initialise the whole set and cannot
    // fail for a valid pointer.
    unsafe {
        if full {
            libc::sigfillset(set.as_mut_ptr());
        } else {
            libc::sigemptyset(set.as_mut_ptr());
        }
        set.assume_init()
    }
}

/// Every signal, including the two glibc keeps for itself (32 and 33),
/// which `sigfillset` leaves out. Without them in the "set to default" set,
/// glibc's `posix_spawn` leaves them ignored in the child, and the hook
/// would see `SigIgn: 0000000180000000` where libvirt's show all zeros.
fn every_signal() -> libc::sigset_t {
    let mut set = sigset(true);
    // SAFETY: on Linux, glibc's sigset_t is an array of unsigned long where
    // signal n is bit n - 1; its first word covers signals 1 to 64 (on
    // 32-bit targets the first two words, hence the u32 writes), and every
    // one of them is a valid signal to reset in the child.
    unsafe {
        let words = (&mut set as *mut libc::sigset_t).cast::<u32>();
        *words = u32::MAX;
        *words.add(1) = u32::MAX;
    }
    set
}

fn pidfd_open(pid: libc::pid_t) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new
    // close-on-exec descriptor or -1; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        log::debug!("pidfd_open({pid}): {}", io::Error::last_os_error());
        return None;
    }
    // SAFETY: the kernel just returned this descriptor to us.
    Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `poll` with an optional timeout (rounded up to whole milliseconds).
/// EINTR is reported as zero ready descriptors.
pub(crate) fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<usize> {
    let ms = match timeout {
        None => -1,
        Some(t) => {
            let ms = t.as_nanos().div_ceil(1_000_000);
            ms.min(i32::MAX as u128) as libc::c_int
        }
    };
    // SAFETY: `fds` is a valid, exclusively borrowed slice of pollfd of
    // the length passed.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        return if err.kind() == io::ErrorKind::Interrupted { Ok(0) } else { Err(err) };
    }
    Ok(rc as usize)
}

/// A raw wait status, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitStatus {
    Exited(i32),
    Signaled(i32),
    Other(i32),
}

/// Reaps `pid`, retrying on EINTR.
pub(crate) fn wait(pid: libc::pid_t) -> io::Result<WaitStatus> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: `status` is a valid c_int to write to; `pid` is our child.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            break;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    Ok(if libc::WIFEXITED(status) {
        WaitStatus::Exited(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        WaitStatus::Signaled(libc::WTERMSIG(status))
    } else {
        WaitStatus::Other(status)
    })
}

/// Sends `signal` to every process of the process group `pgid`. Returns
/// false if the group has no process left.
pub(crate) fn kill_group(pgid: libc::pid_t, signal: libc::c_int) -> bool {
    if pgid <= 1 {
        return false;
    }
    // SAFETY: kill takes plain integers; a negative pid names a process
    // group, and pgid > 1 so this never means "every process".
    unsafe { libc::kill(-pgid, signal) == 0 }
}

/// Blocks SIGPIPE in the calling thread while stdin is written, so a hook
/// that exits without reading cannot kill the host even if the embedding
/// program has not ignored SIGPIPE. On drop, a SIGPIPE our writes left
/// pending is consumed and the old mask is restored.
#[derive(Debug)]
pub(crate) struct SigPipeGuard {
    old: libc::sigset_t,
    was_pending: bool,
}

impl SigPipeGuard {
    pub(crate) fn new() -> SigPipeGuard {
        let mut only_pipe = sigset(false);
        let mut old = sigset(false);
        // SAFETY: both sets are initialised; sigaddset with a valid signal
        // and pthread_sigmask with valid pointers cannot fail.
        unsafe {
            libc::sigaddset(&mut only_pipe, libc::SIGPIPE);
            libc::pthread_sigmask(libc::SIG_BLOCK, &only_pipe, &mut old);
        }
        SigPipeGuard { old, was_pending: sigpipe_pending() }
    }
}

impl Drop for SigPipeGuard {
    fn drop(&mut self) {
        if !self.was_pending && sigpipe_pending() {
            let mut only_pipe = sigset(false);
            let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            // SAFETY: valid initialised set and timespec; a NULL siginfo is
            // allowed. SIGPIPE is blocked in this thread, so it is consumed
            // here instead of being delivered.
            unsafe {
                libc::sigaddset(&mut only_pipe, libc::SIGPIPE);
                libc::sigtimedwait(&only_pipe, ptr::null_mut(), &zero);
            }
        }
        // SAFETY: restores the mask saved in `new`, a valid sigset.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, ptr::null_mut()) };
    }
}

fn sigpipe_pending() -> bool {
    let mut pending = sigset(false);
    // SAFETY: `pending` is a valid set to write to.
    unsafe {
        libc::sigpending(&mut pending);
        libc::sigismember(&pending, libc::SIGPIPE) == 1
    }
}

/// The host's effective user id: whose scripts the security rules trust
/// (besides root's).
pub(crate) fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions, touches no memory and cannot fail.
    unsafe { libc::geteuid() }
}

/// A close-on-exec pipe with both ends non-blocking: `(read, write)`. For
/// the cancellation self-pipe, whose write end a signal handler may write to.
pub(crate) fn nonblocking_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = pipe()?;
    set_nonblocking(r.as_fd())?;
    set_nonblocking(w.as_fd())?;
    Ok((r, w))
}

/// Returns true if and only if `fd` is readable now (a zero-timeout poll).
pub(crate) fn readable(fd: BorrowedFd<'_>) -> bool {
    let mut fds = [libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
    matches!(poll(&mut fds, Some(Duration::ZERO)), Ok(n) if n > 0)
}
