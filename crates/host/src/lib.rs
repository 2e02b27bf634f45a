/*!
The virt-hooks host library: what a daemon embeds to run libvirt-style hook
scripts.

It loads driver plugins ([`Registry`]), finds the hook scripts of an event and
runs them exactly as libvirt does. Process execution itself (spawning,
pipes, timeouts, cancellation) is `virt-hooks-exec`'s.
*/
#![forbid(unsafe_code)]

pub use crate::{
    audit::AUDIT_TARGET,
    check::{CheckReport, CheckedFile, DriverCheck},
    config::{
        Config, ConfigError, DEFAULT_CONFIG_FILE, DriverConfig, LeftoverPolicy, OperationConfig,
        SecurityMode, Source,
    },
    discovery::Layout,
    outcome::{
        EnvVar, Leftovers, Outcome, Plan, PlannedScript, ScriptRun, ScriptStatus, SkipReason,
        Skipped,
    },
    plugin::{
        PLUGIN_PATH_ENV, PLUGIN_PREFIX, PLUGIN_SUFFIX, PluginError, PluginSearch, SYSTEM_PLUGIN_DIR,
    },
    registry::{Driver, EventError, Registry, RegistryBuilder},
    runner::{BuildError, DEFAULT_HOOKS_DIR, PASS_THROUGH_ENV, RunError, Runner, RunnerBuilder},
};
pub use virt_hooks_core::{
    DriverError, DriverInfo, Event, ExtraRule, FailurePolicy, HookDriver, InputSpec, OperationSpec,
    SpecError,
};
/// For [`Runner::run_with`]: when triggered, the running script's process
/// group is stopped and no further script of the event runs; a run started
/// with a switch that is already cancelled runs no script and returns
/// [`RunError::Cancelled`] at once.
#[doc(inline)]
pub use virt_hooks_exec::Cancel;

mod audit;
mod check;
mod config;
mod discovery;
mod message;
mod outcome;
mod plugin;
mod registry;
mod runner;
mod script;
mod security;
