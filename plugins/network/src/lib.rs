/*!
The libvirt `network` hook driver: the hooks virtnetworkd (or libvirtd) runs
around the life of a virtual network and its ports
(`/etc/libvirt/hooks/network`).

The object is always the network's name, also for the port operations (the
port's UUID is only in the document), and `extra` is always `-`. Every hook
reads a `<hookData>` document on stdin:

```text
<hookData>
  <network>...</network>
  <networkport>...</networkport>
</hookData>
```

with the `<networkport>` present only for `port-created` and `port-deleted`,
and no newline after `</hookData>`. Failures of `start`, `started`,
`port-created` and `updated` are returned to libvirt as errors; failures of
`stopped` and `port-deleted` are only logged.

Nothing in the host knows about networks: this crate is built and installed
on its own, next to the other plugins.
*/
#![forbid(unsafe_code)]

use virt_hooks_abi::{
    DriverError, DriverInfo, Event, ExtraRule, FailurePolicy, HookDriver, InputSpec, OperationSpec,
    log,
};
use virt_hooks_xml::summarize;

/// The root element of every network hook document.
pub const ROOT: &str = "hookData";

/// The operations whose document also holds a `<networkport>`.
pub const PORT_OPERATIONS: [&str; 2] = ["port-created", "port-deleted"];

/// The `network` driver.
#[derive(Debug, Default, Clone, Copy)]
pub struct NetworkDriver;

fn op(name: &str, sub: &str, on_failure: FailurePolicy, description: &str) -> OperationSpec {
    OperationSpec::new(name, [sub], ExtraRule::Dash)
        .describe(description)
        .input(InputSpec::xml(ROOT))
        .on_failure(on_failure)
}

impl HookDriver for NetworkDriver {
    fn info(&self) -> DriverInfo {
        DriverInfo::new(
            "network",
            env!("CARGO_PKG_VERSION"),
            "virtual networks and their ports run by virtnetworkd",
        )
    }

    fn operations(&self) -> Vec<OperationSpec> {
        use FailurePolicy::{Abort, Ignore};
        vec![
            op(
                "start",
                "begin",
                Abort,
                "before a network starts, before its bridge, firewall rules and dnsmasq are set up",
            ),
            op(
                "started",
                "begin",
                Abort,
                "after a network has started, before its status is saved",
            ),
            op("stopped", "end", Ignore, "after a network has been shut down and torn down"),
            op(
                "port-created",
                "begin",
                Abort,
                "when a port is created or reclaimed, and for every port when the daemon starts",
            ),
            op(
                "port-deleted",
                "begin",
                Ignore,
                "when a port is deleted, e.g. its domain stopped or its NIC was detached",
            ),
            op(
                "updated",
                "begin",
                Abort,
                "after a network's definition was updated (the update is already applied)",
            ),
        ]
    }

    fn validate(&self, event: &Event<'_>) -> Result<(), DriverError> {
        log::debug!("checking the hookData of network {} {}", event.operation, event.object);
        match event.input {
            Some(doc) => check_input(doc, event.object, is_port_operation(event.operation)),
            None => Err(DriverError::invalid("no hookData document was given on stdin")),
        }
    }
}

/// Whether `operation` is one of [`PORT_OPERATIONS`].
pub fn is_port_operation(operation: &str) -> bool {
    PORT_OPERATIONS.contains(&operation)
}

/// Checks a network hook's document: well-formed, root `<hookData>`, one
/// `<network>` whose one `<name>` is `object`, and one `<networkport>` if and
/// only if `port` (the operation is a port operation).
///
/// # Errors
///
/// [`DriverError::Invalid`] saying which of these fails.
pub fn check_input(doc: &[u8], object: &str, port: bool) -> Result<(), DriverError> {
    let summary = summarize(doc, &["network", "network/name", "networkport"])
        .map_err(|e| DriverError::invalid(format!("the hookData is not well-formed: {e}")))?;
    if summary.root() != ROOT {
        return Err(DriverError::invalid(format!(
            "the hook document has root element <{}>, not <{ROOT}>",
            summary.root()
        )));
    }
    let only = |path| {
        summary
            .only(path)
            .map_err(|e| DriverError::invalid(format!("the hookData is not valid: {e}")))
    };
    if only("network")?.is_none() {
        return Err(DriverError::invalid("the hookData has no <network> element"));
    }
    match only("network/name")? {
        None => return Err(DriverError::invalid("the network XML has no <name> element")),
        Some(name) if name != object => {
            return Err(DriverError::invalid(format!(
                "the network XML names '{name}', not the object '{object}'"
            )));
        }
        Some(_) => {}
    }
    match (port, only("networkport")?.is_some()) {
        (true, false) => Err(DriverError::invalid(
            "the hookData of a port operation has no <networkport> element",
        )),
        (false, true) => Err(DriverError::invalid(
            "the hookData has a <networkport> element, but only port operations have one",
        )),
        _ => Ok(()),
    }
}

