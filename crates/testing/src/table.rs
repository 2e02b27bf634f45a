//! Mistakes in a driver's name and operation table that no event would
//! reveal: rows that can never match, names no hook file can have.

use std::collections::HashSet;
use std::fmt;

use virt_hooks_core::{ExtraRule, HookDriver, InputSpec};

/// One mistake in a driver's description or operation table.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TableProblem {
    /// The driver name cannot be a hook script's file name.
    DriverName {
        /// The name.
        name: String,
    },
    /// The table has no operations: every event is refused.
    NoOperations,
    /// An operation name cannot be a directory of the per-object layout
    /// (`<driver>.d/<object>/<op>/<subop>`).
    OperationName {
        /// The name.
        operation: String,
    },
    /// A second row with the same name: the host only ever uses the first.
    DuplicateOperation {
        /// The name.
        operation: String,
    },
    /// A sub-operation that cannot be a directory of the per-object layout.
    SubOperationName {
        /// The operation.
        operation: String,
        /// The sub-operation.
        sub_operation: String,
    },
    /// A row without sub-operations: no event matches it.
    NoSubOperations {
        /// The operation.
        operation: String,
    },
    /// A row whose `extra` must be one of no values: no event matches it.
    NoExtraValues {
        /// The operation.
        operation: String,
    },
    /// A filter that takes no document: there is nothing to replace.
    FilterWithoutInput {
        /// The operation.
        operation: String,
    },
    /// A row without a description: `virt-hook drivers` would list a blank.
    NoDescription {
        /// The operation.
        operation: String,
    },
}

impl fmt::Display for TableProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableProblem::DriverName { name } => {
                write!(f, "driver name '{name}' cannot be a hook script's file name")
            }
            TableProblem::NoOperations => f.write_str("the operation table is empty"),
            TableProblem::OperationName { operation } => {
                write!(f, "operation name '{operation}' cannot be a directory name")
            }
            TableProblem::DuplicateOperation { operation } => {
                write!(f, "operation '{operation}' is listed twice; the second row is never used")
            }
            TableProblem::SubOperationName { operation, sub_operation } => write!(
                f,
                "operation '{operation}': sub-operation '{sub_operation}' cannot be a directory name"
            ),
            TableProblem::NoSubOperations { operation } => {
                write!(
                    f,
                    "operation '{operation}' accepts no sub-operation, so no event matches it"
                )
            }
            TableProblem::NoExtraValues { operation } => {
                write!(f, "operation '{operation}' accepts no extra value, so no event matches it")
            }
            TableProblem::FilterWithoutInput { operation } => {
                write!(f, "operation '{operation}' is a filter but takes no document to filter")
            }
            TableProblem::NoDescription { operation } => {
                write!(f, "operation '{operation}' has no description")
            }
        }
    }
}

/// Whether `name` can be one path component of a hooks directory: not empty,
/// not `.` or `..`, no `/`, NUL or white space.
fn is_file_name(name: &str) -> bool {
    !matches!(name, "" | "." | "..")
        && !name.chars().any(|c| c == '/' || c == '\0' || c.is_whitespace())
}

