/*!
The libvirt `bhyve` hook driver: the hooks the bhyve driver (FreeBSD's
hypervisor) runs around the life of a domain (`/etc/libvirt/hooks/bhyve`).

Every hook reads the domain's XML definition on stdin and is called with the
domain name as its object; `extra` is always `-` (the `release` hook carries
no shutoff reason, unlike qemu's and lxc's). Failures of `prepare`, `start`
and `started` refuse the start; failures of `stopped` and `release` are only
logged. bhyve has no `migrate`, `restore` or `reconnect` hook, and no hook's
output is used.
*/
#![forbid(unsafe_code)]

use virt_hooks_abi::{
    DriverError, DriverInfo, Event, ExtraRule, FailurePolicy, HookDriver, OperationSpec, log,
};
use virt_hooks_xml::domain;

/// The `bhyve` driver.
#[derive(Debug, Default, Clone, Copy)]
pub struct BhyveDriver;

/// One row: the domain XML on stdin, `extra` always `-`.
fn op(name: &str, sub: &str, on_failure: FailurePolicy, description: &str) -> OperationSpec {
    virt_hooks_xml::domain::operation(name, sub, ExtraRule::Dash, on_failure, description)
}

impl HookDriver for BhyveDriver {
    fn info(&self) -> DriverInfo {
        DriverInfo::new("bhyve", env!("CARGO_PKG_VERSION"), "bhyve domains on FreeBSD")
    }

    fn operations(&self) -> Vec<OperationSpec> {
        use FailurePolicy::{Abort, Ignore};
        vec![
            op("prepare", "begin", Abort, "first step of a start, before firmware and devices"),
            op("start", "begin", Abort, "after the loader has run, before bhyve is launched"),
            op("started", "begin", Abort, "after bhyve has started and the status is saved"),
            op(
                "stopped",
                "end",
                Ignore,
                "after bhyve was destroyed, before the network interfaces are cleaned up",
            ),
            op("release", "end", Ignore, "after the domain is marked shut off"),
        ]
    }

    fn validate(&self, event: &Event<'_>) -> Result<(), DriverError> {
        log::debug!("checking the domain XML of bhyve {} {}", event.operation, event.object);
        domain::validate_event(event)
    }
}

virt_hooks_abi::export_driver!(BhyveDriver);

#[cfg(test)]
mod tests {
    use super::*;
    use virt_hooks_abi::InputSpec;
    use virt_hooks_testing::{check, check_output, table_problems};

    const VM: &[u8] = b"<domain type='bhyve'><name>bsd1</name>\
        <uuid>df3be7e7-a104-11e3-aeb0-50e5492bd3dc</uuid></domain>";

    /// libvirt's calls (`src/bhyve/bhyve_process.c`), as argv after the path.
    const CALLS: [[&str; 4]; 5] = [
        ["bsd1", "prepare", "begin", "-"],
        ["bsd1", "start", "begin", "-"],
        ["bsd1", "started", "begin", "-"],
        ["bsd1", "stopped", "end", "-"],
        ["bsd1", "release", "end", "-"],
    ];

    #[test]
    fn the_table_is_libvirts() {
        assert_eq!(table_problems(&BhyveDriver), []);
        let rows: Vec<(String, Vec<String>, FailurePolicy)> = BhyveDriver
            .operations()
            .into_iter()
            .map(|o| (o.name, o.sub_operations, o.on_failure))
            .collect();
        let expected = [
            ("prepare", "begin", FailurePolicy::Abort),
            ("start", "begin", FailurePolicy::Abort),
            ("started", "begin", FailurePolicy::Abort),
            ("stopped", "end", FailurePolicy::Ignore),
            ("release", "end", FailurePolicy::Ignore),
        ]
        .map(|(name, sub, policy)| (name.to_owned(), vec![sub.to_owned()], policy));
        assert_eq!(rows, expected);
        for row in BhyveDriver.operations() {
            assert_eq!(row.extra, ExtraRule::Dash, "{}", row.name);
            assert_eq!(row.input, InputSpec::xml("domain"), "{}", row.name);
            assert!(!row.filter, "{}", row.name);
        }
    }

    #[test]
    fn libvirts_calls_pass() {
        for [object, op, sub, extra] in CALLS {
            let event = Event::new("bhyve", object, op, sub, extra).with_input(VM);
            assert_eq!(check(&BhyveDriver, &event), Ok(()), "{op}");
        }
    }

    #[test]
    fn other_calls_are_refused_with_a_reason() {
        let event = |op, sub, extra| Event::new("bhyve", "bsd1", op, sub, extra).with_input(VM);
        for op in ["migrate", "restore", "reconnect", "attach"] {
            assert_eq!(
                check(&BhyveDriver, &event(op, "begin", "-")).unwrap_err(),
                format!(
                    "driver 'bhyve' has no operation '{op}'; valid operations: \
                     prepare, start, started, stopped, release"
                )
                .as_str()
            );
        }
        // No shutoff reason on bhyve's release, unlike qemu's.
        assert_eq!(
            check(&BhyveDriver, &event("release", "end", "shutdown")).unwrap_err(),
            "'bhyve release' takes extra '-', not 'shutdown'"
        );
        assert_eq!(
            check(&BhyveDriver, &event("stopped", "begin", "-")).unwrap_err(),
            "'bhyve stopped' takes sub-operation 'end', not 'begin'"
        );
        assert_eq!(
            check(&BhyveDriver, &Event::new("bhyve", "bsd1", "start", "begin", "-")).unwrap_err(),
            "'bhyve start' needs an XML document with root <domain> on stdin, and none was given"
        );
    }

    #[test]
    fn the_document_must_name_the_domain() {
        let with = |object, doc: &'static [u8]| {
            check(
                &BhyveDriver,
                &Event::new("bhyve", object, "prepare", "begin", "-").with_input(doc),
            )
        };
        assert_eq!(
            with("bsd2", VM).unwrap_err(),
            "the domain XML names 'bsd1', not the object 'bsd2'"
        );
        assert_eq!(
            with("bsd1", b"<network><name>bsd1</name></network>").unwrap_err(),
            "the domain XML has root element <network>, not <domain>"
        );
        assert!(
            with("bsd1", b"<domain><name>bsd1</name>")
                .unwrap_err()
                .to_string()
                .starts_with("the domain XML is not well-formed: ")
        );
        // An empty document (libvirt always formats one for bhyve) is refused.
        assert!(
            with("bsd1", b"")
                .unwrap_err()
                .to_string()
                .starts_with("the domain XML is not well-formed: ")
        );
    }

    #[test]
    fn no_hook_output_is_ever_used() {
        for [object, op, sub, extra] in CALLS {
            let event = Event::new("bhyve", object, op, sub, extra).with_input(VM);
            assert_eq!(
                check_output(&BhyveDriver, &event, VM).unwrap_err(),
                format!("'bhyve {op}' is not a filter: its scripts' output is never used").as_str()
            );
        }
    }
}
