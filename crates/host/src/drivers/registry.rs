//! The drivers a host knows: compiled-in drivers and the plugins found on
//! the search path, and every policy about them: the first driver of a name
//! wins, a disabled driver is dropped, a file named after a loaded driver is
//! not opened, the one-driver shortcut, and the warning for a plugin whose
//! file name announces another driver.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use virt_hooks_core::{Event, HookDriver};

use super::{
    driver::{Driver, EventError},
    plugin::{Candidate, Found, PluginError, PluginFailure, PluginSearch, PluginWarning},
};
use crate::config::Config;

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
    warnings: Vec<PluginWarning>,
    disabled: Vec<String>,
    search_path: Vec<PathBuf>,
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

    /// The directories plugins were looked for in, in order, as resolved
    /// when the registry was built: what to name when a driver is missing.
    pub fn search_path(&self) -> &[PathBuf] {
        &self.search_path
    }

    /// What is worth fixing about plugins that loaded (each also logged as
    /// a warning).
    pub fn warnings(&self) -> &[PluginWarning] {
        &self.warnings
    }

    /// Returns true if and only if the driver `name` is loaded or disabled:
    /// nothing more to look for.
    fn settled(&self, name: &str) -> bool {
        self.get(name).is_some() || self.disabled.iter().any(|d| d == name)
    }

    /// Adds a driver unless one of that name is already there: then the
    /// first one is handed back and `driver` is dropped. A disabled driver
    /// is dropped (and `Ok`).
    fn insert(&mut self, driver: Driver) -> Result<(), &Driver> {
        if self.disabled.iter().any(|d| d == driver.name()) {
            log::info!(
                "driver '{}' is disabled; not using it{}",
                driver.name(),
                driver.file().map_or_else(String::new, |f| format!(" (from {})", f.display()))
            );
            return Ok(());
        }
        if let Some(at) = self.drivers.iter().position(|d| d.name() == driver.name()) {
            return Err(&self.drivers[at]);
        }
        self.drivers.push(driver);
        Ok(())
    }

    /// Loads one plugin file, or keeps why not: the trust rule first, then
    /// a file named after a loaded driver is refused unopened, then the file
    /// is opened and its driver added (unless disabled or a second copy).
    fn load(&mut self, candidate: &Candidate) {
        if let Err(error) = self.try_load(candidate) {
            log::debug!("{error}");
            self.errors.push(error);
        }
    }

    fn try_load(&mut self, candidate: &Candidate) -> Result<(), PluginError> {
        candidate.vet()?;
        let file = &candidate.file;
        if let Some(first) = candidate.named().and_then(|name| self.get(name)) {
            // Its name says it is a second copy: no need to open it to
            // refuse it.
            return Err(duplicate(file, first));
        }
        let driver = candidate.open()?;
        if let Some(named) = candidate.named().filter(|&named| named != driver.name()) {
            let warning = PluginWarning::NameMismatch {
                file: file.clone(),
                named: named.to_owned(),
                driver: driver.name().to_owned(),
            };
            log::warn!("{warning}");
            self.warnings.push(warning);
        }
        self.insert(driver).map_err(|first| duplicate(file, first))
    }
}

/// `file` provides a driver `first` already provides.
fn duplicate(file: &Path, first: &Driver) -> PluginError {
    PluginError::new(
        file,
        PluginFailure::Duplicate {
            driver: first.name().to_owned(),
            first: first.file().map(Path::to_owned),
        },
    )
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
        let mut registry = Registry {
            disabled: self.disabled.clone(),
            search_path: self.search.resolve(),
            ..Registry::default()
        };
        for BuiltinDriver(imp) in &self.builtins {
            let driver = Driver::new(Arc::clone(imp), None);
            if let Err(dup) = registry.insert(driver) {
                log::warn!(
                    "compiled-in driver '{}' is registered twice; keeping the first",
                    dup.name()
                );
            }
        }
        let mut tried = None;
        if let Some(name) = &self.only {
            if registry.get(name).is_some() {
                return registry;
            }
            if let Some(candidate) = self.search.candidate_named(name) {
                registry.load(&candidate);
                if registry.settled(name) {
                    return registry;
                }
                log::debug!(
                    "{} does not provide driver '{name}': loading every plugin",
                    candidate.file.display()
                );
                // Tried once; its result is kept.
                tried = Some(candidate.file);
            }
        }
        for found in self.search.candidates() {
            match found {
                Found::File(candidate) if tried.as_ref() == Some(&candidate.file) => {}
                Found::File(candidate) => registry.load(&candidate),
                Found::Failed(error) => {
                    log::debug!("{error}");
                    registry.errors.push(error);
                }
            }
        }
        registry
    }
}