/// Every [`TableProblem`] of `driver`'s name and operation table, in table
/// order; empty when there is none. The host loads such a driver anyway (it
/// checks events, not tables), so a test is where these are caught:
/// `assert_eq!(table_problems(&MyDriver), [])`.
pub fn table_problems(driver: &(impl HookDriver + ?Sized)) -> Vec<TableProblem> {
    let mut problems = Vec::new();
    let name = driver.info().name;
    if !is_file_name(&name) {
        problems.push(TableProblem::DriverName { name });
    }
    let table = driver.operations();
    if table.is_empty() {
        problems.push(TableProblem::NoOperations);
    }
    let mut seen = HashSet::new();
    for row in &table {
        let operation = || row.name.clone();
        if !is_file_name(&row.name) {
            problems.push(TableProblem::OperationName { operation: operation() });
        }
        if !seen.insert(row.name.as_str()) {
            problems.push(TableProblem::DuplicateOperation { operation: operation() });
        }
        if row.sub_operations.is_empty() {
            problems.push(TableProblem::NoSubOperations { operation: operation() });
        }
        for sub in row.sub_operations.iter().filter(|s| !is_file_name(s)) {
            problems.push(TableProblem::SubOperationName {
                operation: operation(),
                sub_operation: sub.clone(),
            });
        }
        if matches!(&row.extra, ExtraRule::OneOf(values) if values.is_empty()) {
            problems.push(TableProblem::NoExtraValues { operation: operation() });
        }
        if row.filter && row.input == InputSpec::None {
            problems.push(TableProblem::FilterWithoutInput { operation: operation() });
        }
        if row.description.trim().is_empty() {
            problems.push(TableProblem::NoDescription { operation: operation() });
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use virt_hooks_core::{DriverInfo, OperationSpec};

    use super::*;

    struct Table(String, Vec<OperationSpec>);

    impl HookDriver for Table {
        fn info(&self) -> DriverInfo {
            DriverInfo::new(self.0.as_str(), "1.0.0", "a test driver")
        }
        fn operations(&self) -> Vec<OperationSpec> {
            self.1.clone()
        }
    }

    fn row(name: &str) -> OperationSpec {
        OperationSpec::new(name, ["begin"], ExtraRule::Dash).describe("when it happens")
    }

    #[test]
    fn a_sound_table_has_no_problems() {
        let table = Table(
            "port-audit".into(),
            vec![
                row("start"),
                OperationSpec::new("release", ["end"], ExtraRule::one_of(["-", "from snapshot"]))
                    .describe("after"),
                row("migrate").input(InputSpec::xml("domain")).filter(true),
                OperationSpec::new("reload", ["-"], ExtraRule::Free).describe("on SIGHUP"),
            ],
        );
        assert_eq!(table_problems(&table), []);
    }

    #[test]
    fn every_problem_is_named_in_table_order() {
        let table = Table(
            "bad/name".into(),
            vec![
                row("start"),
                row("start"),
                row("../up"),
                OperationSpec::new("nosub", Vec::<String>::new(), ExtraRule::Dash).describe("x"),
                OperationSpec::new("subs", ["begin", "", "a b"], ExtraRule::Dash).describe("x"),
                OperationSpec::new("none", ["-"], ExtraRule::OneOf(Vec::new())).describe("x"),
                row("filter").filter(true),
                OperationSpec::new("blank", ["-"], ExtraRule::Dash).describe("  "),
            ],
        );
        let shown: Vec<String> = table_problems(&table).iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "driver name 'bad/name' cannot be a hook script's file name",
                "operation 'start' is listed twice; the second row is never used",
                "operation name '../up' cannot be a directory name",
                "operation 'nosub' accepts no sub-operation, so no event matches it",
                "operation 'subs': sub-operation '' cannot be a directory name",
                "operation 'subs': sub-operation 'a b' cannot be a directory name",
                "operation 'none' accepts no extra value, so no event matches it",
                "operation 'filter' is a filter but takes no document to filter",
                "operation 'blank' has no description",
            ]
        );
    }

    #[test]
    fn names_no_hook_file_can_have() {
        for name in ["", ".", "..", "a/b", "a b", "a\0b", "tab\t"] {
            assert!(!is_file_name(name), "{name:?}");
            assert_eq!(
                table_problems(&Table(name.into(), vec![row("start")])),
                [TableProblem::DriverName { name: name.to_owned() }]
            );
        }
        for name in ["qemu", "port-created", "-", ".hidden", "a.b"] {
            assert!(is_file_name(name), "{name:?}");
        }
    }

    #[test]
    fn an_empty_table_is_a_problem() {
        assert_eq!(table_problems(&Table("x".into(), Vec::new())), [TableProblem::NoOperations]);
    }
}
