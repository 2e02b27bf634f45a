//! What a run did and what a plan would do: [`Outcome`], [`ScriptRun`],
//! [`Plan`] and their parts. All of them serialize (paths and bytes as
//! lossy UTF-8 strings, durations as seconds) for the CLI's JSON output.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{Serialize, Serializer};
use virt_hooks_core::FailurePolicy;
// Found by the process layer; part of a `ScriptRun`.
pub use virt_hooks_exec::Leftovers;

/// How a hook script ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
#[non_exhaustive]
pub enum ScriptStatus {
    /// It exited with this status. Exec failures show up here as libvirt's
    /// child reports them: 127 when the file or its interpreter does not
    /// exist, 126 otherwise.
    Exited {
        /// The exit status.
        code: i32,
    },
    /// A signal killed it.
    Signaled {
        /// The signal number.
        signal: i32,
    },
    /// `waitpid` reported something that is neither (libvirt's
    /// `invalid value N`).
    Invalid {
        /// The raw wait status.
        raw: i32,
    },
    /// No process was started (no pipe or no process could be created), or
    /// its status was lost; [`ScriptRun::error`] says which.
    NotStarted,
    /// The script security rules refused it, so it was never started;
    /// [`ScriptRun::refused`] says why.
    Refused,
}

impl ScriptStatus {
    /// Returns true if and only if the script exited with status 0.
    pub fn success(&self) -> bool {
        matches!(self, ScriptStatus::Exited { code: 0 })
    }
}

/// One hook script that ran, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScriptRun {
    /// The script's full path (also `argv[0]`).
    #[serde(serialize_with = "path_lossy")]
    pub path: PathBuf,
    /// Its argv: path, object, operation, sub-operation, extra.
    pub argv: Vec<String>,
    /// How it ended.
    pub status: ScriptStatus,
    /// Wall-clock time from spawn to the end of its output.
    #[serde(serialize_with = "duration_secs")]
    pub duration: Duration,
    /// The size of the document it was given on stdin, or `None` for
    /// `/dev/null`.
    pub input_len: Option<usize>,
    /// What it wrote to stdout, up to the capture limit. Empty when this
    /// output became the filter's result: then it was moved (not copied)
    /// to [`Outcome::output`] and [`stdout_is_output`](Self::stdout_is_output)
    /// is true.
    #[serde(serialize_with = "bytes_lossy")]
    pub stdout: Vec<u8>,
    /// What it wrote to stderr, up to the capture limit.
    #[serde(serialize_with = "bytes_lossy")]
    pub stderr: Vec<u8>,
    /// True if and only if stdout was longer than the limit and was cut.
    pub stdout_truncated: bool,
    /// True if and only if this script's stdout is the filter's result: it
    /// was moved to [`Outcome::output`], and [`stdout`](Self::stdout) is
    /// left empty. [`ScriptRun::output`] finds it either way.
    pub stdout_is_output: bool,
    /// True if and only if stderr was longer than the limit and was cut.
    pub stderr_truncated: bool,
    /// True if and only if it ran out of time and was killed, with its
    /// descendants.
    pub timed_out: bool,
    /// The failure message if it failed (libvirt's text for a bad exit
    /// status), `None` if it succeeded.
    pub error: Option<String>,
    /// Its process id (also its process group id), `None` when no process
    /// was started.
    pub pid: Option<u32>,
    /// Why the script security rules refused it (it never ran); `None`
    /// when it ran.
    pub refused: Option<String>,
    /// True if and only if a cancellation stopped it (it was killed, with
    /// its descendants).
    pub cancelled: bool,
    /// Its descendants still alive after it exited (by pid and command
    /// line), or its output still held open when the drain window ended;
    /// `None` on the normal path.
    pub leftovers: Option<Leftovers>,
    /// The hook profile it ran for (a script of
    /// `<driver>.profiles/<profile>/`); `None` for every other script.
    pub profile: Option<String>,
}

