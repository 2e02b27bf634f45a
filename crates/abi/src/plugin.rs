//! The plugin side: a native [`HookDriver`] behind the FFI trait, panics
//! caught, and the root module that [`export_driver!`](crate::export_driver)
//! exports.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

use abi_stable::library::RootModuleResult;
use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RResult, RSlice, RStr, RVec};
use virt_hooks_core::{DriverError, HookDriver};

use crate::DriverBox;
use crate::ffi::{FfiDriverError, FfiDriverInfo, FfiEvent, FfiOperationSpec, HostLogger};
use crate::ffi_trait::FfiHookDriver;
use crate::module::{DriverModule, DriverModuleRef};

/// A native driver seen through the FFI trait. Every call runs inside
/// `catch_unwind`, so a panicking driver returns
/// [`DriverError::Panicked`] instead of unwinding into the host.
#[derive(Debug)]
pub struct FfiDriver<D>(D);

impl<D: HookDriver + 'static> FfiDriver<D> {
    /// Wraps `driver` into the boxed FFI trait object a plugin hands over.
    pub fn boxed(driver: D) -> DriverBox {
        DriverBox::from_value(FfiDriver(driver), TD_Opaque)
    }
}

/// Runs `f`, turning a panic into [`DriverError::Panicked`] with the payload.
fn guard<T>(f: impl FnOnce() -> Result<T, DriverError>) -> RResult<T, FfiDriverError> {
    let result = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => Err(DriverError::Panicked(panic_message(&*payload))),
    };
    result.map_err(FfiDriverError::from).into()
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}

impl<D: HookDriver + 'static> FfiHookDriver for FfiDriver<D> {
    fn info(&self) -> RResult<FfiDriverInfo, FfiDriverError> {
        guard(|| Ok(self.0.info().into()))
    }

    fn operations(&self) -> RResult<RVec<FfiOperationSpec>, FfiDriverError> {
        guard(|| Ok(self.0.operations().into_iter().map(FfiOperationSpec::from).collect()))
    }

    fn validate(&self, event: FfiEvent<'_>) -> RResult<(), FfiDriverError> {
        guard(|| self.0.validate(&event.into()))
    }

    fn check_output(
        &self,
        event: FfiEvent<'_>,
        output: RSlice<'_, u8>,
    ) -> RResult<(), FfiDriverError> {
        guard(|| self.0.check_output(&event.into(), output.as_slice()))
    }

    #[cfg(feature = "__next-minor-probe")]
    fn next_minor_probe(&self) -> u32 {
        env!("CARGO_PKG_VERSION_MINOR").parse().unwrap_or(u32::MAX)
    }
}

/// How [`export_driver!`](crate::export_driver) names a driver's constructor.
pub trait Factory: 'static {
    /// The driver type.
    type Driver: HookDriver + 'static;
    /// Constructs the driver; runs when the host loads the plugin.
    fn make() -> Self::Driver;
}

/// The root module of a plugin whose driver `F` constructs.
pub(crate) fn root_module<F: Factory>() -> DriverModuleRef {
    DriverModule { install_logger, new_driver: new_driver::<F> }.leak_into_prefix()
}

/// What the exported `LibHeader` calls: abi_stable's loader wrapper (which
/// catches a panic and registers the module) around [`root_module`].
pub(crate) extern "C" fn root_module_loader<F: Factory>() -> RootModuleResult {
    abi_stable::library::__call_root_module_loader(root_module::<F>)
}

extern "C" fn new_driver<F: Factory>() -> RResult<DriverBox, FfiDriverError> {
    guard(|| Ok(FfiDriver::boxed(F::make())))
}

static HOST_LOGGER: OnceLock<HostLogger> = OnceLock::new();

/// The plugin's `log` logger: forwards every record to the host.
struct Forward;

impl log::Log for Forward {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        HOST_LOGGER.get().is_some_and(|host| metadata.level() as usize <= host.max_level.into())
    }

    fn log(&self, record: &log::Record<'_>) {
        let Some(host) = HOST_LOGGER.get() else { return };
        if !self.enabled(record.metadata()) {
            return;
        }
        let message = record.args().to_string();
        // Level as usize is 1 (error) ..= 5 (trace), which fits a u8.
        (host.log)(record.level() as u8, RStr::from(record.target()), RStr::from(message.as_str()));
    }

    fn flush(&self) {}
}

static FORWARD: Forward = Forward;

/// Installs the host's sink as this plugin's logger and logs the plugin's
/// panic messages there instead of printing them: libraries never print.
/// Runs only when a host loads the plugin file, never in-process.
extern "C" fn install_logger(host: HostLogger) {
    let _ = catch_unwind(|| {
        if HOST_LOGGER.set(host).is_err() {
            return;
        }
        if log::set_logger(&FORWARD).is_ok() {
            log::set_max_level(level_filter(host.max_level));
        }
        std::panic::set_hook(Box::new(|info| {
            let location = info
                .location()
                .map_or_else(String::new, |l| format!(" at {}:{}", l.file(), l.line()));
            log::debug!(
                target: "virt_hooks_abi",
                "plugin panicked{location}: {}",
                panic_message(info.payload())
            );
        }));
    });
}

fn level_filter(max_level: u8) -> log::LevelFilter {
    match max_level {
        0 => log::LevelFilter::Off,
        1 => log::LevelFilter::Error,
        2 => log::LevelFilter::Warn,
        3 => log::LevelFilter::Info,
        4 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    }
}
