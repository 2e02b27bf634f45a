//! The runner: validates an event, finds its hook scripts, runs them one
//! after the other and turns the results into libvirt's verdict.

use std::{
    ffi::{CString, OsString},
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use virt_hooks_core::{Event, ExtraRule, FailurePolicy, OperationSpec};
use virt_hooks_exec::Cancel;

use super::{
    audit::{self, AuditFile},
    check_report::{self, CheckOptions, CheckReport},
    check_system,
    outcome::{
        EnvVar, Leftovers, Outcome, Plan, PlannedProfile, PlannedScript, ScriptRun, SkipReason,
        Skipped,
    },
    script::{self, Limits},
};
use crate::{
    config::{Config, LeftoverPolicy, SecurityMode, Settings},
    drivers::{Driver, EventError, PLUGIN_PREFIX, PLUGIN_SUFFIX, Registry},
    hooks::{
        Layout,
        discovery::{self, DirError, DropIns, Stage},
        message,
        profiles::{self, Applied},
        security,
    },
};

/// The variables passed through from the host, in libvirt's order
/// (`virCommandAddEnvPassCommon`), each only when the host has it set.
pub const PASS_THROUGH_ENV: [&str; 9] = [
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "DYLD_INSERT_LIBRARIES",
    "DYLD_FORCE_FLAT_NAMESPACE",
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "TMPDIR",
];

/// Why the hook scripts of an event did not (all) succeed, or did not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The event names no loaded driver, breaks its operation table, or the
    /// driver refused it. No script ran; fix the event.
    #[error(transparent)]
    InvalidEvent(#[from] EventError),
    /// One of the event's arguments holds a NUL byte, which no argv can
    /// carry. No script ran.
    #[error("the {argument} of '{driver} {operation}' contains a NUL byte")]
    NulByte {
        /// The driver name.
        driver: String,
        /// The operation.
        operation: String,
        /// Which argument: `object`, `operation`, `sub-operation` or `extra`.
        argument: &'static str,
    },
    /// `<driver>.d` exists but cannot be listed (not a directory, no
    /// permission). The message is libvirt's
    /// `cannot open directory '<path>': <strerror>`. The main script, if
    /// any, has run already (libvirt opens the directory after it); its run
    /// is in `outcome`. Fix or remove the entry.
    #[error("{message}")]
    Discovery {
        /// The driver name.
        driver: String,
        /// The operation.
        operation: String,
        /// The `.d` path.
        path: PathBuf,
        /// libvirt's message.
        message: String,
        /// What ran before (`None` from [`Runner::plan`]).
        outcome: Option<Box<Outcome>>,
    },
    /// A script failed and the operation's policy is
    /// [`FailurePolicy::Abort`]: the operation must be refused. The message
    /// is libvirt's text for the last failure; `outcome` has every script.
    #[error("{message}")]
    Refused {
        /// The driver name.
        driver: String,
        /// The operation.
        operation: String,
        /// The last failure's message, as libvirt reports it.
        message: String,
        /// Every script that ran.
        outcome: Box<Outcome>,
    },
    /// The object's hook profiles cannot be used: it names a profile that
    /// does not exist, misses a required property, gives a value that does
    /// not match its pattern or a property the profile does not declare, or
    /// its profiles metadata is malformed. Raised at an operation whose
    /// policy aborts on failure, before any script ran (at an ignore-policy
    /// operation the problems are warnings and the faulty profiles do not
    /// run). The message names the object, the profile and the property.
    #[error("{message}")]
    Profile {
        /// The driver name.
        driver: String,
        /// The operation.
        operation: String,
        /// The object (the domain's name).
        object: String,
        /// Every problem, `; `-separated.
        message: String,
    },
    /// The run was cancelled ([`Runner::run_with`]): the running script
    /// and its descendants were killed and no further script ran. `outcome` has
    /// the scripts that ran, the killed one last (marked
    /// [`ScriptRun::cancelled`]).
    #[error("the hook scripts of '{driver} {operation}' were cancelled")]
    Cancelled {
        /// The driver name.
        driver: String,
        /// The operation.
        operation: String,
        /// Every script that ran or was stopped.
        outcome: Box<Outcome>,
    },
}

impl RunError {
    /// What ran before the error, if anything did.
    pub fn outcome(&self) -> Option<&Outcome> {
        match self {
            RunError::Discovery { outcome, .. } => outcome.as_deref(),
            RunError::Refused { outcome, .. } | RunError::Cancelled { outcome, .. } => {
                Some(outcome)
            }
            _ => None,
        }
    }
}

/// A runner that cannot be built. No setting makes a build fail today (the
/// audit log is opened by the first record, and trouble with it never
/// refuses an operation); the type stays for settings that may.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {}

/// The `log` target of the records about a script's failure that the
/// caller reports itself (the failure that refuses an operation: its
/// message is the [`RunError`]). A logger sends them to the system log (the
/// journal), not to a terminal or to libvirt's stderr, where the caller's
/// own report goes.
pub const REPORT_TARGET: &str = "virt_hooks::report";

/// Builds a [`Runner`].
///
/// The defaults are libvirt's, except for the robustness limits libvirt does
/// not have: a 120 s timeout per script, a 5 s grace between SIGTERM and
/// SIGKILL, a 500 ms drain window after a script exits, capture limits of
/// 1 MiB for stdout and stderr (64 MiB for a filter's stdout), and the
/// script security rules in [`SecurityMode::Strict`]. They are
/// [`Config::default`]'s, and [`config`](RunnerBuilder::config) applies a
/// whole configuration.
#[derive(Debug, Clone)]
pub struct RunnerBuilder {
    registry: Arc<Registry>,
    settings: Settings,
}

impl RunnerBuilder {
    /// A builder for `registry`'s drivers, with the defaults above and
    /// hooks in [`DEFAULT_HOOKS_DIR`](crate::DEFAULT_HOOKS_DIR).
    pub fn new(registry: Arc<Registry>) -> RunnerBuilder {
        RunnerBuilder { registry, settings: Settings::default() }
    }

    /// Which scripts an event runs (default [`Layout::Libvirt`]: the main
    /// script, then `<driver>.d/*`).
    pub fn layout(&mut self, layout: Layout) -> &mut RunnerBuilder {
        self.settings.layout = layout;
        self
    }

    /// Applies every runner setting of `config`: the hooks directory,
    /// `pass_env`, the timeouts (global, per driver, per operation), grace,
    /// drain, the capture limits, the leftover policy, the security mode,
    /// the per-operation failure policies and the audit log. Per-driver and
    /// per-operation settings are added to those set before. (The
    /// registry's part, `disabled_drivers` and `plugin_path`, is
    /// [`RegistryBuilder::config`](crate::RegistryBuilder::config).)
    pub fn config(&mut self, config: &Config) -> &mut RunnerBuilder {
        config.fill(&mut self.settings);
        self
    }

    /// Extra variables passed through from the host to every hook script,
    /// after libvirt's own list ([`PASS_THROUGH_ENV`]) and each only when
    /// the host has it set (default none, so the environment is exactly
    /// libvirt's). Replaces the list set before. Names in libvirt's list,
    /// `LC_ALL`, empty names and names with `=` are ignored.
    pub fn pass_env<I, S>(&mut self, names: I) -> &mut RunnerBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.settings.pass_env = names.into_iter().map(Into::into).collect();
        self
    }

    /// How the script security rules are enforced (default
    /// [`SecurityMode::Strict`]: an unsafe script is refused and counts as
    /// a failed script).
    pub fn security(&mut self, mode: SecurityMode) -> &mut RunnerBuilder {
        self.settings.security = mode;
        self
    }

    /// What happens to processes a script left behind that still hold its
    /// output when the drain window ends (default
    /// [`LeftoverPolicy::Leave`]).
    pub fn leftovers(&mut self, policy: LeftoverPolicy) -> &mut RunnerBuilder {
        self.settings.leftovers = policy;
        self
    }

    /// The audit log file, appended one JSON line per script run; `None`
    /// for none (default). Audit records are logged at info level under
    /// the target [`AUDIT_TARGET`](crate::AUDIT_TARGET) either way. The
    /// file is opened by the first record, not by [`build`](Self::build):
    /// a runner that only plans or checks opens nothing for writing, and
    /// trouble opening or writing it is logged, never fatal.
    pub fn audit_log(&mut self, path: Option<PathBuf>) -> &mut RunnerBuilder {
        self.settings.audit_log = path;
        self
    }

    /// The per-script timeout of every operation of `driver`, over the
    /// global [`timeout`](RunnerBuilder::timeout); [`Duration::ZERO`] means
    /// none.
    pub fn driver_timeout(&mut self, driver: &str, timeout: Duration) -> &mut RunnerBuilder {
        self.settings.drivers.entry(driver.to_owned()).or_default().timeout = Some(timeout);
        self
    }

    /// The per-script timeout of one operation, over the driver's and the
    /// global one; [`Duration::ZERO`] means none.
    pub fn operation_timeout(
        &mut self,
        driver: &str,
        operation: &str,
        timeout: Duration,
    ) -> &mut RunnerBuilder {
        self.settings.operation(driver, operation).timeout = Some(timeout);
        self
    }

    /// Overrides the failure policy the driver declares for one operation.
    /// The effective policy decides the verdict and is what [`Outcome`] and
    /// [`Plan`] report.
    pub fn operation_policy(
        &mut self,
        driver: &str,
        operation: &str,
        policy: FailurePolicy,
    ) -> &mut RunnerBuilder {
        self.settings.operation(driver, operation).on_failure = Some(policy);
        self
    }

    /// The hooks directory (default [`DEFAULT_HOOKS_DIR`](crate::DEFAULT_HOOKS_DIR)).
    pub fn hooks_dir(&mut self, dir: impl Into<PathBuf>) -> &mut RunnerBuilder {
        self.settings.hooks_dir = dir.into();
        self
    }

    /// How long one script may run before it and its descendants get SIGTERM
    /// (default 120 s); [`Duration::ZERO`] means never, as in libvirt.
    pub fn timeout(&mut self, timeout: Duration) -> &mut RunnerBuilder {
        self.settings.timeout = timeout;
        self
    }

    /// How long after SIGTERM they get SIGKILL (default 5 s).
    pub fn kill_grace(&mut self, grace: Duration) -> &mut RunnerBuilder {
        self.settings.grace = grace;
        self
    }

    /// How long a script's output is still read after it exited (default
    /// 500 ms). Processes it left behind that keep the output open are then
    /// reported as a warning and left alone. `None` reads until end of
    /// file, however long that takes, as libvirt does.
    pub fn drain_window(&mut self, window: Option<Duration>) -> &mut RunnerBuilder {
        self.settings.drain = window;
        self
    }

    /// The most stdout kept per script (default 1 MiB). More is read and
    /// dropped, and the run is marked truncated.
    pub fn stdout_limit(&mut self, bytes: usize) -> &mut RunnerBuilder {
        self.settings.stdout_cap = bytes;
        self
    }

    /// The most stderr kept per script (default 1 MiB).
    pub fn stderr_limit(&mut self, bytes: usize) -> &mut RunnerBuilder {
        self.settings.stderr_cap = bytes;
        self
    }

    /// The most stdout kept per script of a filter operation (default
    /// 64 MiB). A longer output makes the script fail: a cut document must
    /// not replace the real one.
    pub fn filter_output_limit(&mut self, bytes: usize) -> &mut RunnerBuilder {
        self.settings.filter_stdout_cap = bytes;
        self
    }

    /// Builds the runner. This is when the host's environment is read: the
    /// variables of [`PASS_THROUGH_ENV`] (then those of
    /// [`pass_env`](RunnerBuilder::pass_env)) that are set now are the ones
    /// every hook script of this runner gets (after `LC_ALL=C`), whatever
    /// happens to the host's environment later. The audit log is not
    /// opened here but by the first record.
    ///
    /// # Errors
    ///
    /// None today (see [`BuildError`]).
    pub fn build(&self) -> Result<Runner, BuildError> {
        let settings = &self.settings;
        let audit = settings.audit_log.as_deref().map(|path| Arc::new(AuditFile::new(path)));
        // Each event sets its own timeout, and filter operations their own
        // stdout limit.
        let limits = Limits {
            timeout: None,
            grace: settings.grace,
            drain: settings.drain,
            stdout: settings.stdout_cap,
            stderr: settings.stderr_cap,
            leftovers: settings.leftovers,
            filter: false,
        };
        Ok(Runner {
            registry: Arc::clone(&self.registry),
            env: Arc::new(Environment::snapshot(&settings.pass_env)),
            settings: Arc::new(settings.clone()),
            limits,
            audit,
            euid: security::effective_uid(),
        })
    }
}

