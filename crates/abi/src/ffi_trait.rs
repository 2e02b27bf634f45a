//! The FFI trait object. `#[sabi_trait]` expands to unsafe code and to impls
//! inside a constant, so it lives alone in this module with those lints
//! allowed; the rest of the crate sees only [`DriverBox`](crate::DriverBox).
#![allow(unsafe_code, non_local_definitions, missing_docs, unreachable_pub)]

use abi_stable::sabi_trait;
use abi_stable::std_types::{RResult, RSlice, RVec};

use crate::ffi::{FfiDriverError, FfiDriverInfo, FfiEvent, FfiOperationSpec};

/// Declares [`FfiHookDriver`] with `$later` methods after the 1.0 ones: none
/// in a real build; one with the hidden `__next-minor-probe` feature.
macro_rules! ffi_hook_driver {
    ($($later:tt)*) => {
        /// [`HookDriver`](virt_hooks_core::HookDriver) across the boundary.
        /// Every method returns a result so that a panic in the plugin
        /// becomes an error.
        ///
        /// New methods go after the last one and must have a default body
        /// (see `docs/abi-evolution.md`).
        #[sabi_trait]
        pub trait FfiHookDriver: Send + Sync + 'static {
            /// [`HookDriver::info`](virt_hooks_core::HookDriver::info).
            fn info(&self) -> RResult<FfiDriverInfo, FfiDriverError>;

            /// [`HookDriver::operations`](virt_hooks_core::HookDriver::operations).
            fn operations(&self) -> RResult<RVec<FfiOperationSpec>, FfiDriverError>;

            /// [`HookDriver::validate`](virt_hooks_core::HookDriver::validate).
            fn validate(&self, event: FfiEvent<'_>) -> RResult<(), FfiDriverError>;

            /// [`HookDriver::check_output`](virt_hooks_core::HookDriver::check_output).
            #[sabi(last_prefix_field)]
            fn check_output(
                &self,
                event: FfiEvent<'_>,
                output: RSlice<'_, u8>,
            ) -> RResult<(), FfiDriverError>;

            // Methods added in 1.1 and later go here, each with a default body.

            $($later)*
        }
    };
}

#[cfg(not(feature = "__next-minor-probe"))]
ffi_hook_driver! {}

// Test-only (tests/fixtures/abi-1.1): the interface as a next minor version
// would look, one trailing method with a default body. Never enabled in a
// real build.
#[cfg(feature = "__next-minor-probe")]
ffi_hook_driver! {
    /// The interface minor version the plugin was built against; the default
    /// body (run by the host for a plugin without this method) says 0.
    fn next_minor_probe(&self) -> u32 {
        0
    }
}
