//! The audit log: one JSON record per script run, and one per decision
//! taken without running a script (an event refused before any script ran,
//! the scripts of an operation no driver lists), logged at info level under
//! the target [`AUDIT_TARGET`] and, when configured, appended to a file.
//!
//! The file is opened once, with `O_APPEND | O_CREAT | O_CLOEXEC` and mode
//! 0640, and never truncated. Each record is one line written with one
//! `write(2)`: `O_APPEND` makes the seek and the write one atomic step, so
//! records of concurrent events, from many threads or several processes,
//! never interleave. A write error is logged, never fatal.

use std::{
    fs::{File, OpenOptions},
    io::{self, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::Serialize;
use virt_hooks_core::{Event, FailurePolicy};

use super::outcome::{Leftovers, ScriptRun, ScriptStatus};

/// The `log` target of the audit records.
pub const AUDIT_TARGET: &str = "virt_hooks::audit";

/// An audit file, open for appending.
#[derive(Debug)]
pub(crate) struct AuditFile {
    path: PathBuf,
    file: File,
}

impl AuditFile {
    pub(crate) fn open(path: &Path) -> io::Result<AuditFile> {
        // std opens every file with O_CLOEXEC.
        let file = OpenOptions::new().append(true).create(true).mode(0o640).open(path)?;
        Ok(AuditFile { path: path.to_owned(), file })
    }

    /// Appends `line` (which ends with a newline) with one `write(2)`.
    fn append(&self, line: &[u8]) {
        match (&self.file).write(line) {
            Ok(n) if n == line.len() => {}
            Ok(n) => log::error!(
                "audit log {}: short write ({n} of {} bytes)",
                self.path.display(),
                line.len()
            ),
            Err(err) => log::error!("cannot write to audit log {}: {err}", self.path.display()),
        }
    }
}

/// What every record starts with: when, and the event.
#[derive(Debug, Serialize)]
struct Head<'a> {
    /// Seconds since the Unix epoch when the record was made.
    time: f64,
    driver: &'a str,
    object: &'a str,
    operation: &'a str,
    sub_operation: &'a str,
    extra: &'a str,
}

impl Head<'_> {
    fn of<'a>(event: &'a Event<'_>) -> Head<'a> {
        Head {
            time: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64()),
            driver: event.driver,
            object: event.object,
            operation: event.operation,
            sub_operation: event.sub_operation,
            extra: event.extra,
        }
    }
}

/// One script run, as the audit log records it.
#[derive(Debug, Serialize)]
struct Record<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    on_failure: &'static str,
    #[serde(serialize_with = "super::outcome::path_lossy")]
    script: &'a Path,
    pid: Option<u32>,
    exit_code: Option<i32>,
    signal: Option<i32>,
    timed_out: bool,
    cancelled: bool,
    #[serde(serialize_with = "super::outcome::duration_secs")]
    duration: Duration,
    bytes_in: usize,
    bytes_out: usize,
    stdout_truncated: bool,
    stderr_truncated: bool,
    leftovers: Option<Leftovers>,
    refused: Option<&'a str>,
    failed: bool,
}

/// Returns true if and only if a record would go anywhere: the file, or an
/// enabled logger.
pub(crate) fn enabled(file: Option<&AuditFile>) -> bool {
    file.is_some() || log::log_enabled!(target: AUDIT_TARGET, log::Level::Info)
}

/// Logs and appends the record of `run`, a script of `event`.
pub(crate) fn record(
    file: Option<&AuditFile>,
    event: &Event<'_>,
    policy: FailurePolicy,
    run: &ScriptRun,
) {
    let (exit_code, signal) = match run.status {
        ScriptStatus::Exited { code } => (Some(code), None),
        ScriptStatus::Signaled { signal } => (None, Some(signal)),
        _ => (None, None),
    };
    let record = Record {
        head: Head::of(event),
        on_failure: policy.as_str(),
        script: &run.path,
        pid: run.pid,
        exit_code,
        signal,
        timed_out: run.timed_out,
        cancelled: run.cancelled,
        duration: run.duration,
        bytes_in: run.input_len.unwrap_or(0),
        bytes_out: run.stdout.len() + run.stderr.len(),
        stdout_truncated: run.stdout_truncated,
        stderr_truncated: run.stderr_truncated,
        leftovers: run.leftovers.clone(),
        refused: run.refused.as_deref(),
        failed: run.error.is_some(),
    };
    emit(file, &record);
}

/// A decision about a whole event, as the audit log records it.
#[derive(Debug, Serialize)]
struct Decision<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    decision: &'a str,
    reason: &'a str,
}

/// Logs and appends a decision about `event` taken without running a
/// script: `decision` is one word (`refused`, `unlisted`), `reason` says
/// why.
pub(crate) fn decision(file: Option<&AuditFile>, event: &Event<'_>, decision: &str, reason: &str) {
    if !enabled(file) {
        return;
    }
    emit(file, &Decision { head: Head::of(event), decision, reason });
}

/// Logs `record` as one JSON line and appends it to `file`.
fn emit(file: Option<&AuditFile>, record: &impl Serialize) {
    let mut line = match serde_json::to_vec(record) {
        Ok(line) => line,
        Err(err) => {
            log::error!("cannot encode an audit record: {err}");
            return;
        }
    };
    log::info!(target: AUDIT_TARGET, "{}", String::from_utf8_lossy(&line));
    if let Some(file) = file {
        line.push(b'\n');
        file.append(&line);
    }
}
