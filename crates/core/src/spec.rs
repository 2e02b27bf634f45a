use std::fmt;

use crate::Event;

/// Who a driver is: its name, version and a one-line description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverInfo {
    /// The driver name, which is also the hook script's file name.
    pub name: String,
    /// The driver's own version (not the interface version).
    pub version: String,
    /// One line saying what the driver's hooks are for.
    pub description: String,
}

impl DriverInfo {
    /// Creates a driver description.
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        description: impl Into<String>,
    ) -> DriverInfo {
        DriverInfo { name: name.into(), version: version.into(), description: description.into() }
    }
}

/// What the `extra` argument of an operation may be.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExtraRule {
    /// Only `-` (no extra value).
    Dash,
    /// Exactly this value, e.g. `SIGHUP` for the daemon's reload.
    Fixed(String),
    /// One of these values, e.g. `-` or a shutoff reason for `release`.
    OneOf(Vec<String>),
    /// Any text.
    Free,
}

impl ExtraRule {
    /// Shorthand for [`ExtraRule::Fixed`].
    pub fn fixed(value: impl Into<String>) -> ExtraRule {
        ExtraRule::Fixed(value.into())
    }

    /// Shorthand for [`ExtraRule::OneOf`].
    pub fn one_of<I, S>(values: I) -> ExtraRule
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ExtraRule::OneOf(values.into_iter().map(Into::into).collect())
    }

    /// Returns true if and only if `extra` satisfies this rule.
    pub fn allows(&self, extra: &str) -> bool {
        match self {
            ExtraRule::Dash => extra == "-",
            ExtraRule::Fixed(value) => extra == value,
            ExtraRule::OneOf(values) => values.iter().any(|v| v == extra),
            ExtraRule::Free => true,
        }
    }
}

impl fmt::Display for ExtraRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExtraRule::Dash => f.write_str("'-'"),
            ExtraRule::Fixed(value) => write!(f, "'{value}'"),
            ExtraRule::OneOf(values) => f.write_str(&quoted_list(values)),
            ExtraRule::Free => f.write_str("any text"),
        }
    }
}

/// The document an operation reads on stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InputSpec {
    /// No document: the hook's stdin is `/dev/null`.
    None,
    /// An XML document whose root element has this name.
    Xml {
        /// The root element's name, e.g. `domain` or `hookData`.
        root: String,
    },
}

impl InputSpec {
    /// Shorthand for [`InputSpec::Xml`].
    pub fn xml(root: impl Into<String>) -> InputSpec {
        InputSpec::Xml { root: root.into() }
    }
}

impl fmt::Display for InputSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputSpec::None => f.write_str("no input"),
            InputSpec::Xml { root } => write!(f, "an XML document with root <{root}>"),
        }
    }
}

/// What a failing hook script does to the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailurePolicy {
    /// The operation is refused (libvirt's fatal call sites).
    Abort,
    /// The failure is logged and the operation goes on.
    Ignore,
}

impl FailurePolicy {
    /// `"abort"` or `"ignore"`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailurePolicy::Abort => "abort",
            FailurePolicy::Ignore => "ignore",
        }
    }
}

impl fmt::Display for FailurePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of a driver's operation table.
///
/// Built with [`OperationSpec::new`] and the chained setters; the defaults are
/// no input, [`FailurePolicy::Abort`] and not a filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationSpec {
    /// The operation name, e.g. `prepare`.
    pub name: String,
    /// One line saying when libvirt calls it.
    pub description: String,
    /// The sub-operations it accepts, e.g. `["begin"]`.
    pub sub_operations: Vec<String>,
    /// What `extra` may be.
    pub extra: ExtraRule,
    /// The document it reads on stdin.
    pub input: InputSpec,
    /// What a failing script does to the operation.
    pub on_failure: FailurePolicy,
    /// Whether a script's stdout may replace the document (migrate, restore).
    pub filter: bool,
}

