//! The baselines: a hook started with raw `posix_spawn` (the physical limit
//! of what a spawner can do) or with a plain `fork()` + `execve` (libvirt's
//! way), fed and drained by a minimal `poll` pump, then `waitpid`.
//!
//! No timeouts, no process group, no signal reset, no fd sweep, no
//! capture limits: just the pipes, the process and its exit status.

use std::{
    ffi::{CString, c_char},
    os::unix::ffi::OsStrExt,
    path::Path,
    ptr,
};

/// How the child is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spawner {
    /// `posix_spawn` (glibc: `clone(CLONE_VM | CLONE_VFORK)`).
    PosixSpawn,
    /// `fork()` then `dup2` and `execve` in the child.
    ForkExec,
}

/// A program with its argv and environment, ready to start many times.
#[derive(Debug)]
pub struct Prepared {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    /// `F_SETPIPE_SZ` for the stdin and stdout pipes; `None`: the default
    /// (64 KiB).
    pipe_size: Option<i32>,
}

fn ptrs(v: &[CString]) -> Vec<*const c_char> {
    v.iter().map(|s| s.as_ptr()).chain(std::iter::once(ptr::null())).collect()
}

fn cloexec_pipe() -> (i32, i32) {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    (fds[0], fds[1])
}

fn close(fd: i32) {
    if fd >= 0 {
        // SAFETY: closing a descriptor we own.
        unsafe { libc::close(fd) };
    }
}

impl Prepared {
    pub fn new(path: &Path, argv: Vec<CString>, envp: Vec<CString>) -> Prepared {
        Prepared {
            path: CString::new(path.as_os_str().as_bytes()).unwrap(),
            argv,
            envp,
            pipe_size: None,
        }
    }

    /// Enlarges the stdin and stdout pipes to `bytes`.
    pub fn with_pipe_size(mut self, bytes: i32) -> Prepared {
        self.pipe_size = Some(bytes);
        self
    }

    /// Runs it with `input` on stdin (`None`: `/dev/null`), keeping stdout
    /// in `out` if given; returns the exit code (128 + signal if killed).
    pub fn run(&self, how: Spawner, input: Option<&[u8]>, out: Option<&mut Vec<u8>>) -> i32 {
        self.run_capture(how, input, out, None)
    }

    /// [`run`](Self::run), also keeping stderr.
    pub fn run_capture(
        &self,
        how: Spawner,
        input: Option<&[u8]>,
        out: Option<&mut Vec<u8>>,
        err: Option<&mut Vec<u8>>,
    ) -> i32 {
        let argv = ptrs(&self.argv);
        let envp = ptrs(&self.envp);
        let (in_r, in_w) = match input {
            Some(_) => cloexec_pipe(),
            None => {
                // SAFETY: a valid NUL-terminated path.
                let fd =
                    unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
                assert!(fd >= 0);
                (fd, -1)
            }
        };
        let (out_r, out_w) = cloexec_pipe();
        let (err_r, err_w) = cloexec_pipe();
        if let Some(size) = self.pipe_size {
            for fd in [in_w, out_r] {
                if fd >= 0 {
                    // SAFETY: fcntl on our own descriptor.
                    unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, size) };
                }
            }
        }
        let pid = match how {
            Spawner::PosixSpawn => {
                let mut pid = 0;
                // SAFETY: the file actions object is initialised before use
                // and destroyed after; argv/envp are NULL-terminated arrays
                // of NUL-terminated strings that outlive the call.
                unsafe {
                    let mut fa =
                        std::mem::MaybeUninit::<libc::posix_spawn_file_actions_t>::uninit();
                    libc::posix_spawn_file_actions_init(fa.as_mut_ptr());
                    libc::posix_spawn_file_actions_adddup2(fa.as_mut_ptr(), in_r, 0);
                    libc::posix_spawn_file_actions_adddup2(fa.as_mut_ptr(), out_w, 1);
                    libc::posix_spawn_file_actions_adddup2(fa.as_mut_ptr(), err_w, 2);
                    let rc = libc::posix_spawn(
                        &mut pid,
                        self.path.as_ptr(),
                        fa.as_ptr(),
                        ptr::null(),
                        argv.as_ptr().cast(),
                        envp.as_ptr().cast(),
                    );
                    libc::posix_spawn_file_actions_destroy(fa.as_mut_ptr());
                    assert_eq!(rc, 0, "posix_spawn: {}", std::io::Error::from_raw_os_error(rc));
                }
                pid
            }
            Spawner::ForkExec => {
                // SAFETY: between fork and execve the child only calls
                // async-signal-safe functions (dup2, execve, _exit) on data
                // prepared before the fork.
                unsafe {
                    let pid = libc::fork();
                    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
                    if pid == 0 {
                        libc::dup2(in_r, 0);
                        libc::dup2(out_w, 1);
                        libc::dup2(err_w, 2);
                        libc::execve(self.path.as_ptr(), argv.as_ptr(), envp.as_ptr());
                        libc::_exit(127);
                    }
                    pid
                }
            }
        };
        close(in_r);
        close(out_w);
        close(err_w);
        pump(in_w, input.unwrap_or_default(), out_r, err_r, out, err);
        let mut status = 0;
        loop {
            // SAFETY: waiting for our own child.
            let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
            if rc == pid {
                break;
            }
            assert_eq!(std::io::Error::last_os_error().raw_os_error(), Some(libc::EINTR));
        }
        if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            128 + libc::WTERMSIG(status)
        }
    }
}

