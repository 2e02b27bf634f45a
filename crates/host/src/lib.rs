/*!
The virt-hooks host library: what a daemon embeds to run libvirt-style hook
scripts.

It loads driver plugins ([`Registry`]), finds the hook scripts of an event and
runs them exactly as libvirt does.
*/

pub use crate::{
    audit::AUDIT_TARGET,
    cancel::Cancel,
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
/// The plugin interface version this host speaks (`virt-hooks-abi`'s).
pub use virt_hooks_abi::ABI_VERSION;
pub use virt_hooks_core::{
    DriverError, DriverInfo, Event, ExtraRule, FailurePolicy, HookDriver, InputSpec, OperationSpec,
    SpecError,
};

mod audit;
mod cancel;
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
mod spawn;
