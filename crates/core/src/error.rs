/// Why a driver refused an event or a hook script's output.
///
/// Drivers return [`DriverError::Invalid`] with a lowercase reason that names
/// what is wrong (`"the domain XML names 'vm2', not the object 'vm1'"`). The
/// host adds the driver, operation and file around it. The other variants are
/// produced by the plugin boundary, never by driver code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// The event or the output breaks a rule of the driver.
    #[error("{0}")]
    Invalid(String),
    /// The driver panicked; the message is the panic payload.
    #[error("driver panicked: {0}")]
    Panicked(String),
    /// The plugin answered with something this host does not understand.
    #[error("plugin protocol error: {0}")]
    Protocol(String),
}

impl DriverError {
    /// Shorthand for [`DriverError::Invalid`].
    pub fn invalid(reason: impl Into<String>) -> DriverError {
        DriverError::Invalid(reason.into())
    }
}
