//! End-to-end tests: the real plugins and the `virt-hook` binary, built by
//! the support library (see `tests/src/lib.rs`), and fixture plugins broken
//! in every way the loader must survive.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

// Loading the real and the broken plugins through the host library.
mod plugins;
// `virt-hook drivers` with real, missing and broken plugins.
mod cli;
// `virt-hook run`, `plan` and `demo`: what scripts see, exit codes, libvirt's texts.
mod run_cli;
// A driver, an operation and interface versions added without a host rebuild.
mod extend;
// docs/writing-a-driver.md, compiled and loaded.
mod guide;
// Signals, --timeout, the configuration file, `config` and `check`.
mod robust_cli;
// Nothing a hook starts escapes; no configuration panics.
mod containment;
// virt-hook installed as libvirt's hook: per-object scripts, what libvirt sees.

mod dispatch;
// The system log, the audit log and `virt-hook log`; read-only commands.
mod observe;
// Read-only commands as an ordinary user; run's stdin, --timeout, -q, typed JSON.
mod tools;
// Deferred scripts: after the hook answered, detached, in order, recorded.
mod deferred;
