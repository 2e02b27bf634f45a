//! The raw baselines of the overhead benchmark (feature `baselines`): the
//! cheapest code that does what virt-hooks does, with plain system calls.
//! They live here, behind a feature nothing shipped enables, because this
//! crate is where the workspace keeps its `unsafe`; the benchmark
//! (`crates/host/benches/overhead`) is their only user.
//!
//! * [`Prepared`] starts a program with raw `posix_spawn` (the physical
//!   limit of what a spawner can do) or with a plain `fork()` + `execve`
//!   (libvirt's way), feeds and drains it with a minimal `poll` pump, then
//!   reaps it with `waitpid`. No timeouts, no process group, no signal
//!   reset, no fd sweep, no capture limits: just the pipes, the process and
//!   its exit status.
//! * [`Probe`] makes the two system calls hook discovery cannot avoid:
//!   `stat` of the main script and `open` of the `.d` directory.
//! * [`Libraries`] `dlopen`s shared libraries, as a plugin loader must.
#![allow(unsafe_code)]

use std::{
    ffi::{CString, OsStr, c_char},
    fs::File,
    io,
    os::{
        fd::{AsRawFd, OwnedFd},
        unix::ffi::OsStrExt,
    },
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

/// `s` as a C string; an interior NUL is an `InvalidInput` error.
fn c_string(s: &[u8]) -> io::Result<CString> {
    CString::new(s).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{:?} contains a NUL byte", String::from_utf8_lossy(s)),
        )
    })
}

fn c_strings<S: AsRef<OsStr>>(v: &[S]) -> io::Result<Vec<CString>> {
    v.iter().map(|s| c_string(s.as_ref().as_bytes())).collect()
}

fn ptrs(v: &[CString]) -> Vec<*const c_char> {
    v.iter().map(|s| s.as_ptr()).chain(std::iter::once(ptr::null())).collect()
}

fn cloexec_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?)
}

impl Prepared {
    /// `path` started with `argv` (`argv[0]` included) and the environment
    /// `envp` (`NAME=value` strings).
    pub fn new<A: AsRef<OsStr>, E: AsRef<OsStr>>(
        path: &Path,
        argv: &[A],
        envp: &[E],
    ) -> io::Result<Prepared> {
        Ok(Prepared {
            path: c_string(path.as_os_str().as_bytes())?,
            argv: c_strings(argv)?,
            envp: c_strings(envp)?,
            pipe_size: None,
        })
    }

    /// Enlarges the stdin and stdout pipes to `bytes`.
    pub fn with_pipe_size(mut self, bytes: i32) -> Prepared {
        self.pipe_size = Some(bytes);
        self
    }

    /// Runs it with `input` on stdin (`None`: `/dev/null`), keeping stdout
    /// in `out` if given; returns the exit code (128 + signal if killed).
    pub fn run(
        &self,
        how: Spawner,
        input: Option<&[u8]>,
        out: Option<&mut Vec<u8>>,
    ) -> io::Result<i32> {
        self.run_capture(how, input, out, None)
    }

