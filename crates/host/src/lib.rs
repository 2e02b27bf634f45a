/*!
The virt-hooks host library: what a daemon embeds to run libvirt-style hook
scripts.

It loads driver plugins ([`Registry`]), finds the hook scripts of an event and
runs them exactly as libvirt does ([`Runner`]). Process execution itself
(spawning, pipes, timeouts, cancellation) is `virt-hooks-exec`'s.

The crate is built in layers, each a folder: `drivers` (the plugin loader and
the registry), `hooks` (discovery, the security rules, libvirt's messages) and
`run` (the runner, its outcome, the audit log and the `check` report), plus
`config` (the runner's settings and the file that fills them). Everything
public is re-exported here.
*/
#![forbid(unsafe_code)]

pub use crate::{
    config::{
        Config, ConfigError, DEFAULT_CONFIG_FILE, DEFAULT_DEFERRED_DIR, DEFAULT_DEFERRED_PARALLEL,
        DEFAULT_DEFERRED_TIMEOUT, DEFAULT_HOOKS_DIR, DEFAULT_MAX_INPUT, DriverConfig,
        LeftoverPolicy, MAX_DURATION, MIN_DURATION, OperationConfig, SecurityMode, Source,
        checked_seconds, parse_duration,
    },
    drivers::{
        Driver, EventError, PLUGIN_PATH_ENV, PLUGIN_PREFIX, PLUGIN_SUFFIX, PluginError,
        PluginFailure, PluginRefusal, PluginSearch, PluginWarning, Registry, RegistryBuilder,
        SYSTEM_PLUGIN_DIR,
    },
    hooks::{
        DEFERRED_DIR, Layout, PROFILE_ENV, PROFILE_FILE, PROPERTY_ENV_PREFIX, ProfileDecl,
        ProfileFileError, PropertyInfo, SecurityProblem,
    },
    run::{
        AUDIT_TARGET, BuildError, CheckOptions, CheckReport, CheckedFile, DEFAULT_AUDIT_LOG,
        DriverCheck, EnvVar, History, HistoryEntry, HistoryFilter, LIBVIRT_DRIVERS, Leftovers,
        Outcome, PASS_THROUGH_ENV, Plan, PlannedProfile, PlannedScript, ProfileCheck,
        REPORT_TARGET, RunError, Runner, RunnerBuilder, ScriptRun, ScriptStatus, SkipReason,
        Skipped, SkippedLine, TAIL_BYTES, parse_since, read_history,
    },
};
/// The plugin interface version this host speaks (`virt-hooks-abi`'s).
pub use virt_hooks_abi::ABI_VERSION;
pub use virt_hooks_abi::LoadError;
pub use virt_hooks_core::{
    DriverError, DriverInfo, Event, ExtraRule, FailurePolicy, HookDriver, InputSpec, OperationSpec,
    SpecError,
};
/// For [`Runner::run_with`]: when triggered, the running script's process
/// group is stopped and no further script of the event runs; a run started
/// with a switch that is already cancelled runs no script and returns
/// [`RunError::Cancelled`] at once.
#[doc(inline)]
pub use virt_hooks_exec::{Cancel, Process, become_subreaper, is_subreaper, reset_signal_state};

mod config;
mod drivers;
mod hooks;
mod run;
