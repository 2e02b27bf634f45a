/// One hook event: exactly the five arguments a hook script receives after its
/// own path, and the document it reads on stdin.
///
/// Every field is borrowed, so an event costs nothing to build and a large
/// document is never copied on its way to the driver or the scripts. Missing
/// values are written `-`, as libvirt writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    /// The driver name: `daemon`, `qemu`, `lxc`, `network`, ...
    pub driver: &'a str,
    /// The object: a domain or network name, or `-` for the daemon.
    pub object: &'a str,
    /// The operation, e.g. `start`, `prepare`, `release`.
    pub operation: &'a str,
    /// The sub-operation, e.g. `begin`, `end`, or `-`.
    pub sub_operation: &'a str,
    /// The extra argument, e.g. a shutoff reason, or `-`.
    pub extra: &'a str,
    /// The document given on stdin, byte for byte, or `None` for `/dev/null`.
    pub input: Option<&'a [u8]>,
}

impl<'a> Event<'a> {
    /// Creates an event with no input document.
    pub fn new(
        driver: &'a str,
        object: &'a str,
        operation: &'a str,
        sub_operation: &'a str,
        extra: &'a str,
    ) -> Event<'a> {
        Event { driver, object, operation, sub_operation, extra, input: None }
    }

    /// Returns this event with `input` as its stdin document.
    pub fn with_input(self, input: &'a [u8]) -> Event<'a> {
        Event { input: Some(input), ..self }
    }

    /// The four arguments after the script path, in argv order.
    pub fn args(&self) -> [&'a str; 4] {
        [self.object, self.operation, self.sub_operation, self.extra]
    }
}
