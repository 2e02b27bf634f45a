//! The in-process round trip: native -> FFI -> foreign, with no dlopen.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};

use virt_hooks_core::{
    DriverError, DriverInfo, Event, ExtraRule, HookDriver, InputSpec, OperationSpec,
};

use crate::{FfiDriver, ForeignDriver};

#[derive(Default)]
struct Sample {
    calls: AtomicUsize,
}

impl HookDriver for Sample {
    fn info(&self) -> DriverInfo {
        DriverInfo::new("sample", "0.1.0", "a test driver")
    }

    fn operations(&self) -> Vec<OperationSpec> {
        vec![
            OperationSpec::new("start", ["begin"], ExtraRule::Dash)
                .describe("starts")
                .input(InputSpec::xml("domain")),
            OperationSpec::new("boom", ["-"], ExtraRule::Free),
        ]
    }

    fn validate(&self, event: &Event<'_>) -> Result<(), DriverError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match event.operation {
            "boom" => panic!("boom for {}", event.object),
            _ if event.input.is_some_and(|doc| doc.starts_with(b"<domain")) => Ok(()),
            _ => Err(DriverError::invalid(format!("bad input for {}", event.object))),
        }
    }

    fn check_output(&self, event: &Event<'_>, output: &[u8]) -> Result<(), DriverError> {
        if output.len() == event.input.map_or(0, <[u8]>::len) {
            Ok(())
        } else {
            Err(DriverError::invalid(format!("{} bytes", output.len())))
        }
    }
}

/// What `export_driver!(Sample)` would define.
struct Make;

impl crate::__private::Factory for Make {
    type Driver = Sample;
    fn make() -> Sample {
        Sample::default()
    }
}

fn foreign() -> ForeignDriver {
    ForeignDriver::new(FfiDriver::boxed(Sample::default())).unwrap()
}

#[test]
fn description_and_table_cross_intact() {
    let d = foreign();
    assert_eq!(d.info(), Sample::default().info());
    assert_eq!(d.operations(), Sample::default().operations());
}

#[test]
fn calls_and_errors_cross_intact() {
    let d = foreign();
    let doc = b"<domain/>".to_vec();
    let ok = Event::new("sample", "vm1", "start", "begin", "-").with_input(&doc);
    assert_eq!(d.validate(&ok), Ok(()));
    let bad = Event::new("sample", "vm1", "start", "begin", "-").with_input(b"<network/>");
    assert_eq!(d.validate(&bad), Err(DriverError::invalid("bad input for vm1")));
    assert_eq!(d.check_output(&ok, b"<domain />"), Err(DriverError::invalid("10 bytes")));
    assert_eq!(d.check_output(&ok, b"<x-x-x/>\n"), Ok(()));
}

#[test]
fn a_panic_is_an_error_for_that_call_only() {
    let d = foreign();
    let boom = Event::new("sample", "vm1", "boom", "-", "-");
    for _ in 0..2 {
        assert_eq!(d.validate(&boom), Err(DriverError::Panicked("boom for vm1".into())));
    }
    let ok = Event::new("sample", "vm1", "start", "begin", "-").with_input(b"<domain/>");
    assert_eq!(d.validate(&ok), Ok(()));
}

#[test]
fn a_panicking_description_fails_construction() {
    struct Broken;
    impl HookDriver for Broken {
        fn info(&self) -> DriverInfo {
            panic!("no info")
        }
        fn operations(&self) -> Vec<OperationSpec> {
            Vec::new()
        }
    }
    let err = ForeignDriver::new(FfiDriver::boxed(Broken)).unwrap_err();
    assert_eq!(err, DriverError::Panicked("no info".into()));
}

#[test]
fn the_root_module_constructs_the_driver() {
    let module = crate::plugin::root_module::<Make>();
    let driver = (module.new_driver())().into_result().unwrap();
    assert_eq!(ForeignDriver::new(driver).unwrap().info().name, "sample");

    struct Panics;
    impl crate::__private::Factory for Panics {
        type Driver = Sample;
        fn make() -> Sample {
            panic!("cannot start")
        }
    }
    let module = crate::plugin::root_module::<Panics>();
    let err = (module.new_driver())().into_result().map(|_| ()).unwrap_err();
    assert_eq!(DriverError::from(err).to_string(), "driver panicked: cannot start");
}

#[test]
fn the_exported_symbol_is_the_one_abi_stable_looks_for() {
    // `export_driver!` spells the symbol out; it must stay abi_stable's.
    assert_eq!(
        abi_stable::library::ROOT_MODULE_LOADER_NAME,
        "_1as_0lib_1header_0root_bmodule_bloader"
    );
}

#[test]
fn the_interface_version_is_the_crate_version() {
    use abi_stable::library::RootModule;
    assert_eq!(
        crate::module::DriverModuleRef::VERSION_STRINGS.version.as_str(),
        crate::ABI_VERSION
    );
    assert_eq!(crate::ABI_VERSION, "1.0.0");
}

#[test]
fn the_added_test_fails_when_library_and_driver_names_disagree() {
    crate::__private::assert_library_name::<Make>("virt_hooks_driver_sample");
    let mismatch = std::panic::catch_unwind(|| {
        crate::__private::assert_library_name::<Make>("virt_hooks_driver_example");
    });
    let payload = mismatch.unwrap_err();
    assert_eq!(
        payload.downcast_ref::<String>().unwrap(),
        "library 'virt_hooks_driver_example' exports driver 'sample': name the library \
         'virt_hooks_driver_sample' ([lib] name in Cargo.toml) or the driver 'example'"
    );
}