/// Runs the hook scripts of events, exactly as libvirt does.
///
/// A runner is cheap to clone, `Send` and `Sync`: one runner can serve
/// events from many threads at once. Nothing is cached between calls, so
/// scripts added or removed take effect on the next event.
#[derive(Debug, Clone)]
pub struct Runner {
    registry: Arc<Registry>,
    settings: Arc<Settings>,
    env: Arc<Environment>,
    limits: Limits,
    audit: Option<Arc<AuditFile>>,
    euid: u32,
}

/// What every script of one event shares.
struct Ctx<'a> {
    /// `None` for a driver no plugin provides ([`Runner::run_unlisted`]).
    driver: Option<&'a Driver>,
    spec: &'a OperationSpec,
    event: &'a Event<'a>,
    policy: FailurePolicy,
    limits: Limits,
    cancel: Option<&'a Cancel>,
    /// Shared by the audit records and log records of this event.
    event_id: &'a str,
    /// The event's deferred scripts are running: each gets the event's
    /// document, nothing is chained or checked, and the records say so.
    deferred: bool,
}

impl Runner {
    /// The hooks directory.
    pub fn hooks_dir(&self) -> &Path {
        &self.settings.hooks_dir
    }

    /// The drivers this runner knows.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Which scripts an event runs.
    pub fn layout(&self) -> Layout {
        self.settings.layout
    }

    /// How the script security rules are enforced.
    pub fn security_mode(&self) -> SecurityMode {
        self.settings.security
    }

    /// The audit log file, if one is configured.
    pub fn audit_log(&self) -> Option<&Path> {
        self.audit.as_deref().map(AuditFile::path)
    }

    /// Why the audit log could not be written now, found without opening
    /// it for writing: for `virt-hook check`. `None` when it could, when
    /// none is configured, or when the caller is not root (the hook runs as
    /// root, and only root can tell).
    pub fn audit_problem(&self) -> Option<String> {
        self.audit.as_deref().and_then(|file| file.problem(self.euid))
    }

    /// The effective per-script timeout of `operation` of `driver`: the
    /// operation's, else the driver's, else the global one; `None` for none.
    pub fn timeout_for(&self, driver: &str, operation: &str) -> Option<Duration> {
        self.settings.timeout_for(driver, operation)
    }

