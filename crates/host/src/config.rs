//! The runner's settings and the configuration file that fills them
//! (`/etc/virt-hooks/virt-hooks.toml` by default).
//!
//! `Settings` is the one home of every default and of the per-driver,
//! per-operation lookups (`timeout_for`, `policy_for`); [`Config`] starts
//! from those defaults, and `RunnerBuilder` keeps a `Settings` that a
//! `Config` fills and its setters change.
//!
//! The file only sets values; the layering (command-line flags over the
//! environment over the file over the defaults) is done by whoever builds the
//! runner, with [`Config::set`]-style setters that record where each value came
//! from, so `virt-hook config` can say it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use virt_hooks_core::FailurePolicy;

use crate::hooks::Layout;

/// Where the configuration file is looked for when none is named.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/virt-hooks/virt-hooks.toml";

/// Where libvirt looks for hook scripts on a distribution build.
pub const DEFAULT_HOOKS_DIR: &str = "/etc/libvirt/hooks";

/// What a runner is told. [`Settings::default`] holds every default (a
/// [`Config`] starts from them), and the lookups of one driver's or one
/// operation's values exist only here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    /// Where the hook scripts are.
    pub(crate) hooks_dir: PathBuf,
    /// Environment variables passed to hooks after libvirt's own list.
    pub(crate) pass_env: Vec<String>,
    /// Where the audit log is appended; `None` for none.
    pub(crate) audit_log: Option<PathBuf>,
    /// Per-script timeout; zero means none.
    pub(crate) timeout: Duration,
    /// Time between SIGTERM and SIGKILL.
    pub(crate) grace: Duration,
    /// How long the pipes are drained after the hook exited; `None` reads
    /// until end of file.
    pub(crate) drain: Option<Duration>,
    /// Bytes of stdout kept per script.
    pub(crate) stdout_cap: usize,
    /// Bytes of stderr kept per script.
    pub(crate) stderr_cap: usize,
    /// Bytes of stdout kept per script of a filter operation.
    pub(crate) filter_stdout_cap: usize,
    /// What happens to descendants still holding the pipes.
    pub(crate) leftovers: LeftoverPolicy,
    /// How the script security rules are enforced.
    pub(crate) security: SecurityMode,
    /// Which scripts an event runs.
    pub(crate) layout: Layout,
    /// Per-script timeout of deferred scripts; zero means none.
    pub(crate) deferred_timeout: Duration,
    /// Per-driver and per-operation values, over the global ones.
    pub(crate) drivers: BTreeMap<String, DriverConfig>,
}

impl Default for Settings {
    /// libvirt's behaviour, plus the robustness limits libvirt does not
    /// have.
    fn default() -> Settings {
        Settings {
            hooks_dir: PathBuf::from(DEFAULT_HOOKS_DIR),
            pass_env: Vec::new(),
            audit_log: None,
            timeout: Duration::from_secs(120),
            grace: Duration::from_secs(5),
            drain: Some(Duration::from_millis(500)),
            stdout_cap: 1 << 20,
            stderr_cap: 1 << 20,
            filter_stdout_cap: 64 << 20,
            leftovers: LeftoverPolicy::Leave,
            security: SecurityMode::Strict,
            layout: Layout::Libvirt,
            deferred_timeout: DEFAULT_DEFERRED_TIMEOUT,
            drivers: BTreeMap::new(),
        }
    }
}

impl Settings {
    /// The per-script timeout of one operation: the operation's, else the
    /// driver's, else the global one. `None` when it is zero (no timeout).
    pub(crate) fn timeout_for(&self, driver: &str, operation: &str) -> Option<Duration> {
        self.layered(driver, operation, |o| o.timeout, |d| d.timeout, self.timeout)
    }

    /// The per-script timeout of one operation's deferred scripts: the
    /// operation's `deferred_timeout`, else the driver's, else the global
    /// one. `None` when it is zero (no timeout).
    pub(crate) fn deferred_timeout_for(&self, driver: &str, operation: &str) -> Option<Duration> {
        let global = self.deferred_timeout;
        self.layered(driver, operation, |o| o.deferred_timeout, |d| d.deferred_timeout, global)
    }

    /// A duration of one operation: the operation's (`op`), else the
    /// driver's (`drv`), else `global`. `None` when it is zero.
    fn layered(
        &self,
        driver: &str,
        operation: &str,
        op: impl Fn(&OperationConfig) -> Option<Duration>,
        drv: impl Fn(&DriverConfig) -> Option<Duration>,
        global: Duration,
    ) -> Option<Duration> {
        let d = self.drivers.get(driver);
        let t = d
            .and_then(|d| d.operations.get(operation))
            .and_then(op)
            .or_else(|| d.and_then(drv))
            .unwrap_or(global);
        (!t.is_zero()).then_some(t)
    }

