/*!
The libvirt `libxl` hook driver: the hooks libvirt's Xen driver (virtxend, or
libvirtd) runs around the life of a Xen domain (`/etc/libvirt/hooks/libxl`).

Every hook is called with the domain name as its object and `extra` `-` (the
`release` hook carries no shutoff reason, unlike qemu's and lxc's), and reads
the domain's XML definition on stdin. Failures of the hooks before or while
a domain starts, and of `reconnect`, refuse the operation; failures after it
stopped are only logged.

`migrate` is a filter: on the destination of an incoming migration a script
may print a changed definition, which libvirt parses and uses as it is (it
checks neither the name nor the uuid, unlike qemu). libvirt formats this
hook's document with flags its formatter rejects (libvirt-hooks.md §3.5), so
current versions run it with an empty stdin; older ones passed the XML. Both
are accepted.
*/
#![forbid(unsafe_code)]

use virt_hooks_abi::{
    DriverError, DriverInfo, Event, ExtraRule, FailurePolicy, HookDriver, OperationSpec, log,
};
use virt_hooks_xml::{domain, summarize};

/// The operation whose scripts may rewrite the domain definition.
pub const MIGRATE: &str = "migrate";

/// The `libxl` driver.
#[derive(Debug, Default, Clone, Copy)]
pub struct LibxlDriver;

/// One row: the domain XML on stdin, `extra` always `-`.
fn op(name: &str, sub: &str, on_failure: FailurePolicy, description: &str) -> OperationSpec {
    virt_hooks_xml::domain::operation(name, sub, ExtraRule::Dash, on_failure, description)
}

impl HookDriver for LibxlDriver {
    fn info(&self) -> DriverInfo {
        DriverInfo::new("libxl", env!("CARGO_PKG_VERSION"), "Xen domains run by virtxend (libxl)")
    }

    fn operations(&self) -> Vec<OperationSpec> {
        use FailurePolicy::{Abort, Ignore};
        vec![
            op(
                "prepare",
                "begin",
                Abort,
                "before a domain starts (also for a restore or an incoming migration)",
            ),
            op(
                "start",
                "begin",
                Abort,
                "after the domain's configuration is built, before Xen creates it",
            ),
            op(
                "started",
                "begin",
                Abort,
                "after the domain was created and its status saved; a failure destroys it",
            ),
            op(
                "stopped",
                "end",
                Ignore,
                "when a domain has stopped, before its resources are released",
            ),
            op("release", "end", Ignore, "after a stopped domain's resources are released"),
            op(
                MIGRATE,
                "begin",
                Abort,
                "on the destination, before an incoming migration; may rewrite the XML",
            )
            .filter(true),
            op(
                "reconnect",
                "begin",
                Abort,
                "when the daemon restarts and reconnects to a running domain (not Domain-0)",
            ),
        ]
    }

    fn validate(&self, event: &Event<'_>) -> Result<(), DriverError> {
        log::debug!("checking the domain XML of libxl {} {}", event.operation, event.object);
        if event.operation == MIGRATE && event.input.is_some_and(<[u8]>::is_empty) {
            // What current libvirt sends: its formatter refuses the flags.
            return Ok(());
        }
        domain::validate_event(event)
    }

    fn check_output(&self, event: &Event<'_>, output: &[u8]) -> Result<(), DriverError> {
        log::debug!("checking the output of libxl {} {}", event.operation, event.object);
        check_migrate_output(output)
    }
}

/// Checks a `migrate` script's output as far as libvirt's parser needs it: a
/// well-formed document whose root is `<domain>` and that has a `<name>`.
/// Name and uuid may change: libvirt's libxl driver does not compare them.
///
/// # Errors
///
/// [`DriverError::Invalid`] saying which of these fails.
pub fn check_migrate_output(output: &[u8]) -> Result<(), DriverError> {
    let summary = summarize(output, &["name"])
        .map_err(|e| DriverError::invalid(format!("the hook output is not well-formed: {e}")))?;
    if summary.root() != "domain" {
        return Err(DriverError::invalid(format!(
            "the hook output has root element <{}>, not <domain>",
            summary.root()
        )));
    }
    match summary.text("name") {
        Some(name) if !name.trim().is_empty() => Ok(()),
        _ => Err(DriverError::invalid("the hook output has no domain name")),
    }
}

virt_hooks_abi::export_driver!(LibxlDriver);

#[cfg(test)]
mod tests {
    use super::*;
    use virt_hooks_abi::InputSpec;
    use virt_hooks_testing::{check, check_output, table_problems};

    const VM: &[u8] = b"<domain type='xen'><name>xen1</name>\
        <uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid></domain>";

    /// libvirt's calls (`src/libxl/*.c`), as argv after the path.
    const CALLS: [[&str; 4]; 7] = [
        ["xen1", "prepare", "begin", "-"],
        ["xen1", "start", "begin", "-"],
        ["xen1", "started", "begin", "-"],
        ["xen1", "stopped", "end", "-"],
        ["xen1", "release", "end", "-"],
        ["xen1", "migrate", "begin", "-"],
        ["xen1", "reconnect", "begin", "-"],
    ];