/// Reads up to one chunk from `fd` into `keep` (or a scratch buffer).
/// Returns false at end of file.
fn read_some(fd: i32, keep: &mut Option<&mut Vec<u8>>, scratch: &mut [u8]) -> bool {
    let n = match keep {
        Some(v) => {
            if v.capacity() - v.len() < 65536 {
                v.reserve(65536);
            }
            let spare = v.capacity() - v.len();
            // SAFETY: reading into the vector's spare capacity, then
            // setting the length to cover only the bytes read.
            unsafe {
                let n = libc::read(fd, v.as_mut_ptr().add(v.len()).cast(), spare);
                if n > 0 {
                    v.set_len(v.len() + n as usize);
                }
                n
            }
        }
        // SAFETY: reading into a valid buffer of that length.
        None => unsafe { libc::read(fd, scratch.as_mut_ptr().cast(), scratch.len()) },
    };
    if n < 0 {
        let e = std::io::Error::last_os_error().raw_os_error();
        return e == Some(libc::EINTR) || e == Some(libc::EAGAIN);
    }
    n > 0
}

/// The minimal pump: write `input` to `in_w` (non-blocking) while reading
/// both outputs, until both outputs are at end of file.
fn pump(
    mut in_w: i32,
    input: &[u8],
    out_r: i32,
    err_r: i32,
    mut out: Option<&mut Vec<u8>>,
    mut err: Option<&mut Vec<u8>>,
) {
    if in_w >= 0 {
        if input.is_empty() {
            close(in_w);
            in_w = -1;
        } else {
            // SAFETY: fcntl on our own descriptor.
            unsafe {
                let fl = libc::fcntl(in_w, libc::F_GETFL);
                libc::fcntl(in_w, libc::F_SETFL, fl | libc::O_NONBLOCK);
            }
        }
    }
    let mut written = 0;
    let (mut out_open, mut err_open) = (true, true);
    let mut scratch = [0u8; 65536];
    while out_open || err_open {
        let mut fds = [
            libc::pollfd { fd: in_w, events: libc::POLLOUT, revents: 0 },
            libc::pollfd {
                fd: if out_open { out_r } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: if err_open { err_r } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: a valid array of three pollfd.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), 3, -1) };
        if rc < 0 {
            continue; // EINTR
        }
        if fds[0].revents != 0 {
            let rest = &input[written..];
            // SAFETY: writing from a valid slice.
            let n = unsafe { libc::write(in_w, rest.as_ptr().cast(), rest.len()) };
            if n > 0 {
                written += n as usize;
            }
            let again = n < 0
                && matches!(
                    std::io::Error::last_os_error().raw_os_error(),
                    Some(libc::EAGAIN | libc::EINTR)
                );
            if written == input.len() || (n < 0 && !again) {
                close(in_w);
                in_w = -1;
            }
        }
        if fds[1].revents != 0 && !read_some(out_r, &mut out, &mut scratch) {
            out_open = false;
        }
        if fds[2].revents != 0 && !read_some(err_r, &mut err, &mut scratch) {
            err_open = false;
        }
    }
    close(in_w);
    close(out_r);
    close(err_r);
}
