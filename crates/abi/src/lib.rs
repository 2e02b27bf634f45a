/*!
The plugin boundary of virt-hooks: how a driver compiled as a shared library
(`cdylib`) and the host that loads it talk to each other.

This is the only crate that names [abi_stable]. On either side of it everything
is plain Rust: a driver crate implements [`HookDriver`] and adds one line, the
host calls [`load_driver`] and gets a `Box<dyn HookDriver>`.

It is also the only dependency a driver crate needs: it re-exports the whole
driver interface of `virt-hooks-core` ([`HookDriver`], its value types and
errors) and the [`log`] crate, the one the host's logger is installed in
when it loads the plugin.

# The boundary

* **Data** crosses as `#[repr(C)]` mirrors of the core types ([`FfiEvent`],
  [`FfiOperationSpec`], ...). The event is borrowed (`RStr`, `RSlice<u8>`), so
  a large input document is never copied. Kinds are `u8` constants; a value
  this side does not know is a [`DriverError::Protocol`], never a panic.
* **Calls** go through [`DriverBox`], an FFI trait object whose methods all
  return results. On the plugin side [`FfiDriver`] runs each call inside
  `catch_unwind`: a panicking driver returns [`DriverError::Panicked`] for that
  call, and the host goes on. (Unwinding across the boundary would end the
  whole host process.)
* **Loading** goes through the root module [`DriverModule`]. The host checks the
  interface version (this crate's version: only the major is compared) and
  the layout of every type reachable from the module, installs its logger in
  the plugin (each plugin has its own copy of `log`; without this its records
  vanish) and constructs the driver, catching a panic. Plugins are never
  unloaded.
* **Evolution** follows `docs/abi-evolution.md`: fields are only ever added at
  the end of the root module, methods at the end of the trait with a default
  body, and the data structs are frozen.

# Writing a driver plugin

```toml
[lib]
name = "virt_hooks_driver_example"
crate-type = ["cdylib", "rlib"]

[dependencies]
virt-hooks-abi = "1"
```

```ignore
#[derive(Default)]
pub struct ExampleDriver;
impl virt_hooks_abi::HookDriver for ExampleDriver { /* ... */ }

virt_hooks_abi::export_driver!(ExampleDriver);
```

The library name is `virt_hooks_driver_` followed by the driver's name
(`info().name`, with `-` written `_`): [`export_driver!`] adds a unit test
that fails when they disagree. Plugins must be built with `panic = "unwind"`
(the workspace profiles say so).

# Trust

`dlopen` runs code from the file before any check here. abi_stable's checks
detect programming errors, not malice: the host only loads files owned by root
or itself that nobody else can write.

[abi_stable]: https://docs.rs/abi_stable/0.11
*/
pub use crate::library::{LIBRARY_PREFIX, LibraryNameError, check_library_name, library_name};
pub use crate::{
    ffi::{
        ERROR_INVALID, ERROR_PANICKED, ERROR_PROTOCOL, EXTRA_DASH, EXTRA_FIXED, EXTRA_FREE,
        EXTRA_ONE_OF, FAILURE_ABORT, FAILURE_IGNORE, FfiDriverError, FfiDriverInfo, FfiEvent,
        FfiOperationSpec, HostLogger, INPUT_NONE, INPUT_XML, UNKNOWN,
    },
    ffi_trait::FfiHookDriver,
    host::{ForeignDriver, LoadError, load_driver},
    module::{DriverModule, DriverModuleRef},
    plugin::FfiDriver,
};
/// The `log` crate the host's logger is installed in when it loads the
/// plugin: log through it and the records reach the host.
pub use log;
/// The driver interface, re-exported whole so that a driver crate depends on
/// this crate only.
pub use virt_hooks_core::{
    DriverError, DriverInfo, Event, ExtraRule, FailurePolicy, HookDriver, InputSpec, OperationSpec,
    SpecError,
};

/// The boxed FFI trait object a plugin hands to the host.
pub type DriverBox = ffi_trait::FfiHookDriver_TO<abi_stable::std_types::RBox<()>>;

/// The interface version this crate speaks: its package version.
pub const ABI_VERSION: &str = env!("CARGO_PKG_VERSION");

mod compat;
mod ffi;
mod ffi_trait;
mod host;
mod library;
mod module;
mod plugin;

/// Exports a driver from a plugin crate: the one ABI-aware line of a driver.
///
/// `export_driver!(QemuDriver)` constructs the driver with
/// `QemuDriver::default()`; `export_driver!(QemuDriver, QemuDriver::new(..))`
/// with the given expression. The constructor runs when the host loads the
/// plugin, after the host's logger is installed; a panic in it is reported
/// as a load error.
///
/// Write it once per crate, at the crate root. It defines the root-module
/// symbol abi_stable looks for (what `#[export_root_module]` would write; the
/// attribute itself needs `abi_stable` as a direct dependency of the plugin),
/// so a binary must not link two plugin crates.
///
/// It also adds a unit test, `virt_hooks_export_driver::library_name_matches_driver_name`,
/// that constructs the driver and fails unless the crate's library name
/// (`CARGO_CRATE_NAME`) is [`library_name`] of its `info().name`: `cargo test`
/// catches a plugin that the host would find under one name while it serves
/// the hooks of another. (A compile-time check cannot see the name: `info()`
/// is ordinary code.)
#[macro_export]
macro_rules! export_driver {
    ($driver:ty $(,)?) => {
        $crate::export_driver!($driver, <$driver as ::core::default::Default>::default());
    };
    ($driver:ty, $constructor:expr $(,)?) => {
        #[doc(hidden)]
        #[derive(Debug)]
        pub struct __VirtHooksDriverFactory;

        impl $crate::__private::Factory for __VirtHooksDriverFactory {
            type Driver = $driver;
            fn make() -> $driver {
                $constructor
            }
        }

        /// The root-module header abi_stable's loader looks for.
        #[doc(hidden)]
        #[unsafe(no_mangle)]
        pub static _1as_0lib_1header_0root_bmodule_bloader: $crate::__private::LibHeader =
            $crate::__private::lib_header::<__VirtHooksDriverFactory>();

        /// The check `export_driver!` adds to the plugin's unit tests.
        #[cfg(test)]
        mod virt_hooks_export_driver {
            #[test]
            fn library_name_matches_driver_name() {
                $crate::__private::assert_library_name::<super::__VirtHooksDriverFactory>(
                    ::core::env!("CARGO_CRATE_NAME"),
                );
            }
        }
    };
}

