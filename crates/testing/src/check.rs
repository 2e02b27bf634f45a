//! An event checked the way the host checks it before any script runs.

use virt_hooks_core::{DriverError, Event, HookDriver, OperationSpec, SpecError};

/// Why the host would refuse an event (or a filter script's output) of a
/// driver. Compares equal to its message, so a test can write
/// `assert_eq!(check(&d, &event).unwrap_err(), "the reason")`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The event does not fit the driver's operation table (operation,
    /// sub-operation, extra, or whether a document is there).
    #[error(transparent)]
    Table(#[from] SpecError),
    /// The driver's own check (`validate` or `check_output`) refused it.
    #[error(transparent)]
    Driver(#[from] DriverError),
    /// [`check_output`] for an operation the table does not mark as a
    /// filter: the host never asks the driver about such output.
    #[error("'{driver} {operation}' is not a filter: its scripts' output is never used")]
    NotAFilter {
        /// The driver named by the event.
        driver: String,
        /// The operation.
        operation: String,
    },
}

impl PartialEq<str> for Refusal {
    fn eq(&self, reason: &str) -> bool {
        self.to_string().as_str() == reason
    }
}

impl PartialEq<&str> for Refusal {
    fn eq(&self, reason: &&str) -> bool {
        self.to_string().as_str() == *reason
    }
}

/// Checks `event` as the host does before it runs a script: against the
/// driver's operation table (`OperationSpec::select`), then with the
/// driver's own `validate`. One line per event in a driver's unit tests.
///
/// The host only calls `validate` when at least one script would run; this
/// always calls it.
///
/// # Errors
///
/// The first [`Refusal`]: [`Refusal::Table`] when the event does not fit
/// the table (the driver is not asked then), [`Refusal::Driver`] when
/// `validate` refuses it.
pub fn check(driver: &(impl HookDriver + ?Sized), event: &Event<'_>) -> Result<(), Refusal> {
    let table = driver.operations();
    OperationSpec::select(&table, event)?;
    driver.validate(event)?;
    Ok(())
}

/// Checks a filter script's `output` for `event` as the host does before the
/// output replaces the document: the event must pass [`check`], its
/// operation must be a filter, and the driver's `check_output` must accept
/// the output.
///
/// # Errors
///
/// The first [`Refusal`]; [`Refusal::NotAFilter`] when the operation is not
/// a filter.
pub fn check_output(
    driver: &(impl HookDriver + ?Sized),
    event: &Event<'_>,
    output: &[u8],
) -> Result<(), Refusal> {
    let table = driver.operations();
    let spec = OperationSpec::select(&table, event)?;
    driver.validate(event)?;
    if !spec.filter {
        return Err(Refusal::NotAFilter {
            driver: event.driver.to_owned(),
            operation: event.operation.to_owned(),
        });
    }
    driver.check_output(event, output)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use virt_hooks_core::{DriverInfo, ExtraRule, InputSpec};

    use super::*;

    /// Accepts documents that start with `<ok`, and filter output that says
    /// `good`; counts nothing, so every answer comes from these rules.
    struct Picky;

    impl HookDriver for Picky {
        fn info(&self) -> DriverInfo {
            DriverInfo::new("picky", "1.0.0", "a test driver")
        }
        fn operations(&self) -> Vec<OperationSpec> {
            vec![
                OperationSpec::new("load", ["begin"], ExtraRule::Dash)
                    .input(InputSpec::xml("ok"))
                    .filter(true),
                OperationSpec::new("tick", ["-"], ExtraRule::one_of(["a", "b"])),
            ]
        }
        fn validate(&self, event: &Event<'_>) -> Result<(), DriverError> {
            match event.input {
                Some(doc) if !doc.starts_with(b"<ok") => Err(DriverError::invalid("not ok")),
                _ => Ok(()),
            }
        }
        fn check_output(&self, _: &Event<'_>, output: &[u8]) -> Result<(), DriverError> {
            if output == b"good" { Ok(()) } else { Err(DriverError::invalid("bad output")) }
        }
    }

    #[test]
    fn the_table_is_checked_before_the_driver() {
        assert_eq!(check(&Picky, &Event::new("picky", "x", "tick", "-", "a")), Ok(()));
        let bad_extra = check(&Picky, &Event::new("picky", "x", "tick", "-", "c")).unwrap_err();
        assert!(matches!(bad_extra, Refusal::Table(SpecError::BadExtra { .. })), "{bad_extra}");
        assert_eq!(bad_extra, "'picky tick' takes extra one of 'a', 'b', not 'c'");
        // No document where the table wants one: the table says so, not the driver.
        let missing = check(&Picky, &Event::new("picky", "x", "load", "begin", "-")).unwrap_err();
        assert!(matches!(missing, Refusal::Table(SpecError::MissingInput { .. })), "{missing}");
        let unknown = check(&Picky, &Event::new("picky", "x", "lode", "begin", "-")).unwrap_err();
        assert_eq!(unknown, "driver 'picky' has no operation 'lode'; valid operations: load, tick");
    }

    #[test]
    fn then_the_driver_decides() {
        let ok = Event::new("picky", "x", "load", "begin", "-").with_input(b"<ok/>");
        assert_eq!(check(&Picky, &ok), Ok(()));
        let refused = Event::new("picky", "x", "load", "begin", "-").with_input(b"<no/>");
        assert_eq!(check(&Picky, &refused), Err(Refusal::Driver(DriverError::invalid("not ok"))));
        assert_eq!(check(&Picky, &refused).unwrap_err(), "not ok");
        assert_ne!(check(&Picky, &refused).unwrap_err(), "not ok ");
    }

    #[test]
    fn output_is_checked_only_for_a_valid_filter_event() {
        let load = Event::new("picky", "x", "load", "begin", "-").with_input(b"<ok/>");
        assert_eq!(check_output(&Picky, &load, b"good"), Ok(()));
        assert_eq!(check_output(&Picky, &load, b"evil").unwrap_err(), "bad output");
        let refused = Event::new("picky", "x", "load", "begin", "-").with_input(b"<no/>");
        assert_eq!(check_output(&Picky, &refused, b"good").unwrap_err(), "not ok");
        let tick = Event::new("picky", "x", "tick", "-", "a");
        assert_eq!(
            check_output(&Picky, &tick, b"good").unwrap_err(),
            "'picky tick' is not a filter: its scripts' output is never used"
        );
    }

    #[test]
    fn works_through_a_trait_object() {
        let boxed: Box<dyn HookDriver> = Box::new(Picky);
        assert_eq!(check(boxed.as_ref(), &Event::new("picky", "x", "tick", "-", "b")), Ok(()));
    }
}
