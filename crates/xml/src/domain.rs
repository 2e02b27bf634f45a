//! The domain document checks of the qemu and lxc drivers (and any driver
//! whose hooks read a libvirt `<domain>` definition).

use virt_hooks_core::{DriverError, Event, ExtraRule, FailurePolicy, InputSpec, OperationSpec};

use crate::{Summary, summarize};

const WANTED: &[&str] = &["name", "uuid"];

/// One row of a guest driver's table (qemu, lxc): the domain XML on stdin.
/// The failure policy is the driver's to declare, row by row, as libvirt's
/// call site treats a failing hook.
pub fn operation(
    name: &str,
    sub: &str,
    extra: ExtraRule,
    on_failure: FailurePolicy,
    description: &str,
) -> OperationSpec {
    OperationSpec::new(name, [sub], extra)
        .describe(description)
        .input(InputSpec::xml("domain"))
        .on_failure(on_failure)
}

/// The `extra` values of a domain's `release` hook: `-` (before libvirt
/// 10.5.0) or the shutoff reason, as `virDomainShutoffReasonTypeToString`
/// spells it (`from snapshot` has a space).
pub const RELEASE_EXTRAS: &[&str] = &[
    "-",
    "unknown",
    "shutdown",
    "destroyed",
    "crashed",
    "migrated",
    "saved",
    "failed",
    "from snapshot",
    "daemon",
];

/// Checks a hook's input: a well-formed document whose root is `<domain>`,
/// whose one `<name>` is `object`, the hook's first argument, and which has
/// at most one `<uuid>`.
///
/// # Errors
///
/// [`DriverError::Invalid`] saying which of these fails.
pub fn check_input(doc: &[u8], object: &str) -> Result<(), DriverError> {
    let what = "the domain XML";
    let summary = domain(doc, what)?;
    only(&summary, "uuid", what)?;
    match only(&summary, "name", what)? {
        None => Err(DriverError::invalid("the domain XML has no <name> element")),
        Some(name) if name != object => Err(DriverError::invalid(format!(
            "the domain XML names '{name}', not the object '{object}'"
        ))),
        Some(_) => Ok(()),
    }
}

/// Checks a filter script's output (migrate, restore) against the document it
/// was given: a well-formed `<domain>` with the same name and uuid (and one
/// of each at most).
///
/// The output is checked whole. The input is read only as far as its name
/// and uuid ([`summarize_prefix`](crate::summarize_prefix)): it is the
/// document [`check_input`] accepted before any script ran, so parsing all
/// of it again (64 MiB, for the largest documents) would find nothing new.
///
/// # Errors
///
/// [`DriverError::Invalid`] saying which of these fails.
pub fn check_output(input: &[u8], output: &[u8]) -> Result<(), DriverError> {
    let before = domain_with(input, "the input domain XML", crate::summarize_prefix)?;
    let what = "the hook output";
    let after = domain(output, what)?;
    let (old, new) = (before.text("name"), only(&after, "name", what)?);
    if old != new {
        return Err(DriverError::invalid(format!(
            "the hook output renames the domain from {} to {}",
            shown(old),
            shown(new)
        )));
    }
    let (old, new) = (before.text("uuid"), only(&after, "uuid", what)?);
    if old.map(uuid_key) != new.map(uuid_key) {
        return Err(DriverError::invalid(format!(
            "the hook output changes the domain uuid from {} to {}",
            shown(old),
            shown(new)
        )));
    }
    Ok(())
}

/// [`HookDriver::validate`](virt_hooks_core::HookDriver::validate) for
/// drivers whose every hook reads the domain definition: [`check_input`] on
/// the event's document and object.
///
/// # Errors
///
/// [`DriverError::Invalid`] with the reason.
pub fn validate_event(event: &Event<'_>) -> Result<(), DriverError> {
    match event.input {
        Some(doc) => check_input(doc, event.object),
        None => Err(DriverError::invalid("no domain XML was given on stdin")),
    }
}

/// [`HookDriver::check_output`](virt_hooks_core::HookDriver::check_output)
/// for the same drivers: [`check_output`] against the event's document.
///
/// # Errors
///
/// [`DriverError::Invalid`] with the reason.
pub fn check_event_output(event: &Event<'_>, output: &[u8]) -> Result<(), DriverError> {
    check_output(event.input.unwrap_or_default(), output)
}

fn domain(doc: &[u8], what: &str) -> Result<Summary, DriverError> {
    domain_with(doc, what, summarize)
}