    /// The configured failure policy of one operation, if overridden.
    pub(crate) fn policy_for(&self, driver: &str, operation: &str) -> Option<FailurePolicy> {
        self.drivers.get(driver)?.operations.get(operation)?.on_failure
    }

    /// The values of one operation of one driver, created empty.
    pub(crate) fn operation(&mut self, driver: &str, operation: &str) -> &mut OperationConfig {
        let d = self.drivers.entry(driver.to_owned()).or_default();
        d.operations.entry(operation.to_owned()).or_default()
    }
}

/// The default `max_input`: 64 MiB, far above any real domain XML (libvirt's
/// own RPC limit on one string is a few MiB) and equal to the default cap on
/// a filter's output, the largest document a hook can hand back.
pub const DEFAULT_MAX_INPUT: u64 = 64 << 20;

/// The default per-script timeout of deferred scripts: 10 minutes. They
/// hold no operation, so they may take longer than the synchronous
/// scripts' 120 s; a hung one is still stopped.
pub const DEFAULT_DEFERRED_TIMEOUT: Duration = Duration::from_secs(600);

/// Where `virt-hook` keeps the deferred runs it hands over, by default (as
/// root; another user's `virt-hook` uses its runtime directory).
pub const DEFAULT_DEFERRED_DIR: &str = "/run/virt-hooks/deferred";

/// The default number of objects whose deferred scripts run at once.
pub const DEFAULT_DEFERRED_PARALLEL: u32 = 4;

/// What to do with descendants of a hook still alive after it exited (and,
/// when they hold its pipes, after the drain window).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LeftoverPolicy {
    /// Leave them running; report them as a warning.
    Leave,
    /// Kill them: the hook's descendants still alive after it exited.
    Kill,
}

/// How the script security rules are enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecurityMode {
    /// An unsafe script is refused and counts as a failed script.
    Strict,
    /// An unsafe script runs; the reason is logged as a warning.
    Warn,
}

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The built-in default.
    Default,
    /// The configuration file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// A command-line flag.
    Flag(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(path) => write!(f, "file {}", path.display()),
            Source::Env(name) => write!(f, "environment {name}"),
            Source::Flag(name) => write!(f, "flag {name}"),
        }
    }
}

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid: bad TOML, an unknown key or a bad value.
    #[error("config file {}, line {line}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the offending key or value.
        line: usize,
        /// What is wrong, naming the key.
        message: String,
    },
}

/// Timeouts and policy overrides for one operation of one driver.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationConfig {
    /// Per-script timeout for this operation.
    #[serde(default, deserialize_with = "de_duration_opt")]
    pub timeout: Option<Duration>,
    /// Overrides the driver's failure policy for this operation.
    #[serde(default, deserialize_with = "de_policy_opt")]
    pub on_failure: Option<FailurePolicy>,
    /// Per-script timeout of this operation's deferred scripts.
    #[serde(default, deserialize_with = "de_duration_opt")]
    pub deferred_timeout: Option<Duration>,
}

/// Settings for one driver.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriverConfig {
    /// Per-script timeout for this driver's operations.
    #[serde(default, deserialize_with = "de_duration_opt")]
    pub timeout: Option<Duration>,
    /// Per-script timeout of this driver's deferred scripts.
    #[serde(default, deserialize_with = "de_duration_opt")]
    pub deferred_timeout: Option<Duration>,
    /// Per-operation settings, by operation name.
    #[serde(default)]
    pub operations: BTreeMap<String, OperationConfig>,
}

/// The file's contents: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    hooks_dir: Option<PathBuf>,
    plugin_path: Option<Vec<PathBuf>>,
    pass_env: Option<Vec<String>>,
    disabled_drivers: Option<Vec<String>>,
    #[serde(default, deserialize_with = "de_audit_log")]
    audit_log: Option<Option<PathBuf>>,
    #[serde(default, deserialize_with = "de_duration_opt")]
    timeout: Option<Duration>,
    #[serde(default, deserialize_with = "de_duration_opt")]
    grace: Option<Duration>,
    #[serde(default, deserialize_with = "de_duration_opt")]
    drain: Option<Duration>,
    #[serde(default, deserialize_with = "de_size_opt")]
    stdout_cap: Option<u64>,
    #[serde(default, deserialize_with = "de_size_opt")]
    stderr_cap: Option<u64>,
    #[serde(default, deserialize_with = "de_size_opt")]
    filter_stdout_cap: Option<u64>,
    #[serde(default, deserialize_with = "de_size_opt")]
    max_input: Option<u64>,
    leftovers: Option<LeftoverPolicy>,
    security: Option<SecurityMode>,
    layout: Option<Layout>,
    #[serde(default, deserialize_with = "de_duration_opt")]
    deferred_timeout: Option<Duration>,
    deferred_dir: Option<PathBuf>,
    deferred_parallel: Option<u32>,
    #[serde(default)]
    drivers: BTreeMap<String, DriverConfig>,
}