    /// [`run`](Self::run), also keeping stderr.
    pub fn run_capture(
        &self,
        how: Spawner,
        input: Option<&[u8]>,
        out: Option<&mut Vec<u8>>,
        err: Option<&mut Vec<u8>>,
    ) -> io::Result<i32> {
        let argv = ptrs(&self.argv);
        let envp = ptrs(&self.envp);
        let (in_r, in_w) = match input {
            Some(_) => {
                let (r, w) = cloexec_pipe()?;
                (r, Some(w))
            }
            // std opens with O_CLOEXEC.
            None => (File::open("/dev/null")?.into(), None),
        };
        let (out_r, out_w) = cloexec_pipe()?;
        let (err_r, err_w) = cloexec_pipe()?;
        if let Some(size) = self.pipe_size {
            for fd in in_w.iter().chain([&out_r]) {
                // SAFETY: fcntl on our own descriptor.
                unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, size) };
            }
        }
        let (in_r_fd, out_w_fd, err_w_fd) =
            (in_r.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd());
        let pid = match how {
            Spawner::PosixSpawn => {
                let mut pid = 0;
                // SAFETY: the file actions object is initialised before use
                // and destroyed after; argv/envp are NULL-terminated arrays
                // of NUL-terminated strings that outlive the call.
                let rc = unsafe {
                    let mut fa =
                        std::mem::MaybeUninit::<libc::posix_spawn_file_actions_t>::uninit();
                    libc::posix_spawn_file_actions_init(fa.as_mut_ptr());
                    libc::posix_spawn_file_actions_adddup2(fa.as_mut_ptr(), in_r_fd, 0);
                    libc::posix_spawn_file_actions_adddup2(fa.as_mut_ptr(), out_w_fd, 1);
                    libc::posix_spawn_file_actions_adddup2(fa.as_mut_ptr(), err_w_fd, 2);
                    let rc = libc::posix_spawn(
                        &mut pid,
                        self.path.as_ptr(),
                        fa.as_ptr(),
                        ptr::null(),
                        argv.as_ptr().cast(),
                        envp.as_ptr().cast(),
                    );
                    libc::posix_spawn_file_actions_destroy(fa.as_mut_ptr());
                    rc
                };
                if rc != 0 {
                    return Err(io::Error::from_raw_os_error(rc));
                }
                pid
            }
            Spawner::ForkExec => {
                // SAFETY: between fork and execve the child only calls
                // async-signal-safe functions (dup2, execve, _exit) on data
                // prepared before the fork.
                let pid = unsafe {
                    let pid = libc::fork();
                    if pid == 0 {
                        libc::dup2(in_r_fd, 0);
                        libc::dup2(out_w_fd, 1);
                        libc::dup2(err_w_fd, 2);
                        libc::execve(self.path.as_ptr(), argv.as_ptr(), envp.as_ptr());
                        libc::_exit(127);
                    }
                    pid
                };
                if pid < 0 {
                    return Err(io::Error::last_os_error());
                }
                pid
            }
        };
        drop((in_r, out_w, err_w));
        let pumped = pump(in_w, input.unwrap_or_default(), &out_r, &err_r, out, err);
        drop((out_r, err_r));
        let status = wait(pid)?;
        pumped?;
        Ok(if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            128 + libc::WTERMSIG(status)
        })
    }
}

/// Reaps `pid`; returns its wait status.
fn wait(pid: libc::pid_t) -> io::Result<i32> {
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            return Ok(status);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Whether a failed read or write may simply be tried again.
fn transient(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EINTR | libc::EAGAIN))
}

/// Reads up to one chunk from `fd` into `keep` (or a scratch buffer).
/// Returns false at end of file.
fn read_some(
    fd: &OwnedFd,
    keep: &mut Option<&mut Vec<u8>>,
    scratch: &mut [u8],
) -> io::Result<bool> {
    let fd = fd.as_raw_fd();
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
                    v.set_len(v.len() + n.unsigned_abs());
                }
                n
            }
        }
        // SAFETY: reading into a valid buffer of that length.
        None => unsafe { libc::read(fd, scratch.as_mut_ptr().cast(), scratch.len()) },
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if transient(&e) { Ok(true) } else { Err(e) };
    }
    Ok(n > 0)
}

