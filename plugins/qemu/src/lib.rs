/*!
The libvirt `qemu` hook driver: the hooks virtqemud (or libvirtd) runs around
the life of a QEMU domain (`/etc/libvirt/hooks/qemu`).

Every hook reads the domain's XML definition on stdin and is called with the
domain name as its object. Failures of the hooks before or while a domain
starts refuse the operation; failures after it stopped are only logged.
`migrate` and `restore` are filters: a script may print a changed definition
(same name and uuid) that libvirt then uses.
*/
#![forbid(unsafe_code)]

use virt_hooks_abi::{
    DriverError, DriverInfo, Event, ExtraRule, FailurePolicy, HookDriver, OperationSpec, log,
};
use virt_hooks_xml::domain::{self, operation as op};

/// The `qemu` driver.
#[derive(Debug, Default, Clone, Copy)]
pub struct QemuDriver;

impl HookDriver for QemuDriver {
    fn info(&self) -> DriverInfo {
        DriverInfo::new("qemu", env!("CARGO_PKG_VERSION"), "QEMU/KVM domains run by virtqemud")
    }

    fn operations(&self) -> Vec<OperationSpec> {
        use ExtraRule::Dash;
        use FailurePolicy::{Abort, Ignore};
        vec![
            op(
                "prepare",
                "begin",
                Dash,
                Abort,
                "before a domain starts, before any of its resources are set up",
            ),
            op(
                "start",
                "begin",
                Dash,
                Abort,
                "after the QEMU command line is built, before QEMU is launched",
            ),
            op("started", "begin", Dash, Abort, "after QEMU has started and the domain's CPUs run"),
            op(
                "stopped",
                "end",
                Dash,
                Ignore,
                "after QEMU has stopped, before the domain's resources are released",
            ),
            op(
                "release",
                "end",
                ExtraRule::one_of(domain::RELEASE_EXTRAS.iter().copied()),
                Ignore,
                "after a stopped domain's resources are released; extra is the shutoff reason",
            ),
            op(
                "migrate",
                "begin",
                Dash,
                Abort,
                "on the destination, before an incoming migration; may rewrite the XML",
            )
            .filter(true),
            op(
                "restore",
                "begin",
                Dash,
                Abort,
                "before a domain is restored from a save image; may rewrite the XML",
            )
            .filter(true),
            op(
                "reconnect",
                "begin",
                Dash,
                Abort,
                "when the daemon restarts and reconnects to a running domain",
            ),
            op(
                "attach",
                "begin",
                Dash,
                Abort,
                "when the daemon attached to an external QEMU (never called since libvirt 5.5.0)",
            ),
        ]
    }

    fn validate(&self, event: &Event<'_>) -> Result<(), DriverError> {
        log::debug!("checking the domain XML of qemu {} {}", event.operation, event.object);
        domain::validate_event(event)
    }

    fn check_output(&self, event: &Event<'_>, output: &[u8]) -> Result<(), DriverError> {
        log::debug!("checking the output of qemu {} {}", event.operation, event.object);
        domain::check_event_output(event, output)
    }
}

virt_hooks_abi::export_driver!(QemuDriver);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use virt_hooks_abi::{FailurePolicy, InputSpec};
    use virt_hooks_testing::{check, table_problems};

    const VM1: &[u8] = b"<domain type='kvm'><name>vm1</name><uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid></domain>";

    #[test]
    fn the_table_is_libvirts() {
        assert_eq!(table_problems(&QemuDriver), []);
        let ops = QemuDriver.operations();
        let row = |name: &str| ops.iter().find(|o| o.name == name).unwrap();
        let mut names: Vec<&str> = ops.iter().map(|o| o.name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "attach",
                "migrate",
                "prepare",
                "reconnect",
                "release",
                "restore",
                "start",
                "started",
                "stopped"
            ]
        );
        for name in ["prepare", "start", "started", "reconnect", "attach", "migrate", "restore"] {
            assert_eq!(row(name).sub_operations, ["begin"]);
            assert_eq!(row(name).on_failure, FailurePolicy::Abort, "{name}");
        }
        for name in ["stopped", "release"] {
            assert_eq!(row(name).sub_operations, ["end"]);
            assert_eq!(row(name).on_failure, FailurePolicy::Ignore, "{name}");
        }
        let filters: Vec<&str> = ops.iter().filter(|o| o.filter).map(|o| o.name.as_str()).collect();
        assert_eq!(filters, ["migrate", "restore"]);
        assert!(
            ops.iter().all(|o| o.input == InputSpec::xml("domain") && !o.description.is_empty())
        );
    }

    #[test]
    fn libvirts_calls_pass() {
        for (op, sub, extra) in [
            ("prepare", "begin", "-"),
            ("start", "begin", "-"),
            ("started", "begin", "-"),
            ("stopped", "end", "-"),
            ("release", "end", "-"),
            ("release", "end", "from snapshot"),
            ("release", "end", "daemon"),
            ("migrate", "begin", "-"),
            ("restore", "begin", "-"),
            ("reconnect", "begin", "-"),
        ] {
            assert_eq!(
                check(&QemuDriver, &Event::new("qemu", "vm1", op, sub, extra).with_input(VM1)),
                Ok(())
            );
        }
    }

    #[test]
    fn wrong_calls_are_refused_with_a_reason() {
        assert_eq!(
            check(&QemuDriver, &Event::new("qemu", "vm2", "start", "begin", "-").with_input(VM1))
                .unwrap_err(),
            "the domain XML names 'vm1', not the object 'vm2'"
        );
        assert!(
            check(
                &QemuDriver,
                &Event::new("qemu", "vm1", "release", "end", "rebooted").with_input(VM1)
            )
            .is_err()
        );
        assert!(
            check(&QemuDriver, &Event::new("qemu", "vm1", "start", "end", "-").with_input(VM1))
                .is_err()
        );
        assert!(check(&QemuDriver, &Event::new("qemu", "vm1", "start", "begin", "-")).is_err());
        assert!(
            check(
                &QemuDriver,
                &Event::new("qemu", "vm1", "start", "begin", "-").with_input(b"<domain><name>vm1")
            )
            .unwrap_err()
            .to_string()
            .starts_with("the domain XML is not well-formed")
        );
    }

    #[test]
    fn filter_output_keeps_name_and_uuid() {
        let event = Event::new("qemu", "vm1", "migrate", "begin", "-").with_input(VM1);
        let changed = b"<domain type='kvm'><name>vm1</name><uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid><memory>2</memory></domain>";
        assert_eq!(QemuDriver.check_output(&event, changed), Ok(()));
        assert_eq!(
            QemuDriver
                .check_output(&event, b"<domain><name>vm9</name></domain>")
                .unwrap_err()
                .to_string(),
            "the hook output renames the domain from 'vm1' to 'vm9'"
        );
    }
}
