//! The FFI-safe mirrors of the core types and their conversions.
//!
//! Every struct here is frozen: adding, removing or retyping a field is a
//! breaking change of the interface (see `docs/abi-evolution.md`). Kinds are
//! `u8` constants rather than enums so that a value from a newer plugin is a
//! clear protocol error on an older host instead of undefined behaviour.

use abi_stable::StableAbi;
use abi_stable::std_types::{ROption, RSlice, RStr, RString, RVec};
use virt_hooks_core::{
    DriverError, DriverInfo, Event, ExtraRule, FailurePolicy, InputSpec, OperationSpec,
};

/// Value of [`FfiOperationSpec::extra_kind`]: [`ExtraRule::Dash`].
pub const EXTRA_DASH: u8 = 0;
/// Value of [`FfiOperationSpec::extra_kind`]: [`ExtraRule::Fixed`] (one value).
pub const EXTRA_FIXED: u8 = 1;
/// Value of [`FfiOperationSpec::extra_kind`]: [`ExtraRule::OneOf`].
pub const EXTRA_ONE_OF: u8 = 2;
/// Value of [`FfiOperationSpec::extra_kind`]: [`ExtraRule::Free`].
pub const EXTRA_FREE: u8 = 3;
/// Value of [`FfiOperationSpec::input_kind`]: [`InputSpec::None`].
pub const INPUT_NONE: u8 = 0;
/// Value of [`FfiOperationSpec::input_kind`]: [`InputSpec::Xml`].
pub const INPUT_XML: u8 = 1;
/// Value of [`FfiOperationSpec::on_failure`]: [`FailurePolicy::Abort`].
pub const FAILURE_ABORT: u8 = 0;
/// Value of [`FfiOperationSpec::on_failure`]: [`FailurePolicy::Ignore`].
pub const FAILURE_IGNORE: u8 = 1;
/// Value of [`FfiDriverError::kind`]: [`DriverError::Invalid`].
pub const ERROR_INVALID: u8 = 0;
/// Value of [`FfiDriverError::kind`]: [`DriverError::Panicked`].
pub const ERROR_PANICKED: u8 = 1;
/// Value of [`FfiDriverError::kind`]: [`DriverError::Protocol`].
pub const ERROR_PROTOCOL: u8 = 2;
/// A kind this side of the boundary cannot express (a core variant newer
/// than this interface); the other side reports it as a protocol error.
pub const UNKNOWN: u8 = u8::MAX;

/// [`Event`] across the boundary. Everything is borrowed: the input
/// document is never copied.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct FfiEvent<'a> {
    /// [`Event::driver`].
    pub driver: RStr<'a>,
    /// [`Event::object`].
    pub object: RStr<'a>,
    /// [`Event::operation`].
    pub operation: RStr<'a>,
    /// [`Event::sub_operation`].
    pub sub_operation: RStr<'a>,
    /// [`Event::extra`].
    pub extra: RStr<'a>,
    /// [`Event::input`].
    pub input: ROption<RSlice<'a, u8>>,
}

impl<'a> From<&Event<'a>> for FfiEvent<'a> {
    fn from(e: &Event<'a>) -> FfiEvent<'a> {
        FfiEvent {
            driver: e.driver.into(),
            object: e.object.into(),
            operation: e.operation.into(),
            sub_operation: e.sub_operation.into(),
            extra: e.extra.into(),
            input: e.input.map(RSlice::from_slice).into(),
        }
    }
}

impl<'a> From<FfiEvent<'a>> for Event<'a> {
    fn from(e: FfiEvent<'a>) -> Event<'a> {
        Event {
            driver: e.driver.as_str(),
            object: e.object.as_str(),
            operation: e.operation.as_str(),
            sub_operation: e.sub_operation.as_str(),
            extra: e.extra.as_str(),
            input: e.input.map(|s| s.as_slice()).into_option(),
        }
    }
}