fn domain_with(
    doc: &[u8],
    what: &str,
    summarize: fn(&[u8], &[&str]) -> Result<Summary, crate::XmlError>,
) -> Result<Summary, DriverError> {
    let summary = summarize(doc, WANTED)
        .map_err(|e| DriverError::invalid(format!("{what} is not well-formed: {e}")))?;
    if summary.root() != "domain" {
        return Err(DriverError::invalid(format!(
            "{what} has root element <{}>, not <domain>",
            summary.root()
        )));
    }
    Ok(summary)
}

/// The text of the one element at `path` of `what`, or an error naming a
/// second one.
fn only<'s>(summary: &'s Summary, path: &str, what: &str) -> Result<Option<&'s str>, DriverError> {
    summary.only(path).map_err(|e| DriverError::invalid(format!("{what} is not valid: {e}")))
}

fn shown(value: Option<&str>) -> String {
    value.map_or_else(|| "none".to_owned(), |v| format!("'{v}'"))
}

/// libvirt accepts a uuid with or without dashes, in either case.
fn uuid_key(uuid: &str) -> String {
    uuid.trim().chars().filter(|c| *c != '-').map(|c| c.to_ascii_lowercase()).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const VM1: &[u8] =
        b"<domain type='kvm'><name>vm1</name><uuid>C7A5FDBD-edaf-9455-926a-d65c16db1809</uuid></domain>";

    fn reason(r: Result<(), DriverError>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn input_must_be_a_domain_named_like_the_object() {
        assert_eq!(check_input(VM1, "vm1"), Ok(()));
        assert_eq!(
            reason(check_input(VM1, "vm2")),
            "the domain XML names 'vm1', not the object 'vm2'"
        );
        assert_eq!(
            reason(check_input(b"<network><name>vm1</name></network>", "vm1")),
            "the domain XML has root element <network>, not <domain>"
        );
        assert_eq!(
            reason(check_input(b"<domain/>", "vm1")),
            "the domain XML has no <name> element"
        );
        assert!(
            reason(check_input(b"<domain><name>vm1</domain>", "vm1"))
                .starts_with("the domain XML is not well-formed: ")
        );
    }

    #[test]
    fn a_second_name_or_uuid_is_refused() {
        assert_eq!(
            reason(check_input(b"<domain><name>vm1</name><name>vm2</name></domain>", "vm1")),
            "the domain XML is not valid: a second <name> element; the document must have \
             at most one at line 1, byte 24"
        );
        let two_uuids = b"<domain><name>vm1</name><uuid>a</uuid>\n<uuid>b</uuid></domain>";
        assert_eq!(
            reason(check_input(two_uuids, "vm1")),
            "the domain XML is not valid: a second <uuid> element; the document must have \
             at most one at line 2, byte 39"
        );
        // Deeper <name> elements (a disk's, an interface's) are not the domain's.
        let nested =
            b"<domain><name>vm1</name><devices><name>x</name><name>y</name></devices></domain>";
        assert_eq!(check_input(nested, "vm1"), Ok(()));
        let renamed_twice =
            b"<domain><name>vm1</name><uuid>C7A5FDBD-edaf-9455-926a-d65c16db1809</uuid><name>vm2</name></domain>";
        assert!(
            reason(check_output(VM1, renamed_twice))
                .starts_with("the hook output is not valid: a second <name> element")
        );
    }

    #[test]
    fn output_keeps_name_and_uuid() {
        let same = b"<domain><uuid>c7a5fdbdedaf9455926ad65c16db1809</uuid><name>vm1</name>\
                     <memory>1</memory></domain>";
        assert_eq!(check_output(VM1, same), Ok(()));
        let renamed =
            b"<domain><name>vm2</name><uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid></domain>";
        assert_eq!(
            reason(check_output(VM1, renamed)),
            "the hook output renames the domain from 'vm1' to 'vm2'"
        );
        let no_uuid = b"<domain><name>vm1</name></domain>";
        assert_eq!(
            reason(check_output(VM1, no_uuid)),
            "the hook output changes the domain uuid from \
             'C7A5FDBD-edaf-9455-926a-d65c16db1809' to none"
        );
        assert!(reason(check_output(VM1, b"<domain>")).starts_with("the hook output is not"));
        assert_eq!(
            reason(check_output(VM1, b"<network/>")),
            "the hook output has root element <network>, not <domain>"
        );
    }
}
