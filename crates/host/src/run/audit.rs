//! The audit log: one JSON record per script run, and one per decision
//! taken without running a script (an event refused before any script ran,
//! the scripts of an operation no driver lists), logged at info level under
//! the target [`AUDIT_TARGET`] and, when configured, appended to a file: the
//! history `virt-hook log` reads (see [`history`](super::history)).
//!
//! The file is opened lazily, by the first record (so a runner that only
//! plans or checks opens nothing for writing), once, with
//! `O_APPEND | O_CREAT | O_CLOEXEC` and mode 0640, and never truncated; when
//! running as root its missing directory is created (0750). Each record is
//! one line written with one `write(2)`: `O_APPEND` makes the seek and the
//! write one atomic step, so records of concurrent events, from many threads
//! or several processes, never interleave. Trouble opening or writing it is
//! logged as a warning and never refuses an operation.

use std::{
    fs::{DirBuilder, File, OpenOptions},
    io::{self, Write},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::{Path, PathBuf},
    sync::{
        OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::Serialize;
use virt_hooks_core::{Event, FailurePolicy};

use super::outcome::{Leftovers, ScriptRun, ScriptStatus};
use crate::hooks::message;

/// The `log` target of the audit records.
pub const AUDIT_TARGET: &str = "virt_hooks::audit";

/// Where the audit log is kept by default when virt-hook runs as root.
pub const DEFAULT_AUDIT_LOG: &str = "/var/log/virt-hooks/audit.jsonl";

/// The most bytes of a script's stderr (and stdout) kept in a record: the
/// end, where the reason of a failure usually is.
pub const TAIL_BYTES: usize = 4096;

/// An audit file, opened for appending by the first record.
#[derive(Debug)]
pub(crate) struct AuditFile {
    path: PathBuf,
    /// `None` once opening failed (logged once).
    file: OnceLock<Option<File>>,
}

impl AuditFile {
    /// The audit file at `path`; opens nothing.
    pub(crate) fn new(path: &Path) -> AuditFile {
        AuditFile { path: path.to_owned(), file: OnceLock::new() }
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn file(&self) -> Option<&File> {
        self.file
            .get_or_init(|| match open(&self.path) {
                Ok(file) => Some(file),
                Err(err) => {
                    log::warn!(
                        "cannot open audit log {}: {err}; hook scripts run on without it",
                        self.path.display()
                    );
                    None
                }
            })
            .as_ref()
    }

    /// Appends `line` (which ends with a newline) with one `write(2)`.
    fn append(&self, line: &[u8]) {
        let Some(mut file) = self.file() else { return };
        match file.write(line) {
            Ok(n) if n == line.len() => {}
            Ok(n) => log::warn!(
                "audit log {}: short write ({n} of {} bytes)",
                self.path.display(),
                line.len()
            ),
            Err(err) => log::warn!("cannot write to audit log {}: {err}", self.path.display()),
        }
    }

    /// Why a record could not be appended now, without opening anything
    /// for writing: for `virt-hook check`. `None` when it could, or when
    /// the caller is not root and so cannot tell for the hook (which runs
    /// as root).
    pub(crate) fn problem(&self, euid: u32) -> Option<String> {
        use rustix::fs::{Access, access};
        let path = &self.path;
        let name = || format!("audit log {}", path.display());
        if path.is_dir() {
            return Some(format!("{}: is a directory", name()));
        }
        if euid != 0 {
            return None;
        }
        if path.exists() {
            return access(path, Access::WRITE_OK)
                .err()
                .map(|err| format!("{}: not writable: {}", name(), io::Error::from(err)));
        }
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let mut dir = parent;
        // Created with its missing directories by the first record.
        while !dir.exists() {
            match dir.parent() {
                Some(up) => dir = up,
                None => return None,
            }
        }
        if !dir.is_dir() {
            return Some(format!("{}: {} is not a directory", name(), dir.display()));
        }
        access(dir, Access::WRITE_OK | Access::EXEC_OK).err().map(|err| {
            format!("{}: cannot create it in {}: {}", name(), dir.display(), io::Error::from(err))
        })
    }
}

/// Opens `path` for appending; as root, creates its missing directories
/// (0750) first.
fn open(path: &Path) -> io::Result<File> {
    // std opens every file with O_CLOEXEC.
    let open = || OpenOptions::new().append(true).create(true).mode(0o640).open(path);
    match open() {
        Err(err)
            if err.kind() == io::ErrorKind::NotFound && rustix::process::geteuid().is_root() =>
        {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                DirBuilder::new().recursive(true).mode(0o750).create(dir)?;
            }
            open()
        }
        other => other,
    }
}

/// A new event id: unique across the processes of one host (time, pid and
/// a counter), shared by every record of one event.
pub(crate) fn new_event_id() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let micros = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros());
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{micros:x}-{}-{seq}", std::process::id())
}

/// The last `max` bytes of `bytes` as text (invalid UTF-8 replaced),
/// without a trailing newline.
pub(crate) fn tail(bytes: &[u8], max: usize) -> String {
    let start = bytes.len().saturating_sub(max);
    let text = String::from_utf8_lossy(&bytes[start..]);
    text.trim_end_matches(['\n', '\r']).to_owned()
}

/// A script's status in a word or three: `exit status 3`, `fatal signal
/// 9`, `timed out`, `cancelled`, `refused`, `not started`.
pub(crate) fn status_text(run: &ScriptRun) -> String {
    if run.timed_out {
        "timed out".to_owned()
    } else if run.cancelled {
        "cancelled".to_owned()
    } else {
        match run.status {
            ScriptStatus::Refused => "refused".to_owned(),
            ScriptStatus::NotStarted => "not started".to_owned(),
            status => message::translate_status(&status),
        }
    }
}

