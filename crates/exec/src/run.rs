//! [`run`]: spawn, pump, and the typed result.

use std::{
    ffi::OsStr,
    os::{fd::AsFd, unix::ffi::OsStrExt},
    path::Path,
    time::Instant,
};

use crate::{
    Cancel, Command, Finished, Limits, SpawnError,
    capture::Capture,
    child::Child,
    pipes::Stdio,
    pump::pump,
    spawn::{self, Failure, SigPipeGuard},
    streams::Streams,
    tree::{self, Tree},
};

/// Runs `command` under `limits` until it has exited, its output is done
/// (or the drain window is over), and it is reaped. `cancel`, when
/// triggered, stops it as a timeout does.
///
/// The program starts with only fds 0, 1 and 2 open (stdin the input pipe
/// or `/dev/null`, stdout and stderr pipes), an empty signal mask, every
/// signal at its default disposition, and its own process group. While the
/// input is written, SIGPIPE is blocked in the calling thread unless the
/// process ignores it, so a program that does not read its input cannot
/// kill the caller.
///
/// # Errors
///
/// [`SpawnError`] when the program did not start; then nothing is left
/// running. Once it started, every outcome (a failure exit, a signal, a
/// timeout, a lost status) is in the [`Finished`].
///
/// # Example
///
/// ```
/// use virt_hooks_exec::{Command, Limits, WaitStatus, run};
///
/// let argv = [c"/bin/sh".to_owned(), c"-c".to_owned(), c"tr a-z A-Z; exit 3".to_owned()];
/// let command = Command::new(c"/bin/sh", &argv, &[]).with_stdin(b"hello");
/// let finished = run(&command, &Limits::default(), None)?;
/// assert_eq!(finished.stdout.data, b"HELLO");
/// assert_eq!(finished.status?, WaitStatus::Exited { code: 3 });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn run(
    command: &Command<'_>,
    limits: &Limits,
    cancel: Option<&Cancel>,
) -> Result<Finished, SpawnError> {
    let start = Instant::now();
    let program = Path::new(OsStr::from_bytes(command.program.to_bytes()));
    let setup = |source| SpawnError::Setup { program: program.to_owned(), source };
    let input = command.stdin;
    let (stdio, for_child) = Stdio::new(input.map(<[u8]>::len)).map_err(setup)?;
    let spawning = tree::spawning();
    let spawned = spawn::spawn(
        command.program,
        command.argv,
        command.envp,
        for_child.each_ref().map(AsFd::as_fd),
    );
    drop(for_child);
    let pid = match spawned {
        Ok(pid) => pid,
        Err(Failure::Exec(source)) => return Err(SpawnError::exec(program, source)),
        Err(Failure::Setup(source)) => return Err(setup(source)),
    };
    let tree = Tree::new(pid, spawning);
    let child = Child::new(pid);
    let _sigpipe = input.filter(|_| !spawn::sigpipe_ignored()).map(|_| SigPipeGuard::new());
    let out = Capture::with_expected(limits.stdout, limits.stdout_reserve);
    let streams = Streams::new(stdio, input.unwrap_or_default(), out, Capture::new(limits.stderr));
    let pumped = pump(program, child, tree, streams, limits, cancel.map(Cancel::fd), start);
    Ok(Finished {
        pid: pid.as_raw_nonzero().get().unsigned_abs(),
        status: pumped.child.into_status(),
        stdout: pumped.streams.out,
        stderr: pumped.streams.err,
        duration: start.elapsed(),
        timed_out: pumped.timed_out,
        cancelled: pumped.cancelled,
        leftovers: pumped.leftovers,
        killed: pumped.killed,
    })
}
