//! Integration tests of the runner, with real `#!/bin/sh` scripts in
//! temporary hooks directories and in-process fake drivers.

// Fake drivers, temporary hooks directories, events.
mod util;

// Which files run, in which order, and what stops a call.
mod discovery;
// The aggregation of several scripts: failures, filters, the verdict.
mod chain;
// libvirt's error text: escaping, stderr, signals, exec failures.
mod message;
// What the hook process sees: environment, fds, signals.
mod process;
// Large documents, concurrency, the robustness limits.
mod io;
// Never hang, never leak: timeouts, leftovers, floods, cancellation.
mod robust;
// The script security rules in the runner.
mod security;
// Every link and directory of a script's chain, and the swap race.
mod links;
// The configuration file, the audit log and `check`.
mod config;
// The per-object layout and `Layout::Both`.
mod layout;
// The sources' shape: no import cycles between files.
mod layers;
// `check` with the per-object layout: the runner's verdicts.
mod check;
// Refusals on the record; operations no driver lists.
mod unlisted;
// Hook profiles chosen by the domain's metadata.
mod profiles;
// Deferred scripts: found by the run, run after it by `run_deferred`.
mod deferred;
