use crate::{DriverError, DriverInfo, Event, OperationSpec};

/// A hook driver: the vocabulary and the rules of one kind of libvirt hook.
///
/// Two methods are required: [`info`](HookDriver::info) and
/// [`operations`](HookDriver::operations). The host calls them once, when the
/// driver is loaded, and checks every event against the operation table itself
/// (see [`OperationSpec::check`]). The other two methods add checks the table
/// cannot express and default to accepting everything.
///
/// Implementations must be cheap to call from many threads at once: the host
/// calls [`validate`](HookDriver::validate) for every event before any script
/// runs.
pub trait HookDriver: Send + Sync {
    /// Name, version and one-line description. The name is the hook script's
    /// file name (`qemu` for `/etc/libvirt/hooks/qemu`).
    fn info(&self) -> DriverInfo;

    /// The operation table, in the order the driver wants it listed.
    fn operations(&self) -> Vec<OperationSpec>;

    /// Checks an event beyond its operation table, e.g. that the domain XML
    /// names the object. Called only for events that passed the table.
    ///
    /// # Errors
    ///
    /// [`DriverError::Invalid`] with the reason; no script runs then.
    fn validate(&self, event: &Event<'_>) -> Result<(), DriverError> {
        let _ = event;
        Ok(())
    }

    /// Checks a filter script's non-blank output before it replaces the
    /// event's document. Called only for operations marked as filters.
    ///
    /// # Errors
    ///
    /// [`DriverError::Invalid`] with the reason; the script then counts as
    /// failed and the document is left as it was.
    fn check_output(&self, event: &Event<'_>, output: &[u8]) -> Result<(), DriverError> {
        let _ = (event, output);
        Ok(())
    }
}

impl<D: HookDriver + ?Sized> HookDriver for Box<D> {
    fn info(&self) -> DriverInfo {
        (**self).info()
    }
    fn operations(&self) -> Vec<OperationSpec> {
        (**self).operations()
    }
    fn validate(&self, event: &Event<'_>) -> Result<(), DriverError> {
        (**self).validate(event)
    }
    fn check_output(&self, event: &Event<'_>, output: &[u8]) -> Result<(), DriverError> {
        (**self).check_output(event, output)
    }
}

impl<D: HookDriver + ?Sized> HookDriver for std::sync::Arc<D> {
    fn info(&self) -> DriverInfo {
        (**self).info()
    }
    fn operations(&self) -> Vec<OperationSpec> {
        (**self).operations()
    }
    fn validate(&self, event: &Event<'_>) -> Result<(), DriverError> {
        (**self).validate(event)
    }
    fn check_output(&self, event: &Event<'_>, output: &[u8]) -> Result<(), DriverError> {
        (**self).check_output(event, output)
    }
}
