use std::path::{Path, PathBuf};
use std::sync::Arc;

use virt_hooks_core::{DriverError, DriverInfo, Event, HookDriver, OperationSpec, SpecError};

use crate::{
    config::Config,
    plugin::{self, PluginError, PluginSearch},
};

/// A driver the host can use: its description and operation table, read once
/// when it was loaded, and the implementation behind them.
pub struct Driver {
    info: DriverInfo,
    operations: Vec<OperationSpec>,
    file: Option<PathBuf>,
    imp: Arc<dyn HookDriver>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("info", &self.info)
            .field("file", &self.file)
            .field("operations", &self.operations.len())
            .finish_non_exhaustive()
    }
}

impl Driver {
    /// Wraps a driver, reading its description and operation table once.
    /// `file` is the plugin it came from, or `None` for a driver compiled in.
    pub(crate) fn new(imp: impl Into<Arc<dyn HookDriver>>, file: Option<PathBuf>) -> Driver {
        let imp = imp.into();
        Driver { info: imp.info(), operations: imp.operations(), file, imp }
    }

    /// The driver name (the hook script's file name).
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// Name, version and description.
    pub fn info(&self) -> &DriverInfo {
        &self.info
    }

    /// The operation table.
    pub fn operations(&self) -> &[OperationSpec] {
        &self.operations
    }

    /// The plugin file the driver was loaded from; `None` when compiled in.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Checks `event` against the operation table, then lets the driver check
    /// the rest. Returns the event's row of the table.
    ///
    /// # Errors
    ///
    /// [`EventError`] naming the driver, the operation and the reason.
    pub fn validate<'s>(&'s self, event: &Event<'_>) -> Result<&'s OperationSpec, EventError> {
        let spec = self.select(event)?;
        self.check_document(event)?;
        Ok(spec)
    }

    /// The first half of [`validate`](Driver::validate): the event against
    /// the operation table only (operation, sub-operation, extra, whether a
    /// document is there). Cheap; the driver's code is not called.
    ///
    /// # Errors
    ///
    /// [`EventError::Spec`].
    pub fn select<'s>(&'s self, event: &Event<'_>) -> Result<&'s OperationSpec, EventError> {
        OperationSpec::select(&self.operations, event).map_err(EventError::Spec)
    }

    /// The second half of [`validate`](Driver::validate): the driver's own
    /// checks of the event (for the qemu and lxc drivers, a parse of the
    /// domain XML). The runner calls it only once it knows a script will run.
    ///
    /// # Errors
    ///
    /// [`EventError::Driver`] with the driver's reason.
    pub fn check_document(&self, event: &Event<'_>) -> Result<(), EventError> {
        self.imp.validate(event).map_err(|source| EventError::Driver {
            driver: self.info.name.clone(),
            operation: event.operation.to_owned(),
            source,
        })
    }

    /// Checks only what says which scripts `event` would run: the operation,
    /// its sub-operation and extra, not the input document (which the
    /// driver's own checks need). For planning without a document.
    ///
    /// # Errors
    ///
    /// [`EventError::Spec`].
    pub fn validate_args<'s>(&'s self, event: &Event<'_>) -> Result<&'s OperationSpec, EventError> {
        let spec = OperationSpec::find(&self.operations, event).map_err(EventError::Spec)?;
        spec.check_args(event).map_err(EventError::Spec)?;
        Ok(spec)
    }

    /// Lets the driver check a filter script's output.
    ///
    /// # Errors
    ///
    /// The driver's reason.
    pub fn check_output(&self, event: &Event<'_>, output: &[u8]) -> Result<(), DriverError> {
        self.imp.check_output(event, output)
    }
}

/// An event that no script may see: it names no loaded driver, breaks its
/// operation table, or was refused by the driver.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// No loaded driver has this name.
    #[error("no driver named '{driver}'; loaded drivers: {}", if valid.is_empty() { "none".to_owned() } else { valid.join(", ") })]
    UnknownDriver {
        /// The name asked for.
        driver: String,
        /// The names of the loaded drivers.
        valid: Vec<String>,
    },
    /// The event does not fit the driver's operation table.
    #[error(transparent)]
    Spec(SpecError),
    /// The driver refused the event.
    #[error("driver '{driver}' refused '{operation}': {source}")]
    Driver {
        /// The driver name.
        driver: String,
        /// The operation.
        operation: String,
        /// The driver's reason.
        source: DriverError,
    },
}

/// The drivers a host knows, and the plugins that failed to load.
///
/// Drivers come from plugin files found on a search path (see
/// [`RegistryBuilder`]) and from drivers compiled into the embedding program.
/// When two have the same name the first one wins and the second is reported
/// as an error.
#[derive(Debug, Default)]
pub struct Registry {
    drivers: Vec<Driver>,
    errors: Vec<PluginError>,
    disabled: Vec<String>,
}

