//! What goes in: the [`Command`] to run and the [`Limits`] it runs under.

use std::{
    ffi::{CStr, CString},
    time::Duration,
};

/// One program to run: what `execve` gets, plus the bytes for its stdin.
///
/// No `PATH` search and no environment from the caller: `program` is the
/// file executed, and `envp` is the whole environment.
#[derive(Debug, Clone, Copy)]
pub struct Command<'a> {
    pub(crate) program: &'a CStr,
    pub(crate) argv: &'a [CString],
    pub(crate) envp: &'a [CString],
    pub(crate) stdin: Option<&'a [u8]>,
}

impl<'a> Command<'a> {
    /// Runs `program` with `argv` (whose first element is the name the
    /// program sees, usually `program` itself) and the environment `envp`
    /// (`KEY=value` strings). stdin is `/dev/null` until
    /// [`with_stdin`](Command::with_stdin) gives it input.
    pub fn new(program: &'a CStr, argv: &'a [CString], envp: &'a [CString]) -> Command<'a> {
        Command { program, argv, envp, stdin: None }
    }

    /// Makes stdin a pipe that carries `input`, then end of file. An empty
    /// input is a pipe at end of file at once, not `/dev/null`.
    pub fn with_stdin(mut self, input: &'a [u8]) -> Command<'a> {
        self.stdin = Some(input);
        self
    }

    /// The file executed.
    pub fn program(&self) -> &'a CStr {
        self.program
    }
}

/// The limits one run is held to.
///
/// Build one from [`Limits::default`] and set the fields that matter:
///
/// ```
/// use std::time::Duration;
/// let mut limits = virt_hooks_exec::Limits::default();
/// limits.timeout = Some(Duration::from_secs(30));
/// limits.drain = Some(Duration::from_millis(500));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// SIGTERM to the program and its descendants after this long, SIGKILL after
    /// [`grace`](Limits::grace) more; `None` (the default): never.
    pub timeout: Option<Duration>,
    /// Between SIGTERM and SIGKILL, after a timeout or a cancellation.
    /// Default 5 s.
    pub grace: Duration,
    /// How long output is still read after the program exited, while
    /// processes it left behind hold the pipes; `None` (the default): until
    /// end of file.
    pub drain: Option<Duration>,
    /// The most stdout kept (default 1 MiB); the rest is read and dropped.
    pub stdout: usize,
    /// The most stderr kept (default 1 MiB); the rest is read and dropped.
    pub stderr: usize,
    /// How much stdout is expected (at most [`stdout`](Limits::stdout) is
    /// used): reserved up front so that output of that size is read
    /// straight into place. Default 0.
    pub stdout_reserve: usize,
    /// Kill the descendants still alive once the program exited. Default
    /// false: they are only reported. (After a timeout or a cancellation
    /// they are always killed.)
    pub kill_leftovers: bool,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            timeout: None,
            grace: Duration::from_secs(5),
            drain: None,
            stdout: 1 << 20,
            stderr: 1 << 20,
            stdout_reserve: 0,
            kill_leftovers: false,
        }
    }
}