/// The minimal pump: write `input` to `in_w` (non-blocking) while reading
/// both outputs, until both outputs are at end of file. A hook that exits
/// before reading all of its input ends the writing (`EPIPE`), as libvirt
/// does.
fn pump(
    mut in_w: Option<OwnedFd>,
    input: &[u8],
    out_r: &OwnedFd,
    err_r: &OwnedFd,
    mut out: Option<&mut Vec<u8>>,
    mut err: Option<&mut Vec<u8>>,
) -> io::Result<()> {
    if input.is_empty() {
        in_w = None;
    }
    if let Some(fd) = &in_w {
        // SAFETY: fcntl on our own descriptor.
        unsafe {
            let fl = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
    }
    let mut written = 0;
    let (mut out_open, mut err_open) = (true, true);
    let mut scratch = [0u8; 65536];
    while out_open || err_open {
        let raw_in = in_w.as_ref().map_or(-1, AsRawFd::as_raw_fd);
        let mut fds = [
            libc::pollfd { fd: raw_in, events: libc::POLLOUT, revents: 0 },
            libc::pollfd {
                fd: if out_open { out_r.as_raw_fd() } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: if err_open { err_r.as_raw_fd() } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: a valid array of three pollfd.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), 3, -1) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if transient(&e) {
                continue;
            }
            return Err(e);
        }
        if fds[0].revents != 0 {
            let rest = &input[written..];
            // SAFETY: writing from a valid slice.
            let n = unsafe { libc::write(raw_in, rest.as_ptr().cast(), rest.len()) };
            let failed = n < 0 && !transient(&io::Error::last_os_error());
            if n > 0 {
                written += n.unsigned_abs();
            }
            if written == input.len() || failed {
                in_w = None;
            }
        }
        if fds[1].revents != 0 && !read_some(out_r, &mut out, &mut scratch)? {
            out_open = false;
        }
        if fds[2].revents != 0 && !read_some(err_r, &mut err, &mut scratch)? {
            err_open = false;
        }
    }
    Ok(())
}

/// The two system calls of hook discovery for one driver, on paths that
/// need not exist: `stat(<hooks>/<driver>)` and `open(<hooks>/<driver>.d)`.
#[derive(Debug)]
pub struct Probe {
    main: CString,
    dir: CString,
}

impl Probe {
    /// The probe of `main` (the main script) and `dir` (its `.d` directory).
    pub fn new(main: &Path, dir: &Path) -> io::Result<Probe> {
        Ok(Probe {
            main: c_string(main.as_os_str().as_bytes())?,
            dir: c_string(dir.as_os_str().as_bytes())?,
        })
    }

    /// Makes both calls; their results are not looked at.
    pub fn run(&self) {
        // SAFETY: valid NUL-terminated paths and a stat buffer on the stack;
        // a descriptor that was opened is closed.
        unsafe {
            let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
            let a = libc::stat(self.main.as_ptr(), st.as_mut_ptr());
            let fd =
                libc::open(self.dir.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC);
            if fd >= 0 {
                libc::close(fd);
            }
            std::hint::black_box((a, fd));
        }
    }
}

/// Shared libraries to `dlopen`, paths converted up front.
#[derive(Debug)]
pub struct Libraries {
    paths: Vec<CString>,
}

impl Libraries {
    /// The libraries at `paths`.
    pub fn new(paths: &[&Path]) -> io::Result<Libraries> {
        let paths = paths.iter().map(|p| c_string(p.as_os_str().as_bytes()));
        Ok(Libraries { paths: paths.collect::<io::Result<_>>()? })
    }

    /// `dlopen(RTLD_LAZY | RTLD_LOCAL)` of each, in order. They are never
    /// closed (neither are plugins). The error names the library and says
    /// `dlerror`'s reason.
    pub fn open_all(&self) -> io::Result<()> {
        for p in &self.paths {
            // SAFETY: a valid NUL-terminated path; the library is never
            // closed, so nothing it defines is used after an unload.
            let h = unsafe { libc::dlopen(p.as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL) };
            if h.is_null() {
                // SAFETY: dlerror returns NULL or a NUL-terminated string
                // valid until the next dl* call on this thread; it is copied
                // at once.
                let why = unsafe {
                    let e = libc::dlerror();
                    if e.is_null() {
                        "unknown error".to_owned()
                    } else {
                        std::ffi::CStr::from_ptr(e).to_string_lossy().into_owned()
                    }
                };
                return Err(io::Error::other(format!("dlopen {}: {why}", p.to_string_lossy())));
            }
        }
        Ok(())
    }
}