    /// The effective per-script timeout of the deferred scripts of
    /// `operation` of `driver`: the operation's `deferred_timeout`, else
    /// the driver's, else the global one; `None` for none.
    pub fn deferred_timeout_for(&self, driver: &str, operation: &str) -> Option<Duration> {
        self.settings.deferred_timeout_for(driver, operation)
    }

    /// The effective failure policy of an operation: the configured
    /// override, else what the driver declares in `spec`.
    fn policy_for(&self, driver: &str, spec: &OperationSpec) -> FailurePolicy {
        self.settings.policy_for(driver, &spec.name).unwrap_or(spec.on_failure)
    }

    /// Runs every hook script of `event`: the main script `<hooks>/<driver>`,
    /// then the executable entries of `<hooks>/<driver>.d/` in byte order,
    /// each with argv `[path, object, operation, sub-operation, extra]`, the
    /// environment described at [`RunnerBuilder::build`] and the event's
    /// document on stdin. Every script runs even after one failed. For a
    /// filter operation each script reads the newest non-blank output of
    /// the scripts before it, as long as none has failed.
    ///
    /// Each script is vetted by the security rules just before it would
    /// start, every link and directory of its chain from the hooks directory
    /// included; in strict mode an unsafe one is not started and counts as a
    /// failed script. The directories on the way are opened once per event.
    /// Each script run is recorded in the audit log, and so is an event
    /// refused before any script ran.
    ///
    /// # Validation
    ///
    /// The event is checked against the driver's operation table (operation,
    /// sub-operation, extra, whether a document is given) first, before the
    /// scripts are looked up. The driver's own checks of the document
    /// (for qemu and lxc, a parse of the domain XML) run only once a script
    /// is found, just before it would start: they protect the scripts, and
    /// an event with no script costs no parse. libvirt itself checks nothing
    /// and formats no XML when no hook script exists. So a bad document for
    /// an event without scripts is not reported by `run`; [`plan`] (given
    /// the document) and [`check`] still report it.
    ///
    /// A filter's accepted output is moved, not copied, into
    /// [`Outcome::output`]: the [`ScriptRun`] it came from is left with an
    /// empty `stdout` and [`ScriptRun::stdout_is_output`] set.
    ///
    /// [`plan`]: Runner::plan
    /// [`check`]: Runner::check
    ///
    /// # Errors
    ///
    /// * [`RunError::InvalidEvent`] and [`RunError::NulByte`]: nothing ran
    ///   (the driver's checks of the document only when a script was
    ///   found).
    /// * [`RunError::Refused`]: a script failed and the operation's
    ///   effective policy aborts on failure. With [`FailurePolicy::Ignore`]
    ///   failures are returned as warnings in the [`Outcome`] instead.
    /// * [`RunError::Discovery`]: `<driver>.d` cannot be listed (also only
    ///   a warning under the ignore policy).
    pub fn run(&self, event: &Event<'_>) -> Result<Outcome, RunError> {
        self.run_inner(event, None)
    }

    /// [`run`](Runner::run), stopped by `cancel`: when it is triggered, the
    /// running script and its descendants get SIGTERM, then SIGKILL after the
    /// grace period; it is reaped, no further script runs, and the call
    /// returns [`RunError::Cancelled`]. Nothing is left running by the
    /// script's group, and no zombie.
    ///
    /// # Errors
    ///
    /// As [`run`](Runner::run), plus [`RunError::Cancelled`].
    pub fn run_with(&self, event: &Event<'_>, cancel: &Cancel) -> Result<Outcome, RunError> {
        self.run_inner(event, Some(cancel))
    }

    /// Runs the per-object scripts of an operation the driver's table does
    /// not list (an operation of a newer libvirt): only those made for
    /// exactly this event, `<hooks>/<driver>.d/<object>/<op>/<subop>` (one
    /// file, or every executable file of that directory), whatever the
    /// layout. The driver cannot check what it does not know, so nothing is
    /// checked but the arguments (no NUL byte) and the scripts' security;
    /// the failure policy is abort (the scripts' status passes through)
    /// unless the configuration sets one for this operation, and the
    /// document, if any, is handed to the scripts as it is. The decision is
    /// logged as a warning and recorded in the audit log; each script run
    /// is recorded as usual.
    ///
    /// An operation the driver lists runs as with [`run`](Runner::run).
    ///
    /// An event for a driver no plugin provides (libvirt calls a hook whose
    /// plugin is missing) runs the same way: exactly the per-object scripts
    /// made for it, if any, their status passed through, since libvirt
    /// applies its own policy. It is logged as an error naming the missing
    /// plugin and the search path, and recorded in the audit log
    /// (decision `no-driver`). A disabled driver's events are still
    /// refused.
    ///
    /// # Errors
    ///
    /// [`RunError::InvalidEvent`] when the event's driver is disabled, and
    /// otherwise as [`run`](Runner::run).
    pub fn run_unlisted(&self, event: &Event<'_>) -> Result<Outcome, RunError> {
        self.run_unlisted_inner(event, None)
    }

    /// [`run_unlisted`](Runner::run_unlisted), stopped by `cancel` as
    /// [`run_with`](Runner::run_with) is.
    ///
    /// # Errors
    ///
    /// As [`run_unlisted`](Runner::run_unlisted), plus
    /// [`RunError::Cancelled`].
    pub fn run_unlisted_with(
        &self,
        event: &Event<'_>,
        cancel: &Cancel,
    ) -> Result<Outcome, RunError> {
        self.run_unlisted_inner(event, Some(cancel))
    }

    fn run_unlisted_inner(
        &self,
        event: &Event<'_>,
        cancel: Option<&Cancel>,
    ) -> Result<Outcome, RunError> {
        let disabled = self.registry.disabled().iter().any(|d| d == event.driver);
        let driver = match self.registry.driver_for(event) {
            Ok(driver) => Some(driver),
            Err(err) if disabled => return Err(self.refused(event, RunError::InvalidEvent(err))),
            Err(_) => None,
        };
        if let Some(driver) = driver {
            if driver.operations().iter().any(|op| op.name == event.operation) {
                return self.run_inner(event, cancel);
            }
        }
        self.refuse_nul(event).map_err(|err| self.refused(event, err))?;
        let spec = OperationSpec::new(event.operation, [event.sub_operation], ExtraRule::Free);
        let scripts =
            discovery::per_object_path(&self.settings.hooks_dir, event.driver, event.args());
        let (level, decision, reason) = if driver.is_some() {
            let reason = format!(
                "driver '{}' has no operation '{}' (a newer libvirt's?): running only the \
                 scripts made for it, {}, without the driver's checks",
                event.driver,
                event.operation,
                scripts.display()
            );
            (log::Level::Warn, "unlisted", reason)
        } else {
            (log::Level::Error, "no-driver", no_plugin(&self.registry, event.driver, &scripts))
        };
        log_event(level, "", event, &reason);
        audit::decision(self.audit.as_deref(), event, &audit::new_event_id(), decision, &reason);
        self.run_stages(event, cancel, driver, &spec, &[Stage::PerObject], false)
    }

