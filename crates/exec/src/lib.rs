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
  process group gets SIGTERM, then SIGKILL after the grace period; the child
  is reaped (its exit seen through a pidfd) and, once its group was killed,
  nothing of the group is alive when the call returns (a bounded wait).
* **Leftovers seen**: processes that keep the output open after the program
  exited are read for the drain window only, then counted and reported
  ([`Leftovers`]), and killed if the limits say so.

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
its attributes and file actions, and the calling thread's SIGPIPE mask,
where no safe wrapper exists. Every other system call (pipes, `fcntl`,
`poll`, `read`/`write`, pidfd, `waitpid`, `kill`) goes through rustix's safe
API.
*/

pub use crate::{
    cancel::Cancel,
    capture::Capture,
    command::{Command, Limits},
    error::SpawnError,
    finished::{Finished, Leftovers, WaitError, WaitStatus},
    run::run,
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
mod group;
mod pipes;
mod pump;
mod run;
mod spawn;
mod streams;
