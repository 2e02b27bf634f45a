/*!
The virt-hooks host library: what a daemon embeds to run libvirt-style hook
scripts.

It loads driver plugins ([`Registry`]), finds the hook scripts of an event and
runs them exactly as libvirt does.
*/

pub use crate::{
    plugin::{PluginError, PluginSearch},
    registry::{Driver, EventError, Registry, RegistryBuilder},
};
pub use virt_hooks_core::{
    DriverError, DriverInfo, Event, ExtraRule, FailurePolicy, HookDriver, InputSpec, OperationSpec,
    SpecError,
};

mod plugin;
mod registry;