/// What [`export_driver!`] expands to. Not a public API.
#[doc(hidden)]
pub mod __private {
    use abi_stable::library::CheckTypeLayout;
    pub use abi_stable::library::LibHeader;

    pub use crate::plugin::Factory;
    use crate::{module::DriverModuleRef, plugin::root_module_loader};

    /// The test [`export_driver!`](crate::export_driver) adds: constructs
    /// the driver and panics (fails the test) with the reason unless
    /// `library`, the crate's library name, fits the driver's name.
    ///
    /// # Panics
    ///
    /// On a mismatch, by design: it runs as a unit test.
    pub fn assert_library_name<F: Factory>(library: &str) {
        let name = virt_hooks_core::HookDriver::info(&F::make()).name;
        if let Err(err) = crate::check_library_name(library, &name) {
            panic!("{err}");
        }
    }

    /// The exported header of a plugin whose driver `F` constructs; what
    /// `#[export_root_module]` generates, for our one root-module type.
    #[allow(unsafe_code)]
    pub const fn lib_header<F: Factory>() -> LibHeader {
        // SAFETY: `from_constructor::<M>` requires the constructor's prefix
        // reference to have been made from a `PrefixRef<M>`.
        // `root_module_loader::<F>` returns what abi_stable's own
        // `__call_root_module_loader` makes of `root_module::<F>`, whose
        // return type is `DriverModuleRef`, the `M` given here.
        unsafe {
            LibHeader::from_constructor::<DriverModuleRef>(
                root_module_loader::<F>,
                CheckTypeLayout::Yes,
            )
        }
    }
}

/// Test-only: what the `__next-minor-probe` feature adds (see
/// `docs/abi-evolution.md`). Not a public API.
#[cfg(feature = "__next-minor-probe")]
#[doc(hidden)]
pub mod __next_minor {
    /// [`load_driver`](crate::load_driver) without boxing, so that the
    /// trailing test method can be called.
    ///
    /// # Errors
    ///
    /// As [`load_driver`](crate::load_driver).
    pub fn load(path: &std::path::Path) -> Result<crate::ForeignDriver, crate::LoadError> {
        crate::host::load_foreign(path)
    }
}

#[cfg(test)]
mod tests;
