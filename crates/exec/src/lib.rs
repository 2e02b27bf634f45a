/*!
Runs one program the way libvirt runs a hook script, and hands back what
happened: the process-execution layer of virt-hooks.

It knows nothing of hooks, drivers or libvirt: a [`Command`] (program, argv,
envp, stdin) and [`Limits`] go in, a [`Finished`] comes out, or a
[`SpawnError`] if the program did not start. The host library
(`virt-hooks`) builds its runner on [`run`].

What [`run`] promises:

* **The process state of a libvirt child**, through `posix_spawn`: only fds
  0, 1 and 2 open (even fds the caller leaked without close-on-exec), an
  empty signal mask, every signal at its default disposition, and a process
  group of its own. stdin is a pipe carrying the input (enlarged for inputs
  of 1 MiB or more), or `/dev/null`.
* **No deadlock and no unbounded memory**: stdin, stdout and stderr are
  served by one `poll` loop, and each output is kept up to its cap
  ([`Capture`]); the rest is read and dropped, and marked truncated.
* **An end on time**: at the timeout, or when [`Cancel`] is triggered, the
  program and every descendant found get SIGTERM by pid, then, after the
  grace period, the whole tree is frozen (SIGSTOP until a scan finds no
  process left running, so a forking loop cannot outrun it) and killed
  (SIGKILL); the child is reaped (its exit seen through a pidfd) and
  nothing of the tree is alive when the call returns (bounded waits). No
  signal ever goes to a process group, so a script that moves into
  another group, or into ours, is still stopped.
* **Leftovers seen**: once the program exited, every descendant still alive
  is reported by pid and command line ([`Leftovers`]), whether or not it
  holds the output, and killed if the limits say so. Processes that keep
  the output open are read for the drain window only. Descendants are the
  program's process group, the tree under it by parent links and, in a
  [child subreaper](become_subreaper), the orphans reparented to us; see
  the `tree` module's notes for what a process that is not a subreaper
  cannot follow.

# Example

```
use std::time::Duration;
use virt_hooks_exec::{Command, Limits, WaitStatus, run};

let argv = [c"sh".to_owned(), c"-c".to_owned(), c"echo $GREETING; sleep 60".to_owned()];
let envp = [c"GREETING=hello".to_owned()];
let mut limits = Limits::default();
limits.timeout = Some(Duration::from_millis(100));
let finished = run(&Command::new(c"/bin/sh", &argv, &envp), &limits, None)?;
assert_eq!(finished.stdout.data, b"hello\n");
assert!(finished.timed_out);
assert_eq!(finished.status?, WaitStatus::Signaled { signal: 15 });
# Ok::<(), Box<dyn std::error::Error>>(())
```

# `unsafe`

This crate and `virt-hooks-abi` are the only ones of the workspace with
`unsafe` code. Here it is confined to one private module: `posix_spawn` with
its attributes and file actions, the calling thread's SIGPIPE mask, and
the reset of a launcher's signal state ([`reset_signal_state`]), where no
safe wrapper exists. Every other system call (pipes, `fcntl`, `poll`,
`read`/`write`, pidfds, `waitpid`, `kill`, `prctl`) goes through rustix's
safe API.
*/

pub use crate::{
    cancel::Cancel,
    capture::Capture,
    command::{Command, Limits},
    error::SpawnError,
    finished::{Finished, Leftovers, WaitError, WaitStatus},
    run::run,
    spawn::reset_signal_state,
    tree::{Process, become_subreaper, is_subreaper},
};

#[cfg(feature = "baselines")]
pub mod baseline;
mod cancel;
mod capture;
mod child;
mod command;
mod deadlines;
mod error;
mod finished;
mod pipes;
mod pump;
mod run;
mod spawn;
mod streams;
mod tree;