impl ScriptRun {
    /// Returns true if and only if the script counts as successful.
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }

    /// What it wrote to stdout, wherever that is now: `outcome.output` when
    /// [`stdout_is_output`](Self::stdout_is_output), else
    /// [`stdout`](Self::stdout). `outcome` is the [`Outcome`] this run
    /// belongs to.
    pub fn output<'a>(&'a self, outcome: &'a Outcome) -> &'a [u8] {
        match (&outcome.output, self.stdout_is_output) {
            (Some(output), true) => output,
            _ => &self.stdout,
        }
    }
}

/// What running the hook scripts of one event did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// The driver name.
    pub driver: String,
    /// The operation.
    pub operation: String,
    /// The operation's effective failure policy (the driver's, unless the
    /// configuration overrides it): the one that decided the verdict.
    #[serde(serialize_with = "policy_str")]
    pub on_failure: FailurePolicy,
    /// Whether the operation is a filter (its scripts may replace the
    /// document).
    pub filter: bool,
    /// Every script that ran, in order.
    pub scripts: Vec<ScriptRun>,
    /// For filter operations, the document that replaces the input: the
    /// newest non-blank output of a successful script, accepted by the
    /// driver. `None` means unchanged (also for every non-filter operation).
    /// It is moved out of that script's [`ScriptRun::stdout`], not copied.
    #[serde(serialize_with = "opt_bytes_lossy")]
    pub output: Option<Vec<u8>>,
    /// Directory entries that were not run, and why.
    pub skipped: Vec<Skipped>,
    /// Failures that did not refuse the operation (ignore policy), and
    /// other problems worth a look (processes left behind).
    pub warnings: Vec<String>,
    /// The message of the last failure, as libvirt would report it; `None`
    /// when everything succeeded or nothing ran.
    pub error: Option<String>,
    /// The id shared by every audit record of this event; a deferred run
    /// of the event ([`Runner::run_deferred`](crate::Runner::run_deferred))
    /// is given it, so its records share it too.
    pub event_id: String,
    /// The event's deferred scripts, in order (the executable files of the
    /// `deferred/` directories of its per-object and profile directories),
    /// found after the synchronous scripts ran; they have not run. Whoever
    /// answered the caller runs them afterwards with
    /// [`Runner::run_deferred`](crate::Runner::run_deferred), when the
    /// event succeeded; empty for a deferred run's own outcome.
    #[serde(serialize_with = "paths_lossy")]
    pub deferred: Vec<PathBuf>,
}

impl Outcome {
    pub(crate) fn new(
        driver: &str,
        operation: &str,
        on_failure: FailurePolicy,
        filter: bool,
    ) -> Self {
        Outcome {
            driver: driver.to_owned(),
            operation: operation.to_owned(),
            on_failure,
            filter,
            scripts: Vec::new(),
            output: None,
            skipped: Vec::new(),
            warnings: Vec::new(),
            error: None,
            event_id: String::new(),
            deferred: Vec::new(),
        }
    }

    /// Returns true if and only if no script failed. An event with no
    /// scripts succeeds.
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }

    /// The document after the filter scripts: their output if one replaced
    /// it, otherwise `input`.
    pub fn document<'a>(&'a self, input: &'a [u8]) -> &'a [u8] {
        self.output.as_deref().unwrap_or(input)
    }
}

/// Why a directory entry is not run.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SkipReason {
    /// A regular file without any execute bit.
    NotExecutable,
    /// A symbolic link whose target does not exist.
    DanglingSymlink,
    /// A directory (or a link to one); `.d` is not recursive.
    Directory,
    /// A FIFO, socket or device.
    NotRegularFile,
    /// `stat` failed for another reason (the strerror text).
    Unreadable(String),
    /// The script security rules refuse it (the reason: which file or
    /// directory, and what is wrong with it).
    Refused(String),
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::NotExecutable => f.write_str("not executable"),
            SkipReason::DanglingSymlink => f.write_str("dangling symlink"),
            SkipReason::Directory => f.write_str("directory"),
            SkipReason::NotRegularFile => f.write_str("not a regular file"),
            SkipReason::Unreadable(reason) => write!(f, "cannot stat: {reason}"),
            SkipReason::Refused(reason) => write!(f, "refused: {reason}"),
        }
    }
}