/// The effective configuration, and where each value came from.
///
/// Start from [`Config::default`] or [`Config::from_file`], then apply the
/// environment and the flags with the setters; each setter records its
/// [`Source`].
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the hook scripts are.
    pub hooks_dir: PathBuf,
    /// Plugin directories searched before the executable's directory and the
    /// system directory.
    pub plugin_path: Vec<PathBuf>,
    /// Environment variables passed to hooks after libvirt's own list.
    pub pass_env: Vec<String>,
    /// Drivers that are not loaded.
    pub disabled_drivers: Vec<String>,
    /// Where the audit log is appended as JSON lines; `None` for none (the
    /// file's `audit_log = ""` or `false`). The library's default is none;
    /// `virt-hook` running as root defaults to
    /// [`DEFAULT_AUDIT_LOG`](crate::DEFAULT_AUDIT_LOG).
    pub audit_log: Option<PathBuf>,
    /// Per-script timeout; zero means none.
    pub timeout: Duration,
    /// Time between SIGTERM and SIGKILL when a timeout kills a hook.
    pub grace: Duration,
    /// How long the pipes are drained after the hook exited.
    pub drain: Duration,
    /// Bytes of stdout kept per script.
    pub stdout_cap: u64,
    /// Bytes of stderr kept per script.
    pub stderr_cap: u64,
    /// Bytes of stdout kept per script of a filter operation.
    pub filter_stdout_cap: u64,
    /// The largest input document `virt-hook` reads (`run --input`, and
    /// stdin as libvirt's hook); a larger one is refused unread.
    pub max_input: u64,
    /// What happens to descendants still holding the pipes.
    pub leftovers: LeftoverPolicy,
    /// How the script security rules are enforced.
    pub security: SecurityMode,
    /// Which scripts an event runs.
    pub layout: Layout,
    /// Per-script timeout of deferred scripts; zero means none.
    pub deferred_timeout: Duration,
    /// Where `virt-hook` keeps the deferred runs it handed over (its
    /// spool): [`DEFAULT_DEFERRED_DIR`] unless set (`virt-hook` not
    /// running as root uses its runtime directory when it is not set).
    pub deferred_dir: PathBuf,
    /// How many objects' deferred scripts `virt-hook` runs at once (at
    /// least 1).
    pub deferred_parallel: u32,
    /// Per-driver settings.
    pub drivers: BTreeMap<String, DriverConfig>,
    sources: BTreeMap<&'static str, Source>,
}

impl Default for Config {
    /// The runner's defaults (those of [`RunnerBuilder::new`](crate::RunnerBuilder::new)),
    /// nothing disabled and no extra plugin directories.
    fn default() -> Config {
        let Settings {
            hooks_dir,
            pass_env,
            audit_log,
            timeout,
            grace,
            drain,
            stdout_cap,
            stderr_cap,
            filter_stdout_cap,
            leftovers,
            security,
            layout,
            deferred_timeout,
            drivers,
        } = Settings::default();
        let bytes = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        Config {
            hooks_dir,
            plugin_path: Vec::new(),
            pass_env,
            disabled_drivers: Vec::new(),
            audit_log,
            timeout,
            grace,
            drain: drain.unwrap_or_default(),
            stdout_cap: bytes(stdout_cap),
            stderr_cap: bytes(stderr_cap),
            filter_stdout_cap: bytes(filter_stdout_cap),
            max_input: DEFAULT_MAX_INPUT,
            leftovers,
            security,
            layout,
            deferred_timeout,
            deferred_dir: PathBuf::from(DEFAULT_DEFERRED_DIR),
            deferred_parallel: DEFAULT_DEFERRED_PARALLEL,
            drivers,
            sources: BTreeMap::new(),
        }
    }
}