impl OperationSpec {
    /// Creates a row: no input, abort on failure, not a filter.
    pub fn new<I, S>(name: impl Into<String>, sub_operations: I, extra: ExtraRule) -> OperationSpec
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        OperationSpec {
            name: name.into(),
            description: String::new(),
            sub_operations: sub_operations.into_iter().map(Into::into).collect(),
            extra,
            input: InputSpec::None,
            on_failure: FailurePolicy::Abort,
            filter: false,
        }
    }

    /// Sets the one-line description.
    pub fn describe(mut self, description: impl Into<String>) -> OperationSpec {
        self.description = description.into();
        self
    }

    /// Sets the input document.
    pub fn input(mut self, input: InputSpec) -> OperationSpec {
        self.input = input;
        self
    }

    /// Sets the failure policy.
    pub fn on_failure(mut self, policy: FailurePolicy) -> OperationSpec {
        self.on_failure = policy;
        self
    }

    /// Marks the operation as a filter (or not).
    pub fn filter(mut self, yes: bool) -> OperationSpec {
        self.filter = yes;
        self
    }

    /// Finds the row for `event.operation` in `table` and checks the event
    /// against it.
    ///
    /// # Errors
    ///
    /// A [`SpecError`] naming the driver, the operation and the valid choices.
    pub fn select<'t>(
        table: &'t [OperationSpec],
        event: &Event<'_>,
    ) -> Result<&'t OperationSpec, SpecError> {
        let spec = OperationSpec::find(table, event)?;
        spec.check(event)?;
        Ok(spec)
    }

    /// Finds the row for `event.operation` in `table`, checking nothing else.
    ///
    /// # Errors
    ///
    /// [`SpecError::UnknownOperation`] listing the table's operations.
    pub fn find<'t>(
        table: &'t [OperationSpec],
        event: &Event<'_>,
    ) -> Result<&'t OperationSpec, SpecError> {
        table.iter().find(|op| op.name == event.operation).ok_or_else(|| {
            SpecError::UnknownOperation {
                driver: event.driver.to_owned(),
                operation: event.operation.to_owned(),
                valid: table.iter().map(|op| op.name.clone()).collect(),
            }
        })
    }

    /// Checks an event's sub-operation, extra and input against this row.
    /// The operation name itself is not compared.
    ///
    /// # Errors
    ///
    /// A [`SpecError`] naming what is wrong and what would be right.
    pub fn check(&self, event: &Event<'_>) -> Result<(), SpecError> {
        self.check_args(event)?;
        let at = || format!("{} {}", event.driver, self.name);
        match (&self.input, event.input) {
            (InputSpec::None, Some(_)) => Err(SpecError::UnexpectedInput { at: at() }),
            (InputSpec::Xml { .. }, None) => {
                Err(SpecError::MissingInput { at: at(), input: self.input.clone() })
            }
            _ => Ok(()),
        }
    }

    /// Checks only the event's sub-operation and extra against this row,
    /// not its input: enough to say which scripts an event would run.
    ///
    /// # Errors
    ///
    /// A [`SpecError`] naming what is wrong and what would be right.
    pub fn check_args(&self, event: &Event<'_>) -> Result<(), SpecError> {
        let at = || format!("{} {}", event.driver, self.name);
        if !self.sub_operations.iter().any(|s| s == event.sub_operation) {
            return Err(SpecError::BadSubOperation {
                at: at(),
                sub_operation: event.sub_operation.to_owned(),
                valid: self.sub_operations.clone(),
            });
        }
        if !self.extra.allows(event.extra) {
            return Err(SpecError::BadExtra {
                at: at(),
                extra: event.extra.to_owned(),
                rule: self.extra.clone(),
            });
        }
        Ok(())
    }
}