    /// Runs the deferred scripts of `event`: the executable files of the
    /// `deferred/` directory of each of its per-object and profile
    /// directories (`<hooks>/<driver>.d/<object>/<op>/<subop>/deferred/`,
    /// `<hooks>/<driver>.profiles/<profile>/<op>/<subop>/deferred/`), in
    /// the order of the synchronous scripts, through the same step as
    /// they: the same argv, environment, security rules, caps, drain and
    /// leftover policy, with the timeout of
    /// [`deferred_timeout_for`](Runner::deferred_timeout_for).
    ///
    /// The caller decides when: after it has answered for the event (a
    /// daemon embedding the library: after the operation went on), and
    /// only when [`run`](Runner::run) succeeded and listed them in
    /// [`Outcome::deferred`]. `event` carries the document the operation
    /// goes on with: for a filter operation, the synchronous scripts'
    /// output ([`Outcome::document`]). Every deferred script reads that
    /// same document; none can rewrite it or refuse anything: failures are
    /// warnings in the returned outcome, logged, and every run is recorded
    /// in the audit log marked `deferred`, with `event_id` (the
    /// synchronous run's [`Outcome::event_id`]; a new one when empty).
    ///
    /// An operation its driver does not list, or a driver no plugin
    /// provides, runs only the per-object deferred scripts, unchecked, as
    /// [`run_unlisted`](Runner::run_unlisted) does.
    ///
    /// # Errors
    ///
    /// [`RunError::InvalidEvent`] and [`RunError::NulByte`] when the event
    /// is not valid (nothing ran); [`RunError::Cancelled`] from
    /// [`run_deferred_with`](Runner::run_deferred_with).
    pub fn run_deferred(&self, event: &Event<'_>, event_id: &str) -> Result<Outcome, RunError> {
        self.run_deferred_inner(event, event_id, None)
    }

    /// [`run_deferred`](Runner::run_deferred), stopped by `cancel` as
    /// [`run_with`](Runner::run_with) is.
    ///
    /// # Errors
    ///
    /// As [`run_deferred`](Runner::run_deferred).
    pub fn run_deferred_with(
        &self,
        event: &Event<'_>,
        event_id: &str,
        cancel: &Cancel,
    ) -> Result<Outcome, RunError> {
        self.run_deferred_inner(event, event_id, Some(cancel))
    }

    /// Records that the deferred run of `event` (the event `event_id`)
    /// was handed over but did not run: its worker could not be started,
    /// or ended before recording its scripts. `reason` says which. The
    /// audit log gets a `deferred-lost` decision (a failure).
    pub fn record_deferred_lost(&self, event: &Event<'_>, event_id: &str, reason: &str) {
        log_event(log::Level::Error, "", event, &format!("deferred scripts lost: {reason}"));
        audit::decision(self.audit.as_deref(), event, event_id, audit::DEFERRED_LOST, reason);
    }

    fn run_deferred_inner(
        &self,
        event: &Event<'_>,
        event_id: &str,
        cancel: Option<&Cancel>,
    ) -> Result<Outcome, RunError> {
        let disabled = self.registry.disabled().iter().any(|d| d == event.driver);
        let driver = self.registry.driver_for(event);
        let listed = driver
            .as_ref()
            .is_ok_and(|d| d.operations().iter().any(|op| op.name == event.operation));
        let unlisted_spec;
        let (driver, spec, stages) = if listed || disabled {
            let (driver, spec) = self.validate(event, event.input.is_some())?;
            (Some(driver), spec, self.settings.layout.stages())
        } else {
            self.refuse_nul(event)?;
            unlisted_spec =
                OperationSpec::new(event.operation, [event.sub_operation], ExtraRule::Free);
            (driver.ok(), &unlisted_spec, &[Stage::PerObject][..])
        };
        let policy = FailurePolicy::Ignore;
        let mut limits = self.limits;
        limits.timeout = self.deferred_timeout_for(event.driver, event.operation);
        let new_id;
        let event_id = if event_id.is_empty() {
            new_id = audit::new_event_id();
            new_id.as_str()
        } else {
            event_id
        };
        let ctx = Ctx { driver, spec, event, policy, limits, cancel, event_id, deferred: true };
        let mut outcome = Outcome::new(event.driver, event.operation, policy, false);
        outcome.event_id = event_id.to_owned();
        let mut profile_runs = Vec::new();
        if self.reads_profiles(event, stages) {
            let (applied, problems) = self.resolve_profiles(event, policy, None)?;
            outcome.warnings.extend(problems);
            profile_runs = applied.into_iter().map(|a| self.env.for_profile(a)).collect();
        }
        let mut dirs = Vec::new();
        for stage in stages {
            match self.find(*stage, event, &profile_runs) {
                Ok(batches) => dirs.extend(
                    batches.into_iter().filter_map(|(found, p)| found.deferred.map(|d| (d, p))),
                ),
                Err(err) => outcome.warnings.push(err.message),
            }
        }
        let found = list_deferred(dirs);
        outcome.skipped.extend(found.skipped);
        outcome.warnings.extend(found.warnings);
        let mut chain = Chain { ret: Ret::NoneRan, output_from: None };
        let mut vetted = security::VettedDirs::default();
        for (path, profile) in found.scripts {
            if cancel.is_some_and(Cancel::is_cancelled) {
                break;
            }
            self.step(&ctx, path, profile, &mut outcome, &mut chain, &mut vetted);
        }
        for run in outcome.scripts.iter().filter(|s| s.error.is_some()) {
            log_script(log::Level::Warn, "", event, event_id, true, run);
        }
        let failures: Vec<String> =
            outcome.scripts.iter().filter_map(|s| s.error.clone()).collect();
        outcome.error = failures.last().cloned();
        outcome.warnings.extend(failures);
        if cancel.is_some_and(Cancel::is_cancelled) {
            return Err(RunError::Cancelled {
                driver: outcome.driver.clone(),
                operation: outcome.operation.clone(),
                outcome: Box::new(outcome),
            });
        }
        Ok(outcome)
    }

    /// Records that `event` was refused before any script ran, for `reason`
    /// (an input document over the cap, say): the audit log gets the
    /// decision. The runner records its own refusals (an invalid event)
    /// itself; the caller reports the reason.
    pub fn record_refusal(&self, event: &Event<'_>, reason: &str) {
        audit::decision(self.audit.as_deref(), event, &audit::new_event_id(), "refused", reason);
    }

    /// Records that the deferred scripts of `outcome`, if any, do not run,
    /// because `why`.
    fn skip_deferred(&self, event: &Event<'_>, event_id: &str, outcome: &Outcome, why: &str) {
        if outcome.deferred.is_empty() {
            return;
        }
        let reason = format!("{why}: its {} deferred script(s) do not run", outcome.deferred.len());
        log_event(log::Level::Info, "", event, &reason);
        audit::decision(self.audit.as_deref(), event, event_id, audit::DEFERRED_SKIPPED, &reason);
    }

    /// `err`, a refusal of `event` before any script ran, recorded.
    fn refused(&self, event: &Event<'_>, err: RunError) -> RunError {
        self.record_refusal(event, &err.to_string());
        err
    }

    fn run_inner(&self, event: &Event<'_>, cancel: Option<&Cancel>) -> Result<Outcome, RunError> {
        // The operation table and the arguments first: they are cheap, and
        // they say where the scripts are. The driver's own checks of the
        // document wait until a script is found (below).
        let (driver, spec) = self.select(event).map_err(|err| self.refused(event, err))?;
        self.run_stages(event, cancel, Some(driver), spec, self.settings.layout.stages(), true)
    }