/// [`DriverInfo`] across the boundary.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiDriverInfo {
    /// [`DriverInfo::name`].
    pub name: RString,
    /// [`DriverInfo::version`].
    pub version: RString,
    /// [`DriverInfo::description`].
    pub description: RString,
}

impl From<DriverInfo> for FfiDriverInfo {
    fn from(i: DriverInfo) -> FfiDriverInfo {
        FfiDriverInfo {
            name: i.name.into(),
            version: i.version.into(),
            description: i.description.into(),
        }
    }
}

impl From<FfiDriverInfo> for DriverInfo {
    fn from(i: FfiDriverInfo) -> DriverInfo {
        DriverInfo::new(i.name, i.version, i.description)
    }
}

/// [`OperationSpec`] across the boundary.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiOperationSpec {
    /// [`OperationSpec::name`].
    pub name: RString,
    /// [`OperationSpec::description`].
    pub description: RString,
    /// [`OperationSpec::sub_operations`].
    pub sub_operations: RVec<RString>,
    /// One of the `EXTRA_*` constants.
    pub extra_kind: u8,
    /// The fixed value or the accepted values; empty otherwise.
    pub extra_values: RVec<RString>,
    /// One of the `INPUT_*` constants.
    pub input_kind: u8,
    /// The root element for [`INPUT_XML`]; empty otherwise.
    pub input_root: RString,
    /// One of the `FAILURE_*` constants.
    pub on_failure: u8,
    /// [`OperationSpec::filter`].
    pub filter: bool,
}

fn rstrings(values: &[String]) -> RVec<RString> {
    values.iter().map(|v| RString::from(v.as_str())).collect()
}

fn strings(values: RVec<RString>) -> Vec<String> {
    values.into_iter().map(String::from).collect()
}

impl From<OperationSpec> for FfiOperationSpec {
    fn from(op: OperationSpec) -> FfiOperationSpec {
        let (extra_kind, extra_values) = match &op.extra {
            ExtraRule::Dash => (EXTRA_DASH, RVec::new()),
            ExtraRule::Fixed(v) => (EXTRA_FIXED, rstrings(std::slice::from_ref(v))),
            ExtraRule::OneOf(vs) => (EXTRA_ONE_OF, rstrings(vs)),
            ExtraRule::Free => (EXTRA_FREE, RVec::new()),
            _ => (UNKNOWN, RVec::new()),
        };
        let (input_kind, input_root) = match &op.input {
            InputSpec::None => (INPUT_NONE, RString::new()),
            InputSpec::Xml { root } => (INPUT_XML, root.as_str().into()),
            _ => (UNKNOWN, RString::new()),
        };
        FfiOperationSpec {
            name: op.name.into(),
            description: op.description.into(),
            sub_operations: rstrings(&op.sub_operations),
            extra_kind,
            extra_values,
            input_kind,
            input_root,
            on_failure: match op.on_failure {
                FailurePolicy::Abort => FAILURE_ABORT,
                FailurePolicy::Ignore => FAILURE_IGNORE,
            },
            filter: op.filter,
        }
    }
}

impl TryFrom<FfiOperationSpec> for OperationSpec {
    type Error = DriverError;

    fn try_from(op: FfiOperationSpec) -> Result<OperationSpec, DriverError> {
        let unknown = |what: &str, kind: u8| {
            DriverError::Protocol(format!(
                "operation '{}' has {what} kind {kind}, unknown to virt-hooks-abi {}",
                op.name,
                crate::ABI_VERSION
            ))
        };
        let mut values = strings(op.extra_values.clone());
        let extra = match op.extra_kind {
            EXTRA_DASH => ExtraRule::Dash,
            EXTRA_FIXED if values.len() == 1 => ExtraRule::Fixed(values.remove(0)),
            EXTRA_ONE_OF => ExtraRule::OneOf(values),
            EXTRA_FREE => ExtraRule::Free,
            kind => return Err(unknown("extra rule", kind)),
        };
        let input = match op.input_kind {
            INPUT_NONE => InputSpec::None,
            INPUT_XML => InputSpec::xml(op.input_root.as_str()),
            kind => return Err(unknown("input", kind)),
        };
        let on_failure = match op.on_failure {
            FAILURE_ABORT => FailurePolicy::Abort,
            FAILURE_IGNORE => FailurePolicy::Ignore,
            kind => return Err(unknown("failure policy", kind)),
        };
        Ok(OperationSpec::new(op.name, strings(op.sub_operations), extra)
            .describe(op.description)
            .input(input)
            .on_failure(on_failure)
            .filter(op.filter))
    }
}