/// An event that does not fit its driver's operation table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The driver has no such operation.
    #[error(
        "driver '{driver}' has no operation '{operation}'; valid operations: {}",
        plain_list(valid)
    )]
    UnknownOperation {
        /// The driver name.
        driver: String,
        /// The operation asked for.
        operation: String,
        /// The driver's operations.
        valid: Vec<String>,
    },
    /// The sub-operation is not one the operation accepts.
    #[error("'{at}' takes sub-operation {}, not '{sub_operation}'", quoted_list(valid))]
    BadSubOperation {
        /// `"<driver> <operation>"`.
        at: String,
        /// The sub-operation given.
        sub_operation: String,
        /// The accepted sub-operations.
        valid: Vec<String>,
    },
    /// The extra argument breaks the operation's rule.
    #[error("'{at}' takes extra {rule}, not '{extra}'")]
    BadExtra {
        /// `"<driver> <operation>"`.
        at: String,
        /// The extra given.
        extra: String,
        /// The operation's rule.
        rule: ExtraRule,
    },
    /// The operation needs a document and none was given.
    #[error("'{at}' needs {input} on stdin, and none was given")]
    MissingInput {
        /// `"<driver> <operation>"`.
        at: String,
        /// The document it needs.
        input: InputSpec,
    },
    /// The operation takes no document and one was given.
    #[error("'{at}' takes no input document, and one was given")]
    UnexpectedInput {
        /// `"<driver> <operation>"`.
        at: String,
    },
}

fn plain_list(items: &[String]) -> String {
    items.join(", ")
}

fn quoted_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("'{s}'")).collect();
    match quoted.len() {
        0 => "nothing".to_owned(),
        1 => quoted[0].clone(),
        _ => format!("one of {}", quoted.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Vec<OperationSpec> {
        vec![
            OperationSpec::new("start", ["begin"], ExtraRule::Dash).input(InputSpec::xml("domain")),
            OperationSpec::new("release", ["end"], ExtraRule::one_of(["-", "from snapshot"]))
                .input(InputSpec::xml("domain"))
                .on_failure(FailurePolicy::Ignore),
            OperationSpec::new("reload", ["begin"], ExtraRule::fixed("SIGHUP")),
        ]
    }

    #[test]
    fn select_finds_the_row_and_checks_it() {
        let t = table();
        let ev = Event::new("qemu", "vm", "release", "end", "from snapshot").with_input(b"<x/>");
        assert_eq!(OperationSpec::select(&t, &ev).map(|op| op.name.as_str()), Ok("release"));
    }

    #[test]
    fn unknown_operation_lists_the_valid_ones() {
        let err = OperationSpec::select(&table(), &Event::new("qemu", "vm", "strat", "begin", "-"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "driver 'qemu' has no operation 'strat'; valid operations: start, release, reload"
        );
    }

    #[test]
    fn bad_sub_operation_and_extra_name_the_rule() {
        let t = table();
        let ev = Event::new("qemu", "vm", "start", "end", "-").with_input(b"<x/>");
        assert_eq!(
            OperationSpec::select(&t, &ev).unwrap_err().to_string(),
            "'qemu start' takes sub-operation 'begin', not 'end'"
        );
        let ev = Event::new("qemu", "vm", "release", "end", "later").with_input(b"<x/>");
        assert_eq!(
            OperationSpec::select(&t, &ev).unwrap_err().to_string(),
            "'qemu release' takes extra one of '-', 'from snapshot', not 'later'"
        );
        let ev = Event::new("daemon", "-", "reload", "begin", "SIGTERM");
        assert_eq!(
            OperationSpec::select(&t, &ev).unwrap_err().to_string(),
            "'daemon reload' takes extra 'SIGHUP', not 'SIGTERM'"
        );
    }

    #[test]
    fn input_presence_follows_the_table() {
        let t = table();
        let missing = Event::new("qemu", "vm", "start", "begin", "-");
        assert_eq!(
            OperationSpec::select(&t, &missing).unwrap_err().to_string(),
            "'qemu start' needs an XML document with root <domain> on stdin, and none was given"
        );
        let extra = Event::new("daemon", "-", "reload", "begin", "SIGHUP").with_input(b"x");
        assert!(matches!(
            OperationSpec::select(&t, &extra),
            Err(SpecError::UnexpectedInput { .. })
        ));
    }

    #[test]
    fn free_extra_accepts_anything() {
        assert!(ExtraRule::Free.allows("any thing"));
        assert!(!ExtraRule::Dash.allows(""));
    }
}