    fn event<'a>(op: &'a str, sub: &'a str, doc: &'a [u8]) -> Event<'a> {
        Event::new("libxl", "xen1", op, sub, "-").with_input(doc)
    }

    #[test]
    fn the_table_is_libvirts() {
        assert_eq!(table_problems(&LibxlDriver), []);
        let ops = LibxlDriver.operations();
        let rows: Vec<(&str, &str, FailurePolicy, bool)> = ops
            .iter()
            .map(|o| (o.name.as_str(), o.sub_operations[0].as_str(), o.on_failure, o.filter))
            .collect();
        use FailurePolicy::{Abort, Ignore};
        assert_eq!(
            rows,
            [
                ("prepare", "begin", Abort, false),
                ("start", "begin", Abort, false),
                ("started", "begin", Abort, false),
                ("stopped", "end", Ignore, false),
                ("release", "end", Ignore, false),
                ("migrate", "begin", Abort, true),
                ("reconnect", "begin", Abort, false),
            ]
        );
        for op in &ops {
            assert_eq!(op.sub_operations.len(), 1, "{}", op.name);
            assert_eq!(op.extra, ExtraRule::Dash, "{}", op.name);
            assert_eq!(op.input, InputSpec::xml("domain"), "{}", op.name);
        }
    }

    #[test]
    fn libvirts_calls_pass() {
        for [object, op, sub, extra] in CALLS {
            let event = Event::new("libxl", object, op, sub, extra).with_input(VM);
            assert_eq!(check(&LibxlDriver, &event), Ok(()), "{op}");
        }
    }

    #[test]
    fn other_calls_are_refused_with_a_reason() {
        for op in ["restore", "attach"] {
            assert!(
                check(&LibxlDriver, &event(op, "begin", VM))
                    .unwrap_err()
                    .to_string()
                    .starts_with(&format!("driver 'libxl' has no operation '{op}'")),
                "{op}"
            );
        }
        let reason = Event::new("libxl", "xen1", "release", "end", "shutdown").with_input(VM);
        assert_eq!(
            check(&LibxlDriver, &reason).unwrap_err(),
            "'libxl release' takes extra '-', not 'shutdown'"
        );
        assert_eq!(
            check(&LibxlDriver, &event("started", "end", VM)).unwrap_err(),
            "'libxl started' takes sub-operation 'begin', not 'end'"
        );
        assert_eq!(
            check(&LibxlDriver, &Event::new("libxl", "xen1", "migrate", "begin", "-")).unwrap_err(),
            "'libxl migrate' needs an XML document with root <domain> on stdin, and none was given"
        );
    }

    #[test]
    fn the_document_must_name_the_domain() {
        let other = Event::new("libxl", "xen2", "start", "begin", "-").with_input(VM);
        assert_eq!(
            check(&LibxlDriver, &other).unwrap_err(),
            "the domain XML names 'xen1', not the object 'xen2'"
        );
        let migrate_other = Event::new("libxl", "xen2", "migrate", "begin", "-").with_input(VM);
        assert_eq!(
            check(&LibxlDriver, &migrate_other).unwrap_err(),
            "the domain XML names 'xen1', not the object 'xen2'"
        );
        assert!(
            check(&LibxlDriver, &event("prepare", "begin", b"<domain><name>xen1"))
                .unwrap_err()
                .to_string()
                .starts_with("the domain XML is not well-formed: ")
        );
    }

    #[test]
    fn only_migrate_may_come_with_an_empty_document() {
        assert_eq!(check(&LibxlDriver, &event("migrate", "begin", b"")), Ok(()));
        for [_, op, sub, _] in CALLS.into_iter().filter(|c| c[1] != MIGRATE) {
            assert!(
                check(&LibxlDriver, &event(op, sub, b""))
                    .unwrap_err()
                    .to_string()
                    .starts_with("the domain XML is not well-formed: "),
                "{op}"
            );
        }
        // White space is not empty: it is a document, and not a domain.
        assert!(check(&LibxlDriver, &event("migrate", "begin", b"\n")).is_err());
    }

    #[test]
    fn migrate_output_must_be_a_named_domain() {
        for input in [VM, b""] {
            let migrate = event("migrate", "begin", input);
            assert_eq!(check_output(&LibxlDriver, &migrate, VM), Ok(()));
            // libvirt's libxl driver compares neither name nor uuid.
            let renamed = b"<domain type='xen'><name>xen9</name></domain>";
            assert_eq!(check_output(&LibxlDriver, &migrate, renamed), Ok(()));
            for (output, reason) in [
                (
                    &b"<network><name>xen1</name></network>"[..],
                    "the hook output has root element <network>, not <domain>",
                ),
                (b"<domain type='xen'/>", "the hook output has no domain name"),
                (b"<domain><name> </name></domain>", "the hook output has no domain name"),
            ] {
                assert_eq!(check_output(&LibxlDriver, &migrate, output).unwrap_err(), reason);
            }
            assert!(
                check_output(&LibxlDriver, &migrate, b"<domain><name>xen1</name>")
                    .unwrap_err()
                    .to_string()
                    .starts_with("the hook output is not well-formed: ")
            );
        }
        assert_eq!(
            check_output(&LibxlDriver, &event("start", "begin", VM), VM).unwrap_err(),
            "'libxl start' is not a filter: its scripts' output is never used"
        );
    }
}