impl Config {
    /// Reads a configuration file over the defaults.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Read`] if the file cannot be read,
    /// [`ConfigError::Invalid`] with the line and key if it is not valid.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Config::from_toml(&text, path)
    }

    /// Reads `path` if it exists, else returns the defaults; for the default
    /// file, whose absence is fine.
    ///
    /// # Errors
    ///
    /// As [`Config::from_file`], except for a missing file.
    pub fn from_file_if_exists(path: &Path) -> Result<Config, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Config::from_toml(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(source) => Err(ConfigError::Read { path: path.to_owned(), source }),
        }
    }

    /// Parses configuration text; `path` is only used in errors and sources.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] with the line and key.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let invalid = |line: usize, message: String| ConfigError::Invalid {
            path: path.to_owned(),
            line,
            message,
        };
        let file: FileConfig = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |span| line_of(text, span.start));
            let message = e.message().trim_end().to_owned();
            let message = match key_at(text, line) {
                Some(key)
                    if !message
                        .contains(&format!("`{}`", key.rsplit('.').next().unwrap_or(&key))) =>
                {
                    format!("{key}: {message}")
                }
                _ => message,
            };
            invalid(line, message)
        })?;
        for (key, entries) in [("pass_env", &file.pass_env)] {
            for name in entries.iter().flatten() {
                if !is_variable_name(name) {
                    let line = line_of_key(text, key);
                    return Err(invalid(
                        line,
                        format!(
                            "{key}: \"{}\" is not an environment variable name (letters, digits and '_', not starting with a digit)",
                            name.escape_debug()
                        ),
                    ));
                }
            }
        }
        for dir in file.plugin_path.iter().flatten() {
            if !dir.is_dir() {
                let reason = if dir.exists() { "is not a directory" } else { "does not exist" };
                return Err(invalid(
                    line_of_key(text, "plugin_path"),
                    format!("plugin_path: {} {reason}", dir.display()),
                ));
            }
        }
        let mut config = Config::default();
        let src = || Source::File(path.to_owned());
        macro_rules! take {
            ($($field:ident),* $(,)?) => {$(
                if let Some(value) = file.$field {
                    config.$field = value;
                    config.sources.insert(stringify!($field), src());
                }
            )*};
        }
        take!(
            hooks_dir,
            plugin_path,
            pass_env,
            disabled_drivers,
            timeout,
            grace,
            drain,
            stdout_cap,
            stderr_cap,
            filter_stdout_cap,
            max_input,
            leftovers,
            security,
            layout,
            deferred_timeout
        );
        if let Some(dir) = file.deferred_dir {
            config.deferred_dir = dir;
            config.sources.insert("deferred_dir", src());
        }
        if let Some(n) = file.deferred_parallel {
            if n == 0 {
                return Err(ConfigError::Invalid {
                    path: path.to_owned(),
                    line: key_line(text, "deferred_parallel"),
                    message: "deferred_parallel must be at least 1".to_owned(),
                });
            }
            config.deferred_parallel = n;
            config.sources.insert("deferred_parallel", src());
        }
        if let Some(audit) = file.audit_log {
            config.audit_log = audit;
            config.sources.insert("audit_log", src());
        }
        if !file.drivers.is_empty() {
            config.drivers = file.drivers;
            config.sources.insert("drivers", src());
        }
        Ok(config)
    }

    /// Sets the hooks directory from `source`.
    pub fn set_hooks_dir(&mut self, dir: impl Into<PathBuf>, source: Source) {
        self.hooks_dir = dir.into();
        self.sources.insert("hooks_dir", source);
    }

    /// Puts plugin directories from `source` in front of the plugin path.
    pub fn prepend_plugin_path(&mut self, dirs: Vec<PathBuf>, source: Source) {
        if dirs.is_empty() {
            return;
        }
        let mut path = dirs;
        path.append(&mut self.plugin_path);
        self.plugin_path = path;
        self.sources.insert("plugin_path", source);
    }

    /// Sets the audit log (`None`: off) from `source`.
    pub fn set_audit_log(&mut self, path: Option<PathBuf>, source: Source) {
        self.audit_log = path;
        self.sources.insert("audit_log", source);
    }

    /// Sets the per-script timeout from `source`.
    pub fn set_timeout(&mut self, timeout: Duration, source: Source) {
        self.timeout = timeout;
        self.sources.insert("timeout", source);
    }

    /// Fills `settings` with every runner value of this configuration: the
    /// hooks directory, `pass_env`, the timeouts, grace, drain, the capture
    /// limits, the leftover policy, the security mode, the layout and the
    /// audit log. Per-driver and per-operation values are added to those
    /// already there. (`plugin_path` and `disabled_drivers` are the
    /// registry's.)
    pub(crate) fn fill(&self, settings: &mut Settings) {
        let bytes = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        settings.hooks_dir.clone_from(&self.hooks_dir);
        settings.pass_env.clone_from(&self.pass_env);
        settings.audit_log.clone_from(&self.audit_log);
        settings.timeout = self.timeout;
        settings.grace = self.grace;
        settings.drain = Some(self.drain);
        settings.stdout_cap = bytes(self.stdout_cap);
        settings.stderr_cap = bytes(self.stderr_cap);
        settings.filter_stdout_cap = bytes(self.filter_stdout_cap);
        settings.leftovers = self.leftovers;
        settings.security = self.security;
        settings.layout = self.layout;
        settings.deferred_timeout = self.deferred_timeout;
        for (driver, d) in &self.drivers {
            if let Some(t) = d.timeout {
                settings.drivers.entry(driver.clone()).or_default().timeout = Some(t);
            }
            if let Some(t) = d.deferred_timeout {
                settings.drivers.entry(driver.clone()).or_default().deferred_timeout = Some(t);
            }
            for (op, o) in &d.operations {
                let entry = settings.operation(driver, op);
                if let Some(t) = o.timeout {
                    entry.timeout = Some(t);
                }
                if let Some(t) = o.deferred_timeout {
                    entry.deferred_timeout = Some(t);
                }
                if let Some(p) = o.on_failure {
                    entry.on_failure = Some(p);
                }
            }
        }
    }

    /// Where a top-level key's value came from.
    pub fn source_of(&self, key: &str) -> Source {
        self.sources.get(key).cloned().unwrap_or(Source::Default)
    }

    /// [`entries`](Config::entries) as typed JSON values, for
    /// `virt-hook config --format json`: durations in seconds, sizes in
    /// bytes, lists as arrays, `audit_log` `null` when none.
    pub fn typed_entries(&self) -> Vec<(&'static str, serde_json::Value, Source)> {
        use serde_json::{Value, json};
        let paths = |v: &[PathBuf]| -> Value {
            v.iter().map(|p| Value::from(p.to_string_lossy().into_owned())).collect()
        };
        self.entries()
            .into_iter()
            .map(|(key, text, source)| {
                let value = match key {
                    "hooks_dir" => json!(self.hooks_dir.to_string_lossy()),
                    "plugin_path" => paths(&self.plugin_path),
                    "pass_env" => json!(self.pass_env),
                    "disabled_drivers" => json!(self.disabled_drivers),
                    "audit_log" => json!(self.audit_log.as_ref().map(|p| p.to_string_lossy())),
                    "timeout" => json!(self.timeout.as_secs_f64()),
                    "grace" => json!(self.grace.as_secs_f64()),
                    "drain" => json!(self.drain.as_secs_f64()),
                    "stdout_cap" => json!(self.stdout_cap),
                    "stderr_cap" => json!(self.stderr_cap),
                    "filter_stdout_cap" => json!(self.filter_stdout_cap),
                    "max_input" => json!(self.max_input),
                    "deferred_timeout" => json!(self.deferred_timeout.as_secs_f64()),
                    "deferred_dir" => json!(self.deferred_dir.to_string_lossy()),
                    "deferred_parallel" => json!(self.deferred_parallel),
                    _ => Value::from(text),
                };
                (key, value, source)
            })
            .collect()
    }

    /// Every top-level key with its value as text and its source, in the
    /// file's vocabulary; for `virt-hook config`.
    pub fn entries(&self) -> Vec<(&'static str, String, Source)> {
        let list = |v: &[String]| format!("[{}]", v.join(", "));
        let paths =
            |v: &[PathBuf]| list(&v.iter().map(|p| p.display().to_string()).collect::<Vec<_>>());
        let secs = |d: Duration| format!("{}s", d.as_secs_f64());
        let rows: Vec<(&'static str, String)> = vec![
            ("hooks_dir", self.hooks_dir.display().to_string()),
            ("plugin_path", paths(&self.plugin_path)),
            ("pass_env", list(&self.pass_env)),
            ("disabled_drivers", list(&self.disabled_drivers)),
            (
                "audit_log",
                self.audit_log.as_ref().map_or("none".to_owned(), |p| p.display().to_string()),
            ),
            ("timeout", secs(self.timeout)),
            ("grace", secs(self.grace)),
            ("drain", secs(self.drain)),
            ("stdout_cap", self.stdout_cap.to_string()),
            ("stderr_cap", self.stderr_cap.to_string()),
            ("filter_stdout_cap", self.filter_stdout_cap.to_string()),
            ("max_input", self.max_input.to_string()),
            ("leftovers", format!("{:?}", self.leftovers).to_lowercase()),
            ("security", format!("{:?}", self.security).to_lowercase()),
            (
                "layout",
                match self.layout {
                    Layout::Libvirt => "libvirt",
                    Layout::PerObject => "per-object",
                    Layout::Both => "both",
                }
                .to_owned(),
            ),
            ("deferred_timeout", secs(self.deferred_timeout)),
            ("deferred_dir", self.deferred_dir.display().to_string()),
            ("deferred_parallel", self.deferred_parallel.to_string()),
            ("drivers", self.describe_drivers()),
        ];
        rows.into_iter().map(|(k, v)| (k, v, self.source_of(k))).collect()
    }

    fn describe_drivers(&self) -> String {
        let mut parts = Vec::new();
        for (name, d) in &self.drivers {
            if let Some(t) = d.timeout {
                parts.push(format!("{name}.timeout={}s", t.as_secs_f64()));
            }
            if let Some(t) = d.deferred_timeout {
                parts.push(format!("{name}.deferred_timeout={}s", t.as_secs_f64()));
            }
            for (op, o) in &d.operations {
                if let Some(t) = o.timeout {
                    parts.push(format!("{name}.{op}.timeout={}s", t.as_secs_f64()));
                }
                if let Some(t) = o.deferred_timeout {
                    parts.push(format!("{name}.{op}.deferred_timeout={}s", t.as_secs_f64()));
                }
                if let Some(p) = o.on_failure {
                    parts.push(format!("{name}.{op}.on_failure={p}"));
                }
            }
        }
        if parts.is_empty() { "none".to_owned() } else { parts.join(", ") }
    }
}

