//! The drivers layer: which drivers the host knows and what each one
//! accepts.
//!
//! - `driver`: one driver as the host uses it (its table read once, the
//!   checks of an event against it);
//! - `plugin`: the loader: the search path, the trust rule for plugin files,
//!   opening one file; it returns what it found and loaded;
//! - `registry`: the drivers a host knows and every policy about them
//!   (duplicates, disabled drivers, the one-driver shortcut).

mod driver;
mod plugin;
mod registry;

pub use self::{
    driver::{Driver, EventError},
    plugin::{
        PLUGIN_PATH_ENV, PLUGIN_PREFIX, PLUGIN_SUFFIX, PluginError, PluginFailure, PluginRefusal,
        PluginSearch, PluginWarning, SYSTEM_PLUGIN_DIR,
    },
    registry::{Registry, RegistryBuilder},
};
