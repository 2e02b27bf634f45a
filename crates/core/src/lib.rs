/*!
The driver interface of virt-hooks: the [`HookDriver`] trait and the plain value
types it speaks in.

A driver (daemon, qemu, lxc, network, ...) owns the vocabulary of one kind of
libvirt hook: which operations exist, which sub-operations and `extra` values
each accepts, whether it takes an XML document on stdin, whether a failure
refuses the operation or is only logged, and whether the hook scripts act as a
filter whose output replaces the document. The host hard-codes none of this: it
asks the driver.

This crate is deliberately small and rarely changes. It does no I/O, spawns
nothing and knows nothing of plugins: driver crates depend on it (through
`virt-hooks-abi`), and so does the host.

# Example

```
use virt_hooks_core::{
    DriverInfo, Event, ExtraRule, FailurePolicy, HookDriver, InputSpec, OperationSpec,
};

struct Daemon;

impl HookDriver for Daemon {
    fn info(&self) -> DriverInfo {
        DriverInfo::new("daemon", "1.0.0", "the libvirt daemon itself")
    }
    fn operations(&self) -> Vec<OperationSpec> {
        vec![OperationSpec::new("start", ["-"], ExtraRule::fixed("start"))
            .input(InputSpec::None)
            .on_failure(FailurePolicy::Ignore)]
    }
}

let event = Event::new("daemon", "-", "start", "-", "start");
let ops = Daemon.operations();
ops[0].check(&event)?;
Daemon.validate(&event)?;
# Ok::<(), Box<dyn std::error::Error>>(())
```
*/

pub use crate::{
    driver::HookDriver,
    error::DriverError,
    event::Event,
    spec::{DriverInfo, ExtraRule, FailurePolicy, InputSpec, OperationSpec, SpecError},
};

mod driver;
mod error;
mod event;
mod spec;