/// [`DriverError`] across the boundary.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiDriverError {
    /// One of the `ERROR_*` constants.
    pub kind: u8,
    /// The reason or the panic message.
    pub message: RString,
}

impl From<DriverError> for FfiDriverError {
    fn from(e: DriverError) -> FfiDriverError {
        let (kind, message) = match e {
            DriverError::Invalid(m) => (ERROR_INVALID, m),
            DriverError::Panicked(m) => (ERROR_PANICKED, m),
            DriverError::Protocol(m) => (ERROR_PROTOCOL, m),
            other => (UNKNOWN, other.to_string()),
        };
        FfiDriverError { kind, message: message.into() }
    }
}

impl From<FfiDriverError> for DriverError {
    fn from(e: FfiDriverError) -> DriverError {
        let message = String::from(e.message);
        match e.kind {
            ERROR_INVALID => DriverError::Invalid(message),
            ERROR_PANICKED => DriverError::Panicked(message),
            ERROR_PROTOCOL => DriverError::Protocol(message),
            kind => DriverError::Protocol(format!("unknown error kind {kind}: {message}")),
        }
    }
}

/// The host's log sink, handed to the plugin when it is loaded: each plugin
/// has its own copy of the `log` crate, so without this its records would go
/// nowhere.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct HostLogger {
    /// The host's maximum level: 0 off, 1 error, ..., 5 trace.
    pub max_level: u8,
    /// Logs one record: level (1 error ... 5 trace), target, message.
    pub log: extern "C" fn(u8, RStr<'_>, RStr<'_>),
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn operation_specs_survive_the_round_trip() {
        let ops = [
            OperationSpec::new("start", ["-"], ExtraRule::fixed("start")),
            OperationSpec::new("release", ["end"], ExtraRule::one_of(["-", "from snapshot"]))
                .describe("after")
                .input(InputSpec::xml("domain"))
                .on_failure(FailurePolicy::Ignore),
            OperationSpec::new("migrate", ["begin"], ExtraRule::Dash).filter(true),
            OperationSpec::new("x", ["a", "b"], ExtraRule::Free),
        ];
        for op in ops {
            let back = OperationSpec::try_from(FfiOperationSpec::from(op.clone()));
            assert_eq!(back, Ok(op));
        }
    }

    #[test]
    fn unknown_kinds_are_protocol_errors() {
        let mut op = FfiOperationSpec::from(OperationSpec::new("start", ["-"], ExtraRule::Dash));
        op.extra_kind = 9;
        let err = OperationSpec::try_from(op.clone()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "plugin protocol error: operation 'start' has extra rule kind 9, \
             unknown to virt-hooks-abi 1.0.0"
        );
        op.extra_kind = EXTRA_DASH;
        op.on_failure = 7;
        assert!(matches!(OperationSpec::try_from(op), Err(DriverError::Protocol(_))));
        let e = DriverError::from(FfiDriverError { kind: 42, message: "m".into() });
        assert_eq!(e, DriverError::Protocol("unknown error kind 42: m".into()));
    }

    #[test]
    fn errors_keep_their_kind() {
        for e in [
            DriverError::invalid("a"),
            DriverError::Panicked("b".into()),
            DriverError::Protocol("c".into()),
        ] {
            assert_eq!(DriverError::from(FfiDriverError::from(e.clone())), e);
        }
    }
}
