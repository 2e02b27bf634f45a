//! Integration tests of virt-hooks-exec: real `/bin/sh` children, each test
//! aimed at one promise of `run`.

// Shell commands, limits, and process checks by pid.
mod util;

// What the child gets: fds, signals, process group, environment, argv, stdin.
mod attributes;
// Streams: caps, truncation, inputs never read, huge inputs, no deadlock.
mod io;
// Stopping: timeouts, SIGKILL after the grace, cancellation.
mod stop;
// Processes left behind holding the output: drain window, report, kill.
mod leftovers;
// Programs that do not start, and statuses that are lost.
mod errors;
// Descendants that change group or session, or are orphaned: found, killed, reported.
mod containment;
// No descriptor, zombie or SIGPIPE leaks, in a process of their own.
mod accounting;