    /// Runs the scripts `stages` find for `event`; with `check_document`,
    /// the driver checks the document once a script is found. `driver` is
    /// `None` for a driver no plugin provides: nothing is checked.
    fn run_stages(
        &self,
        event: &Event<'_>,
        cancel: Option<&Cancel>,
        driver: Option<&Driver>,
        spec: &OperationSpec,
        stages: &[Stage],
        check_document: bool,
    ) -> Result<Outcome, RunError> {
        let policy = self.policy_for(event.driver, spec);
        let mut limits = self.limits;
        limits.timeout = self.timeout_for(event.driver, event.operation);
        if spec.filter {
            limits.stdout = self.settings.filter_stdout_cap;
            limits.filter = true;
        }
        let event_id = audit::new_event_id();
        let ctx = Ctx {
            driver,
            spec,
            event,
            policy,
            limits,
            cancel,
            event_id: &event_id,
            deferred: false,
        };
        let mut vetted = security::VettedDirs::default();
        let mut validated = !check_document;
        let mut outcome = Outcome::new(event.driver, event.operation, policy, spec.filter);
        outcome.event_id.clone_from(&event_id);
        let mut profile_runs = Vec::new();
        if self.reads_profiles(event, stages) {
            // The document is read: the driver checks it first.
            if let (false, Some(driver)) = (validated, driver) {
                driver
                    .check_document(event)
                    .map_err(|err| self.refused(event, RunError::InvalidEvent(err)))?;
                validated = true;
            }
            let (applied, problems) = self
                .resolve_profiles(event, policy, Some(&event_id))
                .map_err(|err| self.refused(event, err))?;
            outcome.warnings.extend(problems);
            profile_runs = applied.into_iter().map(|a| self.env.for_profile(a)).collect();
        }
        let mut chain = Chain { ret: Ret::NoneRan, output_from: None };
        let stop = || cancel.is_some_and(Cancel::is_cancelled);

        // libvirt runs the main script before it opens `<driver>.d`, so a
        // broken directory fails the call after the main script has run.
        let mut cancelled = false;
        let mut dir_error = None;
        let mut deferred_dirs = Vec::new();
        'stages: for stage in stages {
            let batches = match self.find(*stage, event, &profile_runs) {
                Ok(batches) => batches,
                Err(err) => {
                    dir_error = Some((err.path, err.message));
                    break;
                }
            };
            for (found, profile) in batches {
                outcome.skipped.extend(found.skipped);
                if let Some(dir) = found.deferred {
                    deferred_dirs.push((dir, profile));
                }
                for path in found.scripts {
                    if stop() {
                        cancelled = true;
                        break 'stages;
                    }
                    if let (false, Some(driver)) = (validated, driver) {
                        // A script will run: now the driver checks the document
                        // it is about to read. Nothing has run yet, so a refusal
                        // is still "nothing ran".
                        driver
                            .check_document(event)
                            .map_err(|err| self.refused(event, RunError::InvalidEvent(err)))?;
                        validated = true;
                    }
                    self.step(&ctx, path, profile, &mut outcome, &mut chain, &mut vetted);
                }
            }
        }
        let (dir, dir_error) = match dir_error {
            Some((path, message)) => (path, Some(message)),
            None => (PathBuf::new(), None),
        };
        cancelled |= outcome.scripts.last().is_some_and(|s| s.cancelled);
        let found = list_deferred(deferred_dirs);
        outcome.warnings.extend(found.warnings);
        outcome.deferred = found.scripts.into_iter().map(|(path, _)| path).collect();
        if !cancelled {
            if let (false, Some(driver), false) = (validated, driver, outcome.deferred.is_empty()) {
                // The deferred scripts will read the document: the driver
                // checks it now, while the operation can still be refused.
                driver
                    .check_document(event)
                    .map_err(|err| self.refused(event, RunError::InvalidEvent(err)))?;
            }
        }