/// The line of the first line that sets `key` (1 when none does).
fn key_line(text: &str, key: &str) -> usize {
    text.lines().position(|l| l.trim_start().starts_with(key)).map_or(1, |i| i + 1)
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// A duration: a number of seconds (`120`, `0.5`) or a string with a unit
/// (`"500ms"`, `"2s"`, `"5m"`).
fn de_duration_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(u64),
        Float(f64),
        Text(String),
    }
    let err = |what: &str| -> D::Error {
        serde::de::Error::custom(format!(
            "invalid duration {what}: use seconds (120, 0.5) or a string with a unit (\"500ms\", \"2s\", \"5m\")"
        ))
    };
    let secs = match Raw::deserialize(d)? {
        Raw::Int(s) => s.to_string(),
        Raw::Float(s) if s.abs() >= 1e15 => format!("{s:e}"),
        Raw::Float(s) => s.to_string(),
        Raw::Text(t) => t,
    };
    match parse_duration(&secs) {
        Some(Ok(duration)) => Ok(Some(duration)),
        Some(Err(range)) => Err(serde::de::Error::custom(format!("duration {secs} {range}"))),
        None => Err(err(&format!("\"{secs}\""))),
    }
}

/// The longest duration accepted anywhere (a timeout, a grace, a drain):
/// one year. Beyond it a value is a typo or an attempt to overflow a clock.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// The shortest non-zero duration accepted: one millisecond. Below it a
/// value cannot mean anything the clocks used here can measure.
pub const MIN_DURATION: Duration = Duration::from_millis(1);

