/*!
The libvirt `daemon` hook driver: the hooks every libvirt daemon runs when it
starts, shuts down and reloads (`/etc/libvirt/hooks/daemon`).

The object is always `-` and the scripts get no document on stdin. libvirt
ignores every failure of these hooks, so they can only log or act on the side.
*/
#![forbid(unsafe_code)]

use virt_hooks_abi::{
    DriverError, DriverInfo, Event, ExtraRule, FailurePolicy, HookDriver, InputSpec, OperationSpec,
    log,
};

/// The `daemon` driver.
#[derive(Debug, Default, Clone, Copy)]
pub struct DaemonDriver;

impl HookDriver for DaemonDriver {
    fn info(&self) -> DriverInfo {
        DriverInfo::new(
            "daemon",
            env!("CARGO_PKG_VERSION"),
            "the libvirt daemon itself: start, shutdown and reload",
        )
    }

    fn operations(&self) -> Vec<OperationSpec> {
        let op = |name: &str, sub: &str, extra: &str, description: &str| {
            OperationSpec::new(name, [sub], ExtraRule::fixed(extra))
                .describe(description)
                .input(InputSpec::None)
                .on_failure(FailurePolicy::Ignore)
        };
        vec![
            op(
                "start",
                "-",
                "start",
                "when the daemon starts, before it sets up its sockets and drivers",
            ),
            op(
                "shutdown",
                "-",
                "shutdown",
                "when the daemon exits normally, before its drivers are cleaned up",
            ),
            op(
                "reload",
                "begin",
                "SIGHUP",
                "when the daemon gets SIGHUP, before its drivers reload their configuration",
            ),
        ]
    }

    fn validate(&self, event: &Event<'_>) -> Result<(), DriverError> {
        log::debug!("checking daemon {} {} {}", event.operation, event.sub_operation, event.extra);
        if event.object != "-" {
            return Err(DriverError::invalid(format!(
                "the daemon hooks take object '-', not '{}'",
                event.object
            )));
        }
        if event.input.is_some() {
            return Err(DriverError::invalid("the daemon hooks take no input document"));
        }
        Ok(())
    }
}

virt_hooks_abi::export_driver!(DaemonDriver);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use virt_hooks_testing::{check, table_problems};

    #[test]
    fn libvirts_three_calls_pass() {
        assert_eq!(check(&DaemonDriver, &Event::new("daemon", "-", "start", "-", "start")), Ok(()));
        assert_eq!(
            check(&DaemonDriver, &Event::new("daemon", "-", "shutdown", "-", "shutdown")),
            Ok(())
        );
        assert_eq!(
            check(&DaemonDriver, &Event::new("daemon", "-", "reload", "begin", "SIGHUP")),
            Ok(())
        );
    }

    #[test]
    fn the_table_is_libvirts() {
        assert_eq!(table_problems(&DaemonDriver), []);
        let ops = DaemonDriver.operations();
        let names: Vec<&str> = ops.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["start", "shutdown", "reload"]);
        for op in &ops {
            assert_eq!(op.on_failure, FailurePolicy::Ignore, "{}", op.name);
            assert_eq!(op.input, InputSpec::None);
            assert!(!op.filter);
            assert!(!op.description.is_empty());
        }
    }

    #[test]
    fn anything_else_is_refused() {
        assert_eq!(
            check(&DaemonDriver, &Event::new("daemon", "vm1", "start", "-", "start")).unwrap_err(),
            "the daemon hooks take object '-', not 'vm1'"
        );
        assert!(
            check(&DaemonDriver, &Event::new("daemon", "-", "reload", "begin", "SIGTERM")).is_err()
        );
        assert!(
            check(&DaemonDriver, &Event::new("daemon", "-", "start", "begin", "start")).is_err()
        );
        assert!(
            check(
                &DaemonDriver,
                &Event::new("daemon", "-", "start", "-", "start").with_input(b"<x/>")
            )
            .is_err()
        );
        assert!(check(&DaemonDriver, &Event::new("daemon", "-", "restart", "-", "-")).is_err());
    }
}