        if let Some(i) = chain.output_from {
            // Moved, not copied: a filter's output can be 64 MiB.
            let run = &mut outcome.scripts[i];
            outcome.output = Some(std::mem::take(&mut run.stdout));
            run.stdout_is_output = true;
        }
        let last = dir_error
            .clone()
            .or_else(|| outcome.scripts.iter().rev().find_map(|s| s.error.clone()));
        outcome.error = last.clone();
        if cancelled {
            self.skip_deferred(event, &event_id, &outcome, "the hook was cancelled");
            log::warn!(
                "the hook scripts of '{} {}' were cancelled after {} script(s)",
                event.driver,
                event.operation,
                outcome.scripts.len()
            );
            return Err(RunError::Cancelled {
                driver: outcome.driver.clone(),
                operation: outcome.operation.clone(),
                outcome: Box::new(outcome),
            });
        }
        let Some(message) = last else { return Ok(outcome) };
        if policy == FailurePolicy::Abort {
            self.skip_deferred(event, &event_id, &outcome, "the operation was refused");
        }
        match policy {
            FailurePolicy::Ignore => {
                // Ignored failures are only in the outcome: log them.
                for run in outcome.scripts.iter().filter(|s| s.error.is_some()) {
                    log_script(log::Level::Warn, "", event, &event_id, false, run);
                }
                if let Some(failure) = &dir_error {
                    log_event(log::Level::Warn, "", event, failure);
                }
                let failures = outcome.scripts.iter().filter_map(|s| s.error.clone());
                let failures: Vec<String> = failures.chain(dir_error).collect();
                outcome.warnings.extend(failures);
                Ok(outcome)
            }
            FailurePolicy::Abort => {
                // The last failure is the error, which the caller reports;
                // earlier ones are only in the outcome, so log them. The
                // last one goes to the system log only.
                for run in outcome.scripts.iter().filter(|s| s.error.is_some()) {
                    if run.error.as_deref() == Some(message.as_str()) {
                        log_script(log::Level::Error, REPORT_TARGET, event, &event_id, false, run);
                    } else {
                        log_script(log::Level::Warn, "", event, &event_id, false, run);
                    }
                }
                if dir_error.is_some() {
                    log_event(log::Level::Error, REPORT_TARGET, event, &message);
                }
                let (driver, operation) = (outcome.driver.clone(), outcome.operation.clone());
                Err(match dir_error {
                    Some(_) => RunError::Discovery {
                        driver,
                        operation,
                        path: dir,
                        message,
                        outcome: Some(Box::new(outcome)),
                    },
                    None => {
                        RunError::Refused { driver, operation, message, outcome: Box::new(outcome) }
                    }
                })
            }
        }
    }

    /// What [`run`](Runner::run) would do for `event`, without running
    /// anything: the scripts in order with their argv, the environment, the
    /// input size, the effective policy and timeout, and the entries that
    /// would be skipped (scripts the security rules refuse among them, in
    /// strict mode; in warn mode they are planned, with a warning).
    ///
    /// An event without its input document can be planned: then only the
    /// operation, sub-operation and extra are checked, since the driver's own
    /// checks need the document.
    ///
    /// # Errors
    ///
    /// [`RunError::InvalidEvent`], [`RunError::NulByte`] and
    /// [`RunError::Discovery`], as for [`run`](Runner::run).
    pub fn plan(&self, event: &Event<'_>) -> Result<Plan, RunError> {
        let (_, spec) = self.validate(event, event.input.is_some())?;
        let mut plan = Plan {
            driver: event.driver.to_owned(),
            operation: event.operation.to_owned(),
            on_failure: self.policy_for(event.driver, spec),
            filter: spec.filter,
            timeout: self.timeout_for(event.driver, event.operation),
            scripts: Vec::new(),
            deferred: Vec::new(),
            deferred_timeout: self.deferred_timeout_for(event.driver, event.operation),
            env: self
                .env
                .vars
                .iter()
                .map(|(name, value)| EnvVar {
                    name: name.clone(),
                    value: value.to_string_lossy().into_owned(),
                })
                .collect(),
            input_len: event.input.map(<[u8]>::len),
            profiles: Vec::new(),
            skipped: Vec::new(),
            warnings: Vec::new(),
        };
        let stages = self.settings.layout.stages();
        let mut profile_runs = Vec::new();
        if self.reads_profiles(event, stages) {
            let (applied, problems) = self.resolve_profiles(event, plan.on_failure, None)?;
            plan.warnings.extend(problems);
            plan.profiles = applied
                .iter()
                .map(|a| PlannedProfile {
                    name: a.name.clone(),
                    path: a.dir.clone(),
                    env: a
                        .env
                        .iter()
                        .map(|(name, value)| EnvVar { name: name.clone(), value: value.clone() })
                        .collect(),
                })
                .collect();
            profile_runs = applied.into_iter().map(|a| self.env.for_profile(a)).collect();
        }
        let mut scripts = Vec::new();
        let mut deferred_dirs = Vec::new();
        for stage in stages {
            let batches =
                self.find(*stage, event, &profile_runs).map_err(|err| RunError::Discovery {
                    driver: event.driver.to_owned(),
                    operation: event.operation.to_owned(),
                    path: err.path,
                    message: err.message,
                    outcome: None,
                })?;
            for (found, profile) in batches {
                if let Some(dir) = found.deferred {
                    deferred_dirs.push((dir, profile));
                }
                let profile = profile.map(|p| p.applied.name.clone());
                scripts.extend(found.scripts.into_iter().map(|path| (path, profile.clone())));
                plan.skipped.extend(found.skipped);
            }
        }
        let found = list_deferred(deferred_dirs);
        plan.skipped.extend(found.skipped);
        plan.warnings.extend(found.warnings);
        let deferred =
            found.scripts.into_iter().map(|(path, p)| (path, p.map(|p| p.applied.name.clone())));
        let mut vetted = security::VettedDirs::default();
        for (is_deferred, (path, profile)) in
            scripts.into_iter().map(|s| (false, s)).chain(deferred.map(|s| (true, s)))
        {
            match self.vet_in(&path, &mut vetted) {
                Ok(()) => {}
                Err(reason) if self.settings.security == SecurityMode::Strict => {
                    plan.skipped.push(Skipped { path, reason: SkipReason::Refused(reason) });
                    continue;
                }
                Err(reason) => plan.warnings.push(unsafe_warning(&path, &reason)),
            }
            let planned = PlannedScript { argv: argv_strings(&path, event), path, profile };
            if is_deferred {
                plan.deferred.push(planned);
            } else {
                plan.scripts.push(planned);
            }
        }
        plan.skipped.sort_unstable_by(|a, b| {
            a.path.as_os_str().as_bytes().cmp(b.path.as_os_str().as_bytes())
        });
        Ok(plan)
    }

    /// Audits the hooks directory without running anything: for every
    /// driver of the registry, every entry of `<hooks>/<driver>` and
    /// `<hooks>/<driver>.d/`, whether it would run and why not, with
    /// warnings for unsafe scripts, packaging or editor leftovers and hook
    /// scripts of drivers that are not loaded. For `virt-hook check`.
    pub fn check(&self) -> CheckReport {
        self.check_with(&CheckOptions::default())
    }

    /// [`check`](Runner::check), with the layout chosen per driver as
    /// `options` says, and, where the per-object layout applies, every
    /// entry of the per-object trees given the runner's verdict. Also
    /// reported: a missing hooks directory, no driver loaded, virt-hook
    /// installed for a driver no plugin provides, `<driver>.d` scripts
    /// libvirt runs itself next to virt-hook, a hook made after a running
    /// daemon started (from `/proc`) and, where SELinux is enabled, hook
    /// files whose label a daemon may not run (an advisory). Read-only.
    pub fn check_with(&self, options: &CheckOptions<'_>) -> CheckReport {
        let inputs = check_report::Inputs {
            registry: &self.registry,
            hooks_dir: &self.settings.hooks_dir,
            mode: self.settings.security,
            layout: self.settings.layout,
            options: *options,
            system: &check_system::System::default(),
        };
        check_report::report(&inputs, |path| self.vet(path))
    }

    /// Returns true if and only if the profiles of `event` are looked for:
    /// the stages run profiles, the event has a document, and
    /// `<hooks>/<driver>.profiles/` exists. Otherwise the document is not
    /// read for them (no cost on the path without profiles).
    fn reads_profiles(&self, event: &Event<'_>, stages: &[Stage]) -> bool {
        event.input.is_some()
            && stages.contains(&Stage::Profiles)
            && profiles::profiles_dir(&self.settings.hooks_dir, event.driver).is_dir()
    }

    /// The profiles that apply to `event` and the problems of the others:
    /// [`RunError::Profile`] under the abort policy, warnings (logged)
    /// under the ignore policy.
    fn resolve_profiles(
        &self,
        event: &Event<'_>,
        policy: FailurePolicy,
        event_id: Option<&str>,
    ) -> Result<(Vec<Applied>, Vec<String>), RunError> {
        let Some(document) = event.input else { return Ok((Vec::new(), Vec::new())) };
        let vet = |path: &Path| {
            let mut vetted = security::VettedDirs::default();
            match security::vet_declaration(&self.settings.hooks_dir, path, self.euid, &mut vetted)
            {
                Ok(()) => Ok(()),
                Err(reason) if self.settings.security == SecurityMode::Strict => {
                    Err(reason.to_string())
                }
                Err(reason) => {
                    log::warn!(
                        "{} is unsafe, read anyway (security = warn): {reason}",
                        path.display()
                    );
                    Ok(())
                }
            }
        };
        let hooks = &self.settings.hooks_dir;
        let Some(resolution) = profiles::resolve(hooks, event.driver, event.object, document, &vet)
        else {
            return Ok((Vec::new(), Vec::new()));
        };
        if resolution.problems.is_empty() {
            return Ok((resolution.applied, Vec::new()));
        }
        match policy {
            FailurePolicy::Abort => Err(RunError::Profile {
                driver: event.driver.to_owned(),
                operation: event.operation.to_owned(),
                object: event.object.to_owned(),
                message: resolution.problems.join("; "),
            }),
            FailurePolicy::Ignore => {
                let problems: Vec<String> = resolution
                    .problems
                    .into_iter()
                    .map(|p| format!("{p} (the profile does not run)"))
                    .collect();
                for problem in &problems {
                    log_event(log::Level::Warn, "", event, problem);
                    // A plan (no event id) only shows it.
                    if let Some(event_id) = event_id {
                        let audit = self.audit.as_deref();
                        audit::decision(audit, event, event_id, "profile-ignored", problem);
                    }
                }
                Ok((resolution.applied, problems))
            }
        }
    }

    /// The scripts of one stage for `event`, each batch with the profile it
    /// belongs to (the profiles stage has one batch per profile, in order).
    fn find<'p>(
        &self,
        stage: Stage,
        event: &Event<'_>,
        profiles: &'p [ProfileRun],
    ) -> Result<Vec<(DropIns, Option<&'p ProfileRun>)>, DirError> {
        if stage != Stage::Profiles {
            let found = stage.find(&self.settings.hooks_dir, event.driver, event.args())?;
            return Ok(vec![(found, None)]);
        }
        profiles.iter().map(|p| Ok((p.applied.scripts(event.args())?, Some(p)))).collect()
    }

    /// Vets one script by the security rules: `Err` with the reason if
    /// unsafe.
    fn vet(&self, path: &Path) -> Result<(), String> {
        self.vet_in(path, &mut security::VettedDirs::default())
    }

    /// [`vet`](Runner::vet), skipping the
    /// directories already found safe during the same event.
    fn vet_in(&self, path: &Path, vetted: &mut security::VettedDirs) -> Result<(), String> {
        security::vet_script(&self.settings.hooks_dir, path, self.euid, vetted)
            .map_err(|u| u.to_string())
    }

    /// Validates the event; `with_input: false` leaves out the driver's
    /// checks of the input document (for a plan made without one).
    fn validate<'r>(
        &'r self,
        event: &Event<'_>,
        with_input: bool,
    ) -> Result<(&'r Driver, &'r OperationSpec), RunError> {
        if !with_input {
            let driver = self.registry.driver_for(event)?;
            let spec = driver.validate_args(event)?;
            self.refuse_nul(event)?;
            return Ok((driver, spec));
        }
        let (driver, spec) = self.select(event)?;
        driver.check_document(event)?;
        Ok((driver, spec))
    }

    /// The cheap part of the validation: the driver, the operation table
    /// and the arguments, without the driver's checks of the document.
    fn select<'r>(
        &'r self,
        event: &Event<'_>,
    ) -> Result<(&'r Driver, &'r OperationSpec), RunError> {
        let driver = self.registry.driver_for(event)?;
        let spec = driver.select(event)?;
        self.refuse_nul(event)?;
        Ok((driver, spec))
    }

    /// [`RunError::NulByte`] if an argument holds a NUL byte.
    fn refuse_nul(&self, event: &Event<'_>) -> Result<(), RunError> {
        let args = [
            ("object", event.object),
            ("operation", event.operation),
            ("sub-operation", event.sub_operation),
            ("extra", event.extra),
        ];
        if let Some((argument, _)) = args.iter().find(|(_, v)| v.contains('\0')) {
            return Err(RunError::NulByte {
                driver: event.driver.to_owned(),
                operation: event.operation.to_owned(),
                argument,
            });
        }
        Ok(())
    }

    /// Runs one script and folds it into the chain: libvirt's loop body.
    fn step(
        &self,
        ctx: &Ctx<'_>,
        path: PathBuf,
        profile: Option<&ProfileRun>,
        outcome: &mut Outcome,
        chain: &mut Chain,
        vetted: &mut security::VettedDirs,
    ) {
        let Ctx { driver, spec, event, limits, .. } = *ctx;
        // A deferred script's output is only recorded: it replaces nothing.
        let filter = spec.filter && !ctx.deferred;
        // entry_input = (!script_ret && output && !empty(*output)) ? *output : input
        let input = match chain.output_from {
            Some(i) if chain.ret == Ret::AllOk => Some(outcome.scripts[i].stdout.as_slice()),
            _ => event.input,
        };
        let argv = argv_strings(&path, event);
        log::debug!(
            "Calling hook {} id={} op={} subop={} extra={}",
            path.display(),
            event.object,
            event.operation,
            event.sub_operation,
            event.extra
        );
        let input_len = input.map(<[u8]>::len);
        let mut refused = None;
        let mut unsafe_run = None;
        if let Err(reason) = self.vet_in(&path, vetted) {
            if self.settings.security == SecurityMode::Strict {
                refused = Some(reason);
            } else {
                let warning = unsafe_warning(&path, &reason);
                outcome.warnings.push(warning.clone());
                unsafe_run = Some(warning);
            }
        }
        let fin = if let Some(reason) = &refused {
            script::Finished::refused(message::refused(&path, reason))
        } else {
            match c_argv(&path, event) {
                Ok(c_argv) => {
                    let env = profile.map_or(&self.env.c_strings, |p| &p.c_strings);
                    script::run(&path, &c_argv, env, input, &limits, ctx.cancel)
                }
                Err(err) => script::Finished::not_started(message::not_started(&path, &err)),
            }
        };
        log::debug!(
            "Result {:?}, stdout: '{}' stderr: '{}'",
            fin.status,
            String::from_utf8_lossy(&fin.stdout.data),
            String::from_utf8_lossy(&fin.stderr.data)
        );

        let stdout = &fin.stdout;
        let error = if let Some(error) = fin.error.clone() {
            Some(error)
        } else if fin.cancelled {
            Some(message::cancelled(&path, &fin.killed))
        } else if fin.timed_out {
            limits.timeout.map(|t| message::timed_out(&path, t, &fin.killed))
        } else if !fin.status.success() {
            let prefix = profile.map_or(&self.env.prefix, |p| &p.prefix);
            Some(message::child_failure(prefix, &argv, &fin.status, &fin.stderr.data))
        } else if filter && stdout.truncated {
            Some(message::output_too_large(&path, limits.stdout))
        } else if filter && !message::is_blank(&stdout.data) {
            driver.and_then(|driver| {
                driver.check_output(event, &stdout.data).err().map(|reason| {
                    message::output_refused(&path, driver.name(), &reason.to_string())
                })
            })
        } else {
            None
        };
        let left_behind = fin.leftovers.as_ref().map(|left| leftover_warning(&path, left));
        if let Some(warning) = &left_behind {
            outcome.warnings.push(warning.clone());
        }
        if error.is_some() {
            chain.ret = Ret::Failed;
        } else {
            if chain.ret == Ret::NoneRan {
                chain.ret = Ret::AllOk;
            }
            if filter && !message::is_blank(&stdout.data) {
                chain.output_from = Some(outcome.scripts.len());
            }
        }
        let run = ScriptRun {
            path,
            argv,
            status: fin.status,
            duration: fin.duration,
            input_len,
            stdout_truncated: fin.stdout.truncated,
            stdout_is_output: false,
            stderr_truncated: fin.stderr.truncated,
            stdout: fin.stdout.data,
            stderr: fin.stderr.data,
            timed_out: fin.timed_out,
            error,
            pid: fin.pid,
            refused,
            cancelled: fin.cancelled,
            leftovers: fin.leftovers,
            profile: profile.map(|p| p.applied.name.clone()),
        };
        let warnings = [
            run.refused
                .as_ref()
                .map(|reason| format!("hook script {} refused: {reason}", run.path.display())),
            unsafe_run,
            left_behind,
        ];
        let ids = Ids { event_id: ctx.event_id, deferred: ctx.deferred };
        for warning in warnings.iter().flatten() {
            log_script_with(log::Level::Warn, "", event, ids, &run, warning);
        }
        let audit = self.audit.as_deref();
        if audit::enabled(audit) {
            let kind = audit::RunKind { policy: ctx.policy, filter, deferred: ctx.deferred };
            audit::record(audit, event, ctx.event_id, kind, &run);
        }
        outcome.scripts.push(run);
    }
}