/// Seconds as a duration, checked: `Err` says why a number (finite,
/// non-negative) is out of range; zero is allowed (no timeout, no grace).
///
/// # Errors
///
/// A reason when `secs` is negative, not finite, above [`MAX_DURATION`] or
/// between zero and [`MIN_DURATION`].
pub fn checked_seconds(secs: f64) -> Result<Duration, String> {
    if !secs.is_finite() || secs < 0.0 {
        return Err("is not a non-negative number of seconds".to_owned());
    }
    if secs > MAX_DURATION.as_secs_f64() {
        return Err(format!("is too large (at most {}s, one year)", MAX_DURATION.as_secs()));
    }
    if secs > 0.0 && secs < MIN_DURATION.as_secs_f64() {
        return Err("is too small to mean anything (at least 1ms, or 0 for none)".to_owned());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses `"500ms"`, `"2s"`, `"1.5s"`, `"5m"` or plain seconds: `None` when
/// it is not a duration, `Some(Err)` when it is one out of range.
pub fn parse_duration(text: &str) -> Option<Result<Duration, String>> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number.trim().parse().ok()?;
    (value.is_finite() && value >= 0.0).then(|| checked_seconds(value * scale))
}

/// Returns true if and only if `name` can be an environment variable's name
/// as the shell knows it: ASCII letters, digits and `_`, not starting with
/// a digit.
fn is_variable_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The dotted key set on `line` (1-based) of `text`: the last table header
/// above it and the name before `=`; `None` when the line sets nothing.
fn key_at(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let here = lines.get(line.checked_sub(1)?)?;
    let (name, _) = here.split_once('=')?;
    let name = name.trim().trim_matches('"');
    let table = lines[..line - 1].iter().rev().map(|l| l.trim()).find(|l| l.starts_with('['));
    let table = table.map(|t| t.trim_matches(|c| c == '[' || c == ']').trim());
    Some(match table {
        Some(t) if !t.is_empty() => format!("{t}.{name}"),
        _ => name.to_owned(),
    })
}

/// The line where the top-level `key` is set (1 if not found).
fn line_of_key(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| l.split_once('=').is_some_and(|(k, _)| k.trim() == key))
        .map_or(1, |i| i + 1)
}

