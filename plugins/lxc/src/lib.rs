/*!
The libvirt `lxc` hook driver: the hooks virtlxcd (or libvirtd) runs around the
life of a container (`/etc/libvirt/hooks/lxc`).

Every hook reads the container's XML definition on stdin and is called with
its name as the object. Failures before or while a container starts refuse
the operation; failures after it stopped are only logged.
*/
#![forbid(unsafe_code)]

use virt_hooks_abi::{
    DriverError, DriverInfo, Event, ExtraRule, FailurePolicy, HookDriver, OperationSpec, log,
};
use virt_hooks_xml::domain::{self, operation as op};

/// The `lxc` driver.
#[derive(Debug, Default, Clone, Copy)]
pub struct LxcDriver;

impl HookDriver for LxcDriver {
    fn info(&self) -> DriverInfo {
        DriverInfo::new("lxc", env!("CARGO_PKG_VERSION"), "Linux containers run by virtlxcd")
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
                "before a container starts, before its root file system is set up",
            ),
            op(
                "start",
                "begin",
                Dash,
                Abort,
                "after the controller command is built, before it is launched",
            ),
            op(
                "started",
                "begin",
                Dash,
                Abort,
                "after the container's controller has started and answered",
            ),
            op(
                "stopped",
                "end",
                Dash,
                Ignore,
                "when a container has stopped, before its resources are released",
            ),
            op(
                "release",
                "end",
                ExtraRule::one_of(domain::RELEASE_EXTRAS.iter().copied()),
                Ignore,
                "after a stopped container's resources are released; extra is the shutoff reason",
            ),
            op(
                "reconnect",
                "begin",
                Dash,
                Abort,
                "when the daemon restarts and reconnects to a running container",
            ),
        ]
    }

    fn validate(&self, event: &Event<'_>) -> Result<(), DriverError> {
        log::debug!("checking the domain XML of lxc {} {}", event.operation, event.object);
        domain::validate_event(event)
    }
}

virt_hooks_abi::export_driver!(LxcDriver);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use virt_hooks_abi::FailurePolicy;
    use virt_hooks_testing::{check, table_problems};

    const CT: &[u8] = b"<domain type='lxc'><name>ct1</name><uuid>00000000-0000-0000-0000-000000000001</uuid></domain>";

    #[test]
    fn the_table_is_libvirts() {
        assert_eq!(table_problems(&LxcDriver), []);
        let ops = LxcDriver.operations();
        let names: Vec<&str> = ops.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["prepare", "start", "started", "stopped", "release", "reconnect"]);
        for op in &ops {
            let (sub, policy) = if matches!(op.name.as_str(), "stopped" | "release") {
                ("end", FailurePolicy::Ignore)
            } else {
                ("begin", FailurePolicy::Abort)
            };
            assert_eq!(op.sub_operations, [sub], "{}", op.name);
            assert_eq!(op.on_failure, policy, "{}", op.name);
            assert!(!op.filter);
        }
    }

    #[test]
    fn libvirts_calls_pass_and_others_do_not() {
        assert_eq!(
            check(&LxcDriver, &Event::new("lxc", "ct1", "prepare", "begin", "-").with_input(CT)),
            Ok(())
        );
        assert_eq!(
            check(
                &LxcDriver,
                &Event::new("lxc", "ct1", "release", "end", "shutdown").with_input(CT)
            ),
            Ok(())
        );
        assert!(
            check(&LxcDriver, &Event::new("lxc", "ct1", "migrate", "begin", "-").with_input(CT))
                .is_err()
        );
        assert_eq!(
            check(&LxcDriver, &Event::new("lxc", "ct2", "started", "begin", "-").with_input(CT))
                .unwrap_err(),
            "the domain XML names 'ct1', not the object 'ct2'"
        );
        assert_eq!(
            check(
                &LxcDriver,
                &Event::new("lxc", "ct1", "start", "begin", "-").with_input(b"<network/>")
            )
            .unwrap_err(),
            "the domain XML has root element <network>, not <domain>"
        );
    }
}