/// The most bytes of a failed script's stderr in the `stderr` field of a
/// log record.
const LOG_TAIL: usize = 2048;

/// Logs the failure of `run`, a script of `event` (a deferred one with
/// `deferred`), with its message and structured fields (see
/// [`log_script_with`]).
fn log_script(
    level: log::Level,
    target: &str,
    event: &Event<'_>,
    event_id: &str,
    deferred: bool,
    run: &ScriptRun,
) {
    if let Some(error) = &run.error {
        let ids = Ids { event_id, deferred };
        if deferred {
            let message = format!("deferred {}", error.trim_start_matches("Hook script "));
            log_script_with(level, target, event, ids, run, &message);
        } else {
            log_script_with(level, target, event, ids, run, error);
        }
    }
}

/// Which run of which event a log record is about.
#[derive(Debug, Clone, Copy)]
struct Ids<'a> {
    event_id: &'a str,
    /// A deferred script's.
    deferred: bool,
}

/// Logs `message` about `run`, a script of `event`, with the fields a
/// system log keeps beside it: `event_id`, `driver`, `object`,
/// `operation`, `sub_operation`, `script`, `exit_status`, the tail of
/// its stderr (`stderr`) and `deferred`. `target` empty is this module's.
fn log_script_with(
    level: log::Level,
    target: &str,
    event: &Event<'_>,
    ids: Ids<'_>,
    run: &ScriptRun,
    message: &str,
) {
    let Ids { event_id, deferred } = ids;
    let target = if target.is_empty() { module_path!() } else { target };
    let script = run.path.to_string_lossy();
    let status = audit::status_text(run);
    let stderr = audit::tail(&run.stderr, LOG_TAIL);
    log::log!(
        target: target,
        level,
        event_id = event_id,
        driver = event.driver,
        object = event.object,
        operation = event.operation,
        sub_operation = event.sub_operation,
        script = script.as_ref(),
        exit_status = status.as_str(),
        stderr = stderr.as_str(),
        deferred = deferred;
        "{message}"
    );
}