/// A size in bytes: a number (`1048576`) or a string with a binary unit
/// (`"512KiB"`, `"64MiB"`, `"1GiB"`, `"100B"`).
fn de_size_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Int(n) => Ok(Some(n)),
        Raw::Text(t) => parse_size(&t).map(Some).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid size \"{t}\": use bytes (1048576) or a string with a unit (\"512KiB\", \"64MiB\", \"1GiB\")"
            ))
        }),
    }
}

/// Parses `"64MiB"`, `"512KiB"`, `"1GiB"`, `"100B"` or plain bytes.
pub(crate) fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let units: [(&str, u64); 4] = [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("B", 1)];
    let (number, scale) = units
        .iter()
        .find_map(|(unit, scale)| text.strip_suffix(unit).map(|n| (n, *scale)))
        .unwrap_or((text, 1));
    number.trim().parse::<u64>().ok()?.checked_mul(scale)
}

/// `audit_log`: a path; `""` or `false` turns it off.
fn de_audit_log<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<PathBuf>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Off(bool),
        Path(PathBuf),
    }
    match Raw::deserialize(d)? {
        Raw::Off(false) => Ok(Some(None)),
        Raw::Path(p) if p.as_os_str().is_empty() => Ok(Some(None)),
        Raw::Path(p) => Ok(Some(Some(p))),
        Raw::Off(true) => Err(serde::de::Error::custom(
            "invalid audit_log true: use a file path, or \"\" or false for none",
        )),
    }
}

