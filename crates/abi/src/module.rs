//! The root module every plugin exports.

use abi_stable::library::RootModule;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::RResult;
use abi_stable::{StableAbi, declare_root_module_statics, package_version_strings};

use crate::DriverBox;
use crate::ffi::{FfiDriverError, HostLogger};

/// The root module of a driver plugin: what the host calls after loading
/// the file, in this order.
///
/// A prefix type: later interface versions may add fields after
/// `new_driver`, never before it.
#[repr(C)]
#[derive(StableAbi, Debug)]
#[sabi(kind(Prefix(prefix_ref = DriverModuleRef)))]
#[sabi(missing_field(panic))]
pub struct DriverModule {
    /// Installs the host's log sink as the plugin's `log` logger (and routes
    /// the plugin's panic messages to it).
    pub install_logger: extern "C" fn(HostLogger),
    /// Constructs the driver. Panics are caught and returned as errors.
    #[sabi(last_prefix_field)]
    pub new_driver: extern "C" fn() -> RResult<DriverBox, FfiDriverError>,
}

impl RootModule for DriverModuleRef {
    declare_root_module_statics! {DriverModuleRef}
    const BASE_NAME: &'static str = "virt_hooks_driver";
    const NAME: &'static str = "virt-hooks driver";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}