/// What every record starts with: when, and the event.
#[derive(Debug, Serialize)]
struct Head<'a> {
    /// ISO-8601 UTC, milliseconds.
    time: String,
    /// Shared by every record of one event.
    event_id: &'a str,
    driver: &'a str,
    object: &'a str,
    operation: &'a str,
    sub_operation: &'a str,
    extra: &'a str,
}

impl Head<'_> {
    fn of<'a>(event: &'a Event<'_>, event_id: &'a str) -> Head<'a> {
        Head {
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            event_id,
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
    status: String,
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
    /// The end of its stderr, at most [`TAIL_BYTES`].
    stderr_tail: String,
    /// The end of its stdout, for operations that are not filters (a
    /// filter's stdout is a document).
    stdout_tail: Option<String>,
    leftovers: Option<Leftovers>,
    refused: Option<&'a str>,
    failed: bool,
    /// The failure, as libvirt reports it.
    error: Option<&'a str>,
    profile: Option<&'a str>,
    /// A deferred script (run after the hook answered; its status changes
    /// nothing). Left out when false.
    #[serde(skip_serializing_if = "is_false")]
    deferred: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// Returns true if and only if a record would go anywhere: the file, or an
/// enabled logger.
pub(crate) fn enabled(file: Option<&AuditFile>) -> bool {
    file.is_some() || log::log_enabled!(target: AUDIT_TARGET, log::Level::Info)
}

/// How a script of an event ran: the shared part of its record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunKind {
    pub(crate) policy: FailurePolicy,
    /// A filter's script: its stdout is a document, not kept.
    pub(crate) filter: bool,
    /// A deferred script.
    pub(crate) deferred: bool,
}

/// Logs and appends the record of `run`, a script of `event`.
pub(crate) fn record(
    file: Option<&AuditFile>,
    event: &Event<'_>,
    event_id: &str,
    kind: RunKind,
    run: &ScriptRun,
) {
    let RunKind { policy, filter, deferred } = kind;
    let (exit_code, signal) = match run.status {
        ScriptStatus::Exited { code } => (Some(code), None),
        ScriptStatus::Signaled { signal } => (None, Some(signal)),
        _ => (None, None),
    };
    let record = Record {
        head: Head::of(event, event_id),
        on_failure: policy.as_str(),
        script: &run.path,
        status: status_text(run),
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
        stderr_tail: tail(&run.stderr, TAIL_BYTES),
        stdout_tail: (!filter).then(|| tail(&run.stdout, TAIL_BYTES)),
        leftovers: run.leftovers.clone(),
        refused: run.refused.as_deref(),
        failed: run.error.is_some(),
        error: run.error.as_deref(),
        profile: run.profile.as_deref(),
        deferred,
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
    failed: bool,
    /// About the event's deferred scripts. Left out when false.
    #[serde(skip_serializing_if = "is_false")]
    deferred: bool,
}

/// The decision recorded for a deferred run that was handed over but never
/// ran to its end (its worker could not be started, or died).
pub(crate) const DEFERRED_LOST: &str = "deferred-lost";
/// The decision recorded for deferred scripts that do not run because the
/// operation was refused.
pub(crate) const DEFERRED_SKIPPED: &str = "deferred-skipped";

/// Logs and appends a decision about `event` taken without running a
/// script: `decision` is one word (`refused`, `unlisted`,
/// `deferred-lost`...), `reason` says why. A refusal and a lost deferred
/// run count as failed; `deferred-*` decisions are marked deferred.
pub(crate) fn decision(
    file: Option<&AuditFile>,
    event: &Event<'_>,
    event_id: &str,
    decision: &str,
    reason: &str,
) {
    if !enabled(file) {
        return;
    }
    let failed = decision == "refused" || decision == DEFERRED_LOST;
    let deferred = decision.starts_with("deferred-");
    emit(file, &Decision { head: Head::of(event, event_id), decision, reason, failed, deferred });
}

/// Logs `record` as one JSON line and appends it to `file`.
fn emit(file: Option<&AuditFile>, record: &impl Serialize) {
    let mut line = match serde_json::to_vec(record) {
        Ok(line) => line,
        Err(err) => {
            log::warn!("cannot encode an audit record: {err}");
            return;
        }
    };
    log::info!(target: AUDIT_TARGET, "{}", String::from_utf8_lossy(&line));
    if let Some(file) = file {
        line.push(b'\n');
        file.append(&line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_keep_the_end_and_drop_the_last_newline() {
        assert_eq!(tail(b"one\ntwo\n", 100), "one\ntwo");
        assert_eq!(tail(b"abcdef", 3), "def");
        assert_eq!(tail(b"", 3), "");
        // A cut in the middle of a character is replaced, never a panic.
        assert_eq!(tail("é".as_bytes(), 1), "\u{fffd}");
    }

    #[test]
    fn event_ids_differ() {
        assert_ne!(new_event_id(), new_event_id());
    }

    #[test]
    fn nothing_is_opened_before_the_first_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let file = AuditFile::new(&path);
        assert!(!path.exists());
        file.append(b"{}\n");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "{}\n");
    }

    #[test]
    fn a_file_that_cannot_be_opened_is_skipped_not_fatal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "").expect("write");
        // A path under a regular file can never be created, even by root.
        let file = AuditFile::new(&blocker.join("audit.jsonl"));
        file.append(b"{}\n");
        file.append(b"{}\n");
        assert!(file.problem(0).is_some_and(|p| p.contains("is not a directory")));
    }
}