fn de_policy_opt<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<FailurePolicy>, D::Error> {
    match String::deserialize(d)?.as_str() {
        "abort" => Ok(Some(FailurePolicy::Abort)),
        "ignore" => Ok(Some(FailurePolicy::Ignore)),
        other => Err(serde::de::Error::custom(format!(
            "invalid failure policy \"{other}\": use \"abort\" or \"ignore\""
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new("/etc/virt-hooks/virt-hooks.toml"))
    }

    /// The runner's settings as `config` fills them.
    fn settings(config: &Config) -> Settings {
        let mut settings = Settings::default();
        config.fill(&mut settings);
        settings
    }

    #[test]
    fn an_empty_file_is_the_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.timeout, Duration::from_secs(120));
        assert_eq!(c.source_of("timeout"), Source::Default);
        // The defaults exist once: a default configuration fills in exactly
        // the default settings.
        assert_eq!(settings(&c), Settings::default());
        assert_eq!(settings(&Config::default()), Settings::default());
    }

    #[test]
    fn values_and_sources_come_from_the_file() {
        let c = parse(
            r#"
hooks_dir = "/srv/hooks"
timeout = "2s"
drain = 0.25
leftovers = "kill"
[drivers.qemu]
timeout = 30
[drivers.qemu.operations.release]
timeout = "500ms"
on_failure = "abort"
"#,
        )
        .unwrap();
        assert_eq!(c.hooks_dir, Path::new("/srv/hooks"));
        assert_eq!(c.drain, Duration::from_millis(250));
        assert_eq!(c.leftovers, LeftoverPolicy::Kill);
        let s = settings(&c);
        assert_eq!(s.timeout_for("qemu", "release"), Some(Duration::from_millis(500)));
        assert_eq!(s.timeout_for("qemu", "start"), Some(Duration::from_secs(30)));
        assert_eq!(s.timeout_for("lxc", "start"), Some(Duration::from_secs(2)));
        assert_eq!(s.policy_for("qemu", "release"), Some(FailurePolicy::Abort));
        assert_eq!(s.policy_for("qemu", "start"), None);
        assert_eq!(
            c.source_of("hooks_dir"),
            Source::File(PathBuf::from("/etc/virt-hooks/virt-hooks.toml"))
        );
    }

    #[test]
    fn zero_timeout_means_none() {
        assert_eq!(settings(&parse("timeout = 0").unwrap()).timeout_for("qemu", "start"), None);
    }

    #[test]
    fn an_unknown_key_names_the_file_line_and_key() {
        let err = parse("hooks_dir = \"/x\"\n\ntimout = 3\n").unwrap_err().to_string();
        assert!(
            err.starts_with(
                "config file /etc/virt-hooks/virt-hooks.toml, line 3: unknown field `timout`"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_bad_value_names_the_line_and_the_problem() {
        let err = parse("leftovers = \"keep\"\n").unwrap_err().to_string();
        assert!(err.contains("line 1") && err.contains("keep"), "{err}");
        let err = parse("[drivers.qemu]\ntimeout = \"soon\"\n").unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("invalid duration \"soon\""), "{err}");
        let err = parse("[drivers.qemu.operations.start]\non_failure = \"maybe\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("\"maybe\""), "{err}");
    }

    #[test]
    fn every_out_of_range_duration_is_an_error_naming_line_and_key() {
        let cases = [
            ("timeout = 1e300\n", "timeout: duration 1e300 is too large"),
            ("grace = 18446744073709551615\n", "grace: duration 18446744073709551615 is too large"),
            ("timeout = 18446744073709551615\n", "is too large"),
            ("drain = \"1e19s\"\n", "drain: duration 1e19s is too large"),
            ("timeout = 1e-12\n", "timeout: duration 0.000000000001 is too small"),
            (
                "\n[drivers.qemu.operations.start]\ntimeout = \"0.0001ms\"\n",
                "drivers.qemu.operations.start.timeout: duration",
            ),
            ("timeout = nan\n", "invalid duration"),
            ("timeout = -1\n", "invalid duration"),
        ];
        for (text, want) in cases {
            let err = parse(text).expect_err(text).to_string();
            let line = text.lines().count();
            assert!(err.contains(&format!("line {line}:")), "{text}: {err}");
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn pass_env_entries_must_be_names_and_plugin_dirs_must_exist() {
        for bad in ["\"A=B\"", "\"\"", "\"1A\"", "\"A B\""] {
            let err = parse(&format!("hooks_dir = \"/x\"\npass_env = [\"OK\", {bad}]\n"))
                .expect_err(bad)
                .to_string();
            assert!(
                err.contains("line 2: pass_env:")
                    && err.contains("not an environment variable name"),
                "{err}"
            );
        }
        assert!(parse("pass_env = [\"_A1\", \"LANG\"]\n").is_ok());
        let err =
            parse("plugin_path = [\"/nonexistent/plugins\"]\n").expect_err("missing").to_string();
        assert!(err.contains("line 1: plugin_path: /nonexistent/plugins does not exist"), "{err}");
        assert!(parse("plugin_path = [\"/\"]\n").is_ok());
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_size("512 KiB"), Some(512 << 10));
        assert_eq!(parse_size("1GiB"), Some(1 << 30));
        assert_eq!(parse_size("100B"), Some(100));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("1.5MiB"), None);
        assert_eq!(parse_size("-1"), None);
        assert_eq!(parse_size("64MB"), None);
        assert_eq!(parse_size("99999999999GiB"), None);
        let c = parse("max_input = \"1MiB\"\nstdout_cap = 4096\n").unwrap();
        assert_eq!((c.max_input, c.stdout_cap), (1 << 20, 4096));
        assert_eq!(parse("").unwrap().max_input, 64 << 20);
        let err = parse("\nmax_input = \"lots\"\n").unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("invalid size \"lots\""), "{err}");
    }

    #[test]
    fn the_audit_log_is_a_path_or_off() {
        let c = parse("audit_log = \"/srv/audit.jsonl\"").unwrap();
        assert_eq!(c.audit_log.as_deref(), Some(Path::new("/srv/audit.jsonl")));
        for off in ["audit_log = \"\"", "audit_log = false"] {
            let c = parse(off).unwrap();
            assert_eq!(c.audit_log, None, "{off}");
            assert!(matches!(c.source_of("audit_log"), Source::File(_)), "{off}");
        }
        let err = parse("\naudit_log = true").unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("invalid audit_log true"), "{err}");
        assert!(parse("audit_log = 3").is_err());
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms"), Some(Ok(Duration::from_millis(500))));
        assert_eq!(parse_duration("5m"), Some(Ok(Duration::from_secs(300))));
        assert_eq!(parse_duration("1.5"), Some(Ok(Duration::from_millis(1500))));
        assert_eq!(parse_duration("-1"), None);
        assert_eq!(parse_duration("x"), None);
        assert!(matches!(parse_duration("1e300"), Some(Err(_))));
        assert!(matches!(parse_duration("0.000000000001"), Some(Err(_))));
        assert_eq!(parse_duration("0"), Some(Ok(Duration::ZERO)));
    }
}