/// A directory entry that is not run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// Its full path.
    #[serde(serialize_with = "path_lossy")]
    pub path: PathBuf,
    /// Why it does not run.
    pub reason: SkipReason,
}

/// A script that would run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedScript {
    /// Its full path (also `argv[0]`).
    #[serde(serialize_with = "path_lossy")]
    pub path: PathBuf,
    /// Its argv: path, object, operation, sub-operation, extra.
    pub argv: Vec<String>,
    /// The hook profile it would run for; `None` for every other script.
    pub profile: Option<String>,
}

/// A hook profile that applies to a planned event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedProfile {
    /// Its name.
    pub name: String,
    /// Its directory, `<hooks>/<driver>.profiles/<name>`.
    #[serde(serialize_with = "path_lossy")]
    pub path: PathBuf,
    /// What its scripts get beyond [`Plan::env`]: `VIRT_HOOKS_PROFILE`, then
    /// one `VIRT_HOOKS_PROP_<NAME>` per property given.
    pub env: Vec<EnvVar>,
}

/// One variable of the hook scripts' environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvVar {
    /// Its name.
    pub name: String,
    /// Its value (lossy UTF-8 if the host's value is not UTF-8).
    pub value: String,
}

/// What running an event would do, found without running anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The driver name.
    pub driver: String,
    /// The operation.
    pub operation: String,
    /// The operation's effective failure policy (the driver's, unless the
    /// configuration overrides it).
    #[serde(serialize_with = "policy_str")]
    pub on_failure: FailurePolicy,
    /// Whether the operation is a filter.
    pub filter: bool,
    /// The effective per-script timeout; `None` for none.
    #[serde(serialize_with = "opt_duration_secs")]
    pub timeout: Option<Duration>,
    /// The scripts that would run, in order.
    pub scripts: Vec<PlannedScript>,
    /// The deferred scripts that would run after the event was answered,
    /// in order (see [`Outcome::deferred`]).
    pub deferred: Vec<PlannedScript>,
    /// The effective per-script timeout of the deferred scripts; `None`
    /// for none.
    #[serde(serialize_with = "opt_duration_secs")]
    pub deferred_timeout: Option<Duration>,
    /// Their environment, in order (libvirt's; a profile's scripts get
    /// their profile's variables too).
    pub env: Vec<EnvVar>,
    /// The hook profiles that apply, in the object's order (only when the
    /// plan was given the document and the layout runs profiles).
    pub profiles: Vec<PlannedProfile>,
    /// The size of the stdin document, or `None` for `/dev/null`.
    pub input_len: Option<usize>,
    /// Directory entries that would not run, and why.
    pub skipped: Vec<Skipped>,
    /// Problems that do not stop a script (scripts the security rules would
    /// refuse, in warn mode).
    pub warnings: Vec<String>,
}

pub(crate) fn path_lossy<S: Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&path.to_string_lossy())
}

fn paths_lossy<S: Serializer>(paths: &[PathBuf], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(paths.iter().map(|p| p.to_string_lossy()))
}

fn bytes_lossy<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(bytes))
}

fn opt_bytes_lossy<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match bytes {
        Some(b) => s.serialize_some(&String::from_utf8_lossy(b)),
        None => s.serialize_none(),
    }
}

pub(crate) fn duration_secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn opt_duration_secs<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

pub(crate) fn policy_str<S: Serializer>(p: &FailurePolicy, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(p.as_str())
}