impl Registry {
    /// A builder with the default search path.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::new()
    }

    /// The driver with this name.
    pub fn get(&self, name: &str) -> Option<&Driver> {
        self.drivers.iter().find(|d| d.name() == name)
    }

    /// The driver named by `event.driver`, or an error listing the loaded ones.
    ///
    /// # Errors
    ///
    /// [`EventError::UnknownDriver`].
    pub fn driver_for(&self, event: &Event<'_>) -> Result<&Driver, EventError> {
        self.get(event.driver).ok_or_else(|| EventError::UnknownDriver {
            driver: event.driver.to_owned(),
            valid: self.drivers.iter().map(|d| d.name().to_owned()).collect(),
        })
    }

    /// Every loaded driver, in load order.
    pub fn drivers(&self) -> &[Driver] {
        &self.drivers
    }

    /// Every plugin that failed to load, with its reason.
    pub fn errors(&self) -> &[PluginError] {
        &self.errors
    }

    /// The names of the drivers disabled by [`RegistryBuilder::disable`].
    pub fn disabled(&self) -> &[String] {
        &self.disabled
    }

    /// Adds a driver unless one of that name is already there, which is
    /// then handed back. A disabled driver is dropped (and `Ok`).
    pub(crate) fn insert(&mut self, driver: Driver) -> Result<(), Box<Driver>> {
        if self.disabled.iter().any(|d| d == driver.name()) {
            log::info!(
                "driver '{}' is disabled; not using it{}",
                driver.name(),
                driver.file().map_or_else(String::new, |f| format!(" (from {})", f.display()))
            );
            return Ok(());
        }
        if self.get(driver.name()).is_some() {
            return Err(Box::new(driver));
        }
        self.drivers.push(driver);
        Ok(())
    }

    pub(crate) fn push_error(&mut self, error: PluginError) {
        self.errors.push(error);
    }
}

/// Builds a [`Registry`]: compiled-in drivers first, then plugins from the
/// search path.
#[derive(Debug, Default, Clone)]
pub struct RegistryBuilder {
    builtins: Vec<BuiltinDriver>,
    search: PluginSearch,
    disabled: Vec<String>,
    only: Option<String>,
}

#[derive(Clone)]
struct BuiltinDriver(Arc<dyn HookDriver>);

impl std::fmt::Debug for BuiltinDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("BuiltinDriver").field(&self.0.info().name).finish()
    }
}

impl RegistryBuilder {
    /// A builder with the default plugin search path.
    pub fn new() -> RegistryBuilder {
        RegistryBuilder::default()
    }

    /// Adds a driver compiled into the calling program. It takes precedence
    /// over plugins of the same name.
    pub fn driver(&mut self, driver: impl HookDriver + 'static) -> &mut RegistryBuilder {
        self.builtins.push(BuiltinDriver(Arc::new(driver)));
        self
    }

    /// The plugin search path; see [`PluginSearch`].
    pub fn search(&mut self) -> &mut PluginSearch {
        &mut self.search
    }

    /// Disables the driver `name`: neither a compiled-in driver nor any
    /// plugin of that name (wherever it is on the search path) gets into
    /// the registry, so its events are refused as unknown and its hook
    /// scripts never run. A plugin file of that name is still loaded (its
    /// name is only known then) but its driver is dropped.
    pub fn disable(&mut self, name: impl Into<String>) -> &mut RegistryBuilder {
        self.disabled.push(name.into());
        self
    }

    /// Loads only what is needed for the events of driver `name`, for a
    /// host that serves one event (`virt-hook run`, `plan`, virt-hook as
    /// libvirt's hook script). The first file named
    /// `libvirt_hooks_driver_<name>.so` on the search path is loaded alone;
    /// if there is none, or it does not provide driver `name` (it failed to
    /// load, or it holds another driver), every plugin is loaded as without
    /// this option, since another file may provide `name`. Compiled-in
    /// drivers are always there, and a compiled-in `name` means no plugin is
    /// loaded at all.
    ///
    /// So the registry may hold fewer drivers, and report fewer plugin
    /// errors, than a full load: use it only for hosts that never list the
    /// drivers. Loading a plugin costs about a quarter of a millisecond
    /// (most of it abi_stable's layout check), so this saves most of the
    /// start-up of a short-lived process.
    pub fn only_driver(&mut self, name: impl Into<String>) -> &mut RegistryBuilder {
        self.only = Some(name.into());
        self
    }

    /// Applies the registry's part of a configuration file: the
    /// `disabled_drivers` and the `plugin_path` directories (searched in
    /// that order, before the other directories of the search path).
    pub fn config(&mut self, config: &Config) -> &mut RegistryBuilder {
        for name in &config.disabled_drivers {
            self.disable(name.clone());
        }
        for dir in &config.plugin_path {
            self.search.dir(dir.clone());
        }
        self
    }

    /// Loads every plugin on the search path (or only one; see
    /// [`only_driver`](RegistryBuilder::only_driver)). Never fails: plugins that cannot
    /// be loaded are kept in [`Registry::errors`].
    pub fn build(&self) -> Registry {
        let mut registry = Registry { disabled: self.disabled.clone(), ..Registry::default() };
        for BuiltinDriver(imp) in &self.builtins {
            let driver = Driver::new(Arc::clone(imp), None);
            if let Err(dup) = registry.insert(driver) {
                log::warn!(
                    "compiled-in driver '{}' is registered twice; keeping the first",
                    dup.name()
                );
            }
        }
        let skip = match &self.only {
            Some(name) => match plugin::load_only(&self.search, name, &mut registry) {
                (true, _) => return registry,
                (false, tried) => tried,
            },
            None => None,
        };
        plugin::load_all(&self.search, &mut registry, skip.as_deref());
        registry
    }
}