virt_hooks_abi::export_driver!(NetworkDriver);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use virt_hooks_testing::{check, table_problems};

    /// What libvirt writes for a network operation: no final newline.
    const NET: &[u8] = b"<hookData>\n  <network>\n    <name>default</name>\n    \
        <uuid>9a05da11-e96b-47f3-8253-a3a482e445f5</uuid>\n  </network>\n</hookData>";
    /// What libvirt writes for a port operation.
    const PORT: &[u8] = b"<hookData>\n  <network>\n    <name>default</name>\n  </network>\n  \
        <networkport>\n    <uuid>5d744f21-ba4a-4d6e-bdb4-ffe3e6a64e2a</uuid>\n    \
        <owner>\n      <name>vm1</name>\n    </owner>\n  </networkport>\n</hookData>";

    #[test]
    fn the_table_is_libvirts() {
        assert_eq!(table_problems(&NetworkDriver), []);
        let ops = NetworkDriver.operations();
        let rows: Vec<(&str, &str, FailurePolicy)> = ops
            .iter()
            .map(|o| (o.name.as_str(), o.sub_operations[0].as_str(), o.on_failure))
            .collect();
        use FailurePolicy::{Abort, Ignore};
        assert_eq!(
            rows,
            [
                ("start", "begin", Abort),
                ("started", "begin", Abort),
                ("stopped", "end", Ignore),
                ("port-created", "begin", Abort),
                ("port-deleted", "begin", Ignore),
                ("updated", "begin", Abort),
            ]
        );
        for op in &ops {
            assert_eq!(op.sub_operations.len(), 1, "{}", op.name);
            assert_eq!(op.extra, ExtraRule::Dash, "{}", op.name);
            assert_eq!(op.input, InputSpec::xml("hookData"), "{}", op.name);
            assert!(!op.filter, "{}", op.name);
            assert!(!op.description.is_empty(), "{}", op.name);
        }
    }

    #[test]
    fn libvirts_calls_pass() {
        for operation in ["start", "started", "updated"] {
            let event = Event::new("network", "default", operation, "begin", "-").with_input(NET);
            assert_eq!(check(&NetworkDriver, &event), Ok(()), "{operation}");
        }
        let stopped = Event::new("network", "default", "stopped", "end", "-").with_input(NET);
        assert_eq!(check(&NetworkDriver, &stopped), Ok(()));
        for operation in PORT_OPERATIONS {
            let event = Event::new("network", "default", operation, "begin", "-").with_input(PORT);
            assert_eq!(check(&NetworkDriver, &event), Ok(()), "{operation}");
        }
    }

    #[test]
    fn the_table_refuses_other_arguments() {
        let bad_extra = Event::new("network", "default", "start", "begin", "x").with_input(NET);
        assert_eq!(
            check(&NetworkDriver, &bad_extra).unwrap_err(),
            "'network start' takes extra '-', not 'x'"
        );
        let bad_sub = Event::new("network", "default", "stopped", "begin", "-").with_input(NET);
        assert_eq!(
            check(&NetworkDriver, &bad_sub).unwrap_err(),
            "'network stopped' takes sub-operation 'end', not 'begin'"
        );
        let no_input = Event::new("network", "default", "start", "begin", "-");
        assert!(
            check(&NetworkDriver, &no_input)
                .unwrap_err()
                .to_string()
                .contains("needs an XML document with root <hookData>")
        );
    }

    #[test]
    fn the_document_is_checked() {
        let reason = |op: &str, doc: &[u8]| {
            let sub = if op == "stopped" { "end" } else { "begin" };
            check(&NetworkDriver, &Event::new("network", "default", op, sub, "-").with_input(doc))
                .unwrap_err()
        };
        assert_eq!(
            reason("start", b"<network><name>default</name></network>"),
            "the hook document has root element <network>, not <hookData>"
        );
        assert_eq!(reason("start", b"<hookData/>"), "the hookData has no <network> element");
        assert_eq!(
            reason("start", b"<hookData><network/></hookData>"),
            "the network XML has no <name> element"
        );
        assert_eq!(
            check(
                &NetworkDriver,
                &Event::new("network", "other", "started", "begin", "-").with_input(NET)
            )
            .unwrap_err(),
            "the network XML names 'default', not the object 'other'"
        );
        assert_eq!(
            reason("port-created", NET),
            "the hookData of a port operation has no <networkport> element"
        );
        assert_eq!(
            reason("stopped", PORT),
            "the hookData has a <networkport> element, but only port operations have one"
        );
        assert!(
            reason("updated", b"<hookData><network>")
                .to_string()
                .starts_with("the hookData is not well-formed: ")
        );
        // One network, one name: a second could say something else.
        assert_eq!(
            reason(
                "start",
                b"<hookData><network><name>default</name><name>x</name></network></hookData>"
            ),
            "the hookData is not valid: a second <network/name> element; the document must have \
             at most one at line 1, byte 39"
        );
        assert!(
            reason(
                "start",
                b"<hookData><network><name>default</name></network><network/></hookData>"
            )
            .to_string()
            .starts_with("the hookData is not valid: a second <network> element")
        );
        // A <name> elsewhere (the port's owner) is not the network's.
        let owner_only = b"<hookData><network/><networkport><owner><name>default</name>\
            </owner></networkport></hookData>";
        assert_eq!(reason("port-deleted", owner_only), "the network XML has no <name> element");
    }
}
