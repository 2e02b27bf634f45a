//! One driver as the host uses it: its description and operation table, read
//! once, and the checks of an event against them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use virt_hooks_core::{DriverError, DriverInfo, Event, HookDriver, OperationSpec, SpecError};

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
