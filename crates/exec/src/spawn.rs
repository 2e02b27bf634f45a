//! The only module with `unsafe` code: raw `posix_spawn` with its
//! attributes and file actions, the calling thread's SIGPIPE mask, and the
//! reset of a launcher's signal state ([`reset_signal_state`]). No
//! well-kept crate wraps either safely (rustix has no `posix_spawn`, and its
//! signal-mask calls are `unsafe` themselves), so each is a small safe
//! function here over `libc`.
//!
//! Why `posix_spawn` and not `fork` or `std::process::Command` with
//! `pre_exec`: glibc implements it with `clone(CLONE_VM | CLONE_VFORK)`, so
//! the cost of a spawn does not grow with the caller's memory, and the file
//! actions and attributes below give the child exactly libvirt's process
//! state: only fds 0, 1 and 2 open (`addclosefrom_np(3)`, so fds the caller
//! leaked without close-on-exec are closed too), an empty signal mask, every
//! signal at its default disposition. Each child also gets its own process
//! group (`POSIX_SPAWN_SETPGROUP` with 0), so a timeout can kill the whole
//! tree it started.
#![allow(unsafe_code)]

use std::{
    ffi::{CStr, CString, c_char},
    io,
    mem::MaybeUninit,
    os::fd::{AsRawFd, BorrowedFd, RawFd},
    ptr,
};

use rustix::process::Pid;

/// Why no child is running.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The child was created but could not execute the program (glibc
    /// reports the exec errno and has already reaped the child).
    Exec(io::Error),
    /// Nothing was started: the spawn attributes or file actions could not
    /// be set up.
    Setup(io::Error),
}

/// Starts `program` with `argv` and exactly the environment `envp`, with
/// `stdio` (in the order stdin, stdout, stderr) as its fds 0, 1 and 2 and
/// nothing else open. Returns its pid, which is also its process group id.
pub(crate) fn spawn(
    program: &CStr,
    argv: &[CString],
    envp: &[CString],
    stdio: [BorrowedFd<'_>; 3],
) -> Result<Pid, Failure> {
    let argv_ptrs = null_terminated(argv);
    let envp_ptrs = null_terminated(envp);
    let actions = FileActions::new(&[
        (stdio[0].as_raw_fd(), 0),
        (stdio[1].as_raw_fd(), 1),
        (stdio[2].as_raw_fd(), 2),
    ])
    .map_err(Failure::Setup)?;
    let attrs = SpawnAttrs::new().map_err(Failure::Setup)?;

    let mut pid: libc::pid_t = 0;
    // SAFETY: `program`, `argv_ptrs` and `envp_ptrs` are NUL-terminated
    // strings and NULL-terminated pointer arrays that outlive the call (the
    // CStrings they point into are borrowed for the whole function);
    // `actions` and `attrs` were initialised by their constructors and are
    // destroyed only when dropped, after this call. posix_spawn does not
    // write through argv or envp despite the `*mut` in its signature.
    let rc = unsafe {
        libc::posix_spawn(
            &mut pid,
            program.as_ptr(),
            &actions.raw,
            &attrs.raw,
            argv_ptrs.as_ptr().cast::<*mut c_char>(),
            envp_ptrs.as_ptr().cast::<*mut c_char>(),
        )
    };
    if rc != 0 {
        return Err(Failure::Exec(io::Error::from_raw_os_error(rc)));
    }
    // posix_spawn succeeded, so the kernel gave the child a positive pid.
    Pid::from_raw(pid).ok_or_else(|| Failure::Setup(io::Error::other("posix_spawn returned pid 0")))
}

fn null_terminated(strings: &[CString]) -> Vec<*const c_char> {
    strings.iter().map(|s| s.as_ptr()).chain(std::iter::once(ptr::null())).collect()
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
/// glibc's `posix_spawn` leaves them ignored in the child, and the child
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

/// Puts the calling thread's signal state back to what a process needs to
/// run and reap hooks: every signal unblocked, and SIGCHLD at its default
/// disposition (with SIGCHLD ignored, the kernel reaps children itself and
/// `waitpid` fails with ECHILD, so every program would seem to have lost its
/// status). A launcher may leave either behind; signal dispositions and the
/// mask survive `execve`. For the start of a program, before other threads
/// exist: the mask is per thread.
///
/// # Errors
///
/// The OS error of `sigaction` (not expected for SIGCHLD).
pub fn reset_signal_state() -> io::Result<()> {
    let empty = sigset(false);
    // SAFETY: `empty` is an initialised set; a NULL old set is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &empty, ptr::null_mut()) };
    check(rc)?;
    // SAFETY: SIG_DFL is a valid disposition for SIGCHLD; `signal` takes no
    // pointer that must outlive the call.
    if unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) } == libc::SIG_ERR {
        return Err(io::Error::last_os_error());
    }
    Ok(())
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

/// Blocks SIGPIPE in the calling thread while stdin is written, so a child
/// that exits without reading cannot kill the caller even if the embedding
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_signal_holds_the_two_that_sigfillset_leaves_out() {
        let set = every_signal();
        for signal in 1..=64 {
            // SAFETY: `set` is an initialised sigset; `signal` is in range.
            let member = unsafe { libc::sigismember(&set, signal) };
            assert_eq!(member, 1, "signal {signal} is reset to its default in the child");
        }
    }

    #[test]
    fn the_guard_restores_the_mask_and_swallows_its_own_sigpipe() {
        // SIGPIPE is ignored in test binaries; the guard blocks it anyway.
        let blocked = || {
            let mut now = sigset(false);
            // SAFETY: a NULL new set only queries into `now`.
            unsafe {
                libc::pthread_sigmask(libc::SIG_BLOCK, ptr::null(), &mut now);
                libc::sigismember(&now, libc::SIGPIPE) == 1
            }
        };
        assert!(!blocked());
        {
            let _guard = SigPipeGuard::new();
            assert!(blocked());
            // A SIGPIPE raised for this thread stays pending while blocked.
            // SAFETY: pthread_kill on the current thread with a valid signal.
            unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGPIPE) };
            assert!(sigpipe_pending());
        }
        assert!(!blocked(), "the old mask is back");
        assert!(!sigpipe_pending(), "the pending SIGPIPE was consumed");
    }
}