/// The deferred scripts of the `deferred/` directories `dirs` (each with
/// the profile it belongs to), in order; entries that do not run, and
/// directories that cannot be listed (as warnings).
fn list_deferred<P>(dirs: Vec<(PathBuf, Option<P>)>) -> DeferredFound<P>
where
    P: Copy,
{
    let mut found =
        DeferredFound { scripts: Vec::new(), skipped: Vec::new(), warnings: Vec::new() };
    for (dir, profile) in dirs {
        match discovery::drop_ins(&dir) {
            Ok(listed) => {
                found.scripts.extend(listed.scripts.into_iter().map(|path| (path, profile)));
                found.skipped.extend(listed.skipped);
            }
            Err(err) => found.warnings.push(err.message),
        }
    }
    found
}

/// What [`list_deferred`] found.
struct DeferredFound<P> {
    scripts: Vec<(PathBuf, Option<P>)>,
    skipped: Vec<Skipped>,
    warnings: Vec<String>,
}

/// Logs `message` about `event` as a whole, with the event's fields.
pub(crate) fn log_event(level: log::Level, target: &str, event: &Event<'_>, message: &str) {
    let target = if target.is_empty() { module_path!() } else { target };
    log::log!(
        target: target,
        level,
        driver = event.driver,
        object = event.object,
        operation = event.operation,
        sub_operation = event.sub_operation;
        "{message}"
    );
}

/// The error logged for an event whose driver no plugin provides: the
/// plugin file looked for, the search path, and what runs instead.
fn no_plugin(registry: &Registry, driver: &str, scripts: &Path) -> String {
    let path: Vec<String> =
        registry.search_path().iter().map(|d| d.display().to_string()).collect();
    format!(
        "no plugin provides driver '{driver}' ({PLUGIN_PREFIX}{driver}{PLUGIN_SUFFIX} not found \
         in {}): running only the scripts made for this event, {}, without any checks",
        if path.is_empty() { "an empty search path".to_owned() } else { path.join(":") },
        scripts.display()
    )
}

fn unsafe_warning(path: &Path, reason: &str) -> String {
    format!(
        "hook script {} is unsafe, running it anyway (security = warn): {reason}",
        path.display()
    )
}

fn leftover_warning(path: &Path, left: &Leftovers) -> String {
    let list: Vec<String> =
        left.processes.iter().map(|p| format!("{} ({})", p.pid, p.cmdline)).collect();
    let more = left.count.saturating_sub(left.processes.len());
    let more = if more > 0 { format!(" and {more} more") } else { String::new() };
    let held = if left.count > 0 {
        format!(
            "{} process(es) it started are still running: {}{more}",
            left.count,
            list.join(", ")
        )
    } else {
        format!(
            "a process outside its tree (pid {}) held its output open after the drain window",
            left.pgid
        )
    };
    let pids: Vec<u32> = left.processes.iter().map(|p| p.pid).collect();
    let fate = if left.killed {
        if more.is_empty() {
            message::killed_processes(&pids)
        } else {
            format!("killed {} processes", left.count)
        }
    } else if left.count > 0 {
        "they were left running".to_owned()
    } else {
        "it was left running".to_owned()
    };
    format!("hook script {} exited, but {held}; {fate}", path.display())
}

/// libvirt's `script_ret`: 1 (nothing ran), 0 (all succeeded), -1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ret {
    NoneRan,
    AllOk,
    Failed,
}

#[derive(Debug)]
struct Chain {
    ret: Ret,
    /// The script whose output is the current document.
    output_from: Option<usize>,
}

fn argv_strings(path: &Path, event: &Event<'_>) -> Vec<String> {
    let mut argv = Vec::with_capacity(5);
    argv.push(path.to_string_lossy().into_owned());
    argv.extend(event.args().iter().map(|a| (*a).to_owned()));
    argv
}

fn c_argv(path: &Path, event: &Event<'_>) -> std::io::Result<Vec<CString>> {
    let mut argv = Vec::with_capacity(5);
    argv.push(CString::new(path.as_os_str().as_bytes())?);
    for arg in event.args() {
        argv.push(CString::new(arg)?);
    }
    Ok(argv)
}

/// The hook scripts' environment, read once from the host.
#[derive(Debug)]
struct Environment {
    /// `LC_ALL=C` then the pass-through variables the host has, in order:
    /// libvirt's list, then the configured extra ones.
    vars: Vec<(String, OsString)>,
    /// The same as `KEY=value` C strings for `posix_spawn`.
    c_strings: Vec<CString>,
    /// The same as libvirt prints it before argv in its error text.
    prefix: String,
}

/// A profile that applies, with its scripts' environment: libvirt's, then
/// the profile's variables.
#[derive(Debug)]
struct ProfileRun {
    applied: Applied,
    c_strings: Vec<CString>,
    prefix: String,
}

impl Environment {
    /// The environment of `applied`'s scripts: this one, then the
    /// profile's variables (they cannot hold a NUL byte: they come from
    /// XML).
    fn for_profile(&self, applied: Applied) -> ProfileRun {
        let mut c_strings = self.c_strings.clone();
        c_strings.extend(
            applied
                .env
                .iter()
                .filter_map(|(name, value)| CString::new(format!("{name}={value}")).ok()),
        );
        let lossy: Vec<(&str, String)> = self
            .vars
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_string_lossy().into_owned()))
            .chain(applied.env.iter().map(|(n, v)| (n.as_str(), v.clone())))
            .collect();
        let prefix = message::env_prefix(lossy.iter().map(|(n, v)| (*n, v.as_str())));
        ProfileRun { applied, c_strings, prefix }
    }

    fn snapshot(extra: &[String]) -> Environment {
        let mut vars = vec![("LC_ALL".to_owned(), OsString::from("C"))];
        let extra = extra.iter().map(String::as_str).filter(|name| {
            !name.is_empty()
                && !name.contains(['=', '\0'])
                && *name != "LC_ALL"
                && !PASS_THROUGH_ENV.contains(name)
        });
        let mut seen = Vec::new();
        for name in PASS_THROUGH_ENV.into_iter().chain(extra) {
            if seen.contains(&name) {
                continue;
            }
            seen.push(name);
            if let Some(value) = std::env::var_os(name) {
                vars.push((name.to_owned(), value));
            }
        }
        let c_strings = vars
            .iter()
            .filter_map(|(name, value)| {
                let mut entry = format!("{name}=").into_bytes();
                entry.extend_from_slice(value.as_bytes());
                // The environment cannot hold NUL bytes; nothing is dropped.
                CString::new(entry).ok()
            })
            .collect();
        let lossy: Vec<(&str, String)> =
            vars.iter().map(|(n, v)| (n.as_str(), v.to_string_lossy().into_owned())).collect();
        let prefix = message::env_prefix(lossy.iter().map(|(n, v)| (*n, v.as_str())));
        Environment { vars, c_strings, prefix }
    }
}
