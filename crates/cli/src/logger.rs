//! Where log records go: stderr as before (`warning: ...`, `error: ...`,
//! filtered by `-v` and `RUST_LOG`), and, for commands that run hook
//! scripts, every warning and error also to the system log: the systemd
//! journal when its socket exists (native protocol, `SYSLOG_IDENTIFIER=
//! virt-hook`, with the records' structured fields: `DRIVER`, `OBJECT`,
//! `OPERATION`, `SUB_OPERATION`, `SCRIPT`, `EXIT_STATUS`, `STDERR`,
//! `EVENT_ID`), else syslog through `/dev/log`, else nowhere more.
//!
//! Records of [`REPORT_TARGET`] (a failure the caller reports itself, on
//! stderr where libvirt quotes it) go to the system log only, and the audit
//! records ([`AUDIT_TARGET`]) never do (they have their own file).

use std::io::Write;
use std::path::{Path, PathBuf};

use log::{Level, LevelFilter, Log, Metadata, Record};
use virt_hooks::{AUDIT_TARGET, REPORT_TARGET};

/// The journal's socket; where it exists, records go to the journal.
const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";
/// syslog's socket.
const SYSLOG_SOCKET: &str = "/dev/log";
/// For tests: another syslog socket than `/dev/log`.
pub(crate) const SYSLOG_SOCKET_ENV: &str = "VIRT_HOOKS_SYSLOG_SOCKET";
/// The identifier of virt-hook's records in the system log
/// (`journalctl -t virt-hook`).
const IDENTIFIER: &str = "virt-hook";

/// Where stderr records stop and what else is done.
pub(crate) struct Setup<'a> {
    /// `-v` count.
    pub(crate) verbose: u8,
    /// The stderr filter without `-v` or `RUST_LOG`.
    pub(crate) quiet_level: &'a str,
    /// Also send warnings and errors to the system log.
    pub(crate) system: bool,
}

/// Installs the logger.
pub(crate) fn init(setup: &Setup<'_>) {
    let default = match setup.verbose {
        0 => setup.quiet_level,
        1 => "info",
        _ => "debug",
    };
    let stderr =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default))
            .format(|buf, record| {
                writeln!(buf, "{}: {}", level_word(record.level()), record.args())
            })
            .build();
    let system = if setup.system { system_log() } else { None };
    let max =
        if system.is_some() { stderr.filter().max(LevelFilter::Warn) } else { stderr.filter() };
    let logger = Logger { stderr, system };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(max);
    }
}

fn level_word(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warn => "warning",
        Level::Info => "info",
        Level::Debug => "debug",
        Level::Trace => "trace",
    }
}

/// The journal if its socket exists and takes a record, else syslog if its
/// socket exists, else none.
fn system_log() -> Option<Box<dyn Log>> {
    if Path::new(JOURNAL_SOCKET).exists() {
        match systemd_journal_logger::JournalLog::new() {
            Ok(journal) => {
                return Some(Box::new(journal.with_syslog_identifier(IDENTIFIER.to_owned())));
            }
            Err(err) => eprintln_quiet(&format!("cannot log to the journal: {err}")),
        }
    }
    let socket = std::env::var_os(SYSLOG_SOCKET_ENV)
        .filter(|s| !s.is_empty())
        .map_or_else(|| PathBuf::from(SYSLOG_SOCKET), PathBuf::from);
    if !socket.exists() {
        return None;
    }
    let formatter = syslog::Formatter3164 {
        facility: syslog::Facility::LOG_DAEMON,
        hostname: None,
        process: IDENTIFIER.to_owned(),
        pid: std::process::id(),
    };
    match syslog::unix_custom(formatter, &socket) {
        Ok(logger) => Some(Box::new(syslog::BasicLogger::new(logger))),
        Err(err) => {
            eprintln_quiet(&format!("cannot log to syslog at {}: {err}", socket.display()));
            None
        }
    }
}

/// A system log that cannot be reached is not worth a line on libvirt's
/// stderr: only with `RUST_LOG` set.
fn eprintln_quiet(message: &str) {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = writeln!(std::io::stderr(), "debug: {message}");
    }
}

struct Logger {
    stderr: env_logger::Logger,
    system: Option<Box<dyn Log>>,
}

impl Logger {
    fn to_system(&self, metadata: &Metadata<'_>) -> bool {
        self.system.is_some()
            && metadata.level() <= Level::Warn
            && metadata.target() != AUDIT_TARGET
    }

    fn to_stderr(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target() != REPORT_TARGET && self.stderr.enabled(metadata)
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.to_stderr(metadata) || self.to_system(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if self.to_stderr(record.metadata()) && self.stderr.matches(record) {
            self.stderr.log(record);
        }
        if self.to_system(record.metadata()) {
            if let Some(system) = &self.system {
                system.log(record);
            }
        }
    }

    fn flush(&self) {
        self.stderr.flush();
        if let Some(system) = &self.system {
            system.flush();
        }
    }
}