impl Registry {
    /// The `[drivers.*]` sections of `config` that name a driver no loaded
    /// plugin provides, or an operation its driver does not have: warnings,
    /// since a plugin may be installed later, but likely typos that would
    /// otherwise be ignored without a word.
    pub fn unknown_sections(&self, config: &Config) -> Vec<String> {
        let mut warnings = Vec::new();
        for (name, driver) in &config.drivers {
            let Some(loaded) = self.get(name) else {
                warnings.push(format!(
                    "configuration section [drivers.{name}] names no loaded driver; it has no effect"
                ));
                continue;
            };
            for op in driver.operations.keys() {
                if !loaded.operations().iter().any(|o| &o.name == op) {
                    warnings.push(format!(
                        "configuration section [drivers.{name}.operations.{op}]: driver '{name}' \
                         has no operation '{op}'; it has no effect"
                    ));
                }
            }
        }
        warnings
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::{PLUGIN_PREFIX, PLUGIN_SUFFIX};

    struct Builtin;

    impl HookDriver for Builtin {
        fn info(&self) -> virt_hooks_core::DriverInfo {
            virt_hooks_core::DriverInfo::new("x", "1.0.0", "compiled in")
        }
        fn operations(&self) -> Vec<virt_hooks_core::OperationSpec> {
            Vec::new()
        }
    }

    fn plugin_dir(names: &[&str]) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
        for name in names {
            let file = tmp.path().join(format!("{PLUGIN_PREFIX}{name}{PLUGIN_SUFFIX}"));
            fs::write(&file, "text, not a library").unwrap();
            fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        }
        tmp
    }

    fn only_in(dir: &Path) -> RegistryBuilder {
        let mut builder = RegistryBuilder::new();
        builder.search().dir(dir).only_explicit();
        builder
    }

    #[test]
    fn a_missing_explicit_dir_is_an_error_and_other_files_are_ignored() {
        let tmp = tempfile::tempdir().unwrap();
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(tmp.path().join("README"), "not a plugin").unwrap();
        fs::write(tmp.path().join("libvirt_hooks_driver_x.so.bak"), "not a plugin").unwrap();
        let missing = tmp.path().join("nope");
        let mut builder = RegistryBuilder::new();
        builder.search().dir(&missing).dir(tmp.path()).only_explicit();
        let registry = builder.build();
        assert_eq!(registry.errors(), [PluginError::new(&missing, PluginFailure::MissingDir)]);
        assert_eq!(registry.errors()[0].reason.to_string(), "the plugin directory does not exist");
        assert!(registry.drivers().is_empty());
    }

    #[test]
    fn a_file_named_after_a_loaded_driver_is_refused_without_opening_it() {
        let tmp = plugin_dir(&["x"]);
        let mut builder = only_in(tmp.path());
        builder.driver(Builtin);
        let registry = builder.build();
        // Opened, the text file would be "not a shared library".
        let file = tmp.path().join("libvirt_hooks_driver_x.so");
        assert_eq!(
            registry.errors(),
            [PluginError::new(&file, PluginFailure::Duplicate { driver: "x".into(), first: None })]
        );
        assert_eq!(
            registry.errors()[0].reason.to_string(),
            "a second 'x' driver, ignored; the first is compiled in"
        );
    }

    #[test]
    fn only_driver_falls_back_to_everything_and_tries_each_file_once() {
        let tmp = plugin_dir(&["a", "b"]);
        let files = |registry: &Registry| -> Vec<PathBuf> {
            registry.errors().iter().map(|e| e.file.clone()).collect()
        };
        let (a, b) = (
            tmp.path().join(format!("{PLUGIN_PREFIX}a.so")),
            tmp.path().join(format!("{PLUGIN_PREFIX}b.so")),
        );
        // b's file does not load: everything is tried, b's file once.
        let mut builder = only_in(tmp.path());
        builder.only_driver("b");
        assert_eq!(files(&builder.build()), [b.clone(), a.clone()]);
        // No file named after c: everything.
        let mut builder = only_in(tmp.path());
        builder.only_driver("c");
        assert_eq!(files(&builder.build()), [a.clone(), b.clone()]);
        // A compiled-in driver of that name: no plugin is opened at all.
        let mut builder = only_in(tmp.path());
        builder.driver(Builtin).only_driver("x");
        let registry = builder.build();
        assert!(registry.errors().is_empty(), "{:?}", registry.errors());
        assert_eq!(registry.drivers().len(), 1);
    }

    #[test]
    fn writable_files_and_directories_are_refused_before_loading() {
        let tmp = tempfile::tempdir().unwrap();
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let file = tmp.path().join("libvirt_hooks_driver_x.so");
        fs::write(&file, "text, never opened").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o664)).unwrap();
        let registry = only_in(tmp.path()).build();
        assert_eq!(registry.errors().len(), 1);
        assert_eq!(registry.errors()[0].file, file);
        assert_eq!(
            registry.errors()[0].reason.to_string(),
            "refused: the file is writable by its group (mode 0664)"
        );

        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let registry = only_in(tmp.path()).build();
        assert_eq!(
            registry.errors()[0].reason.to_string(),
            format!(
                "refused: its directory {} is writable by group and others (mode 0777)",
                tmp.path().display()
            )
        );

        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let registry = only_in(tmp.path()).build();
        assert!(
            registry.errors()[0].reason.to_string().starts_with("not a shared library ("),
            "{:?}",
            registry.errors()
        );
    }
}
